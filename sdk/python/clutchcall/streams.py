"""ClutchCall Streams for Python: the control plane and headless capture of live broadcasts.

Control plane (REST, bearer API key)::

    from clutchcall.streams import Streams

    streams = Streams(base_url="http://127.0.0.1:8080", api_key=key, org_id="org_abc")
    inp = streams.live_inputs.create(name="Live Demo", ingest="rtmp")
    inp.stream_key                      # shown once: persist it now
    inp = streams.live_inputs.get(id=inp.id)           # li_… or lv_…
    page = streams.live_inputs.list(limit=20)          # page.data, page.next_cursor
    new_key = inp.rotate_stream_key()
    ticket = inp.signed_playback_url(ttl_seconds=3600)  # .url, .token, .expires_at (aware)
    upload = streams.assets.create_upload(name="clip.mp4")  # .upload_url, .asset_id

Every error the API returns raises :class:`StreamsError` with the API's stable ``code``
(``not_found``, ``unauthorized``, ``validation_failed``, …); transport failures use the
code ``network``.

Capture (recipe 4)::

    viewer = BroadcastViewer.open(ticket.url, on_chunk=on_chunk, on_close=on_close)

``open`` returns at once; the capture runs in the background (a Rust engine: the project's
MoQT client over raw QUIC). It resolves the signed URL, subscribes to the best video rendition
(or ``rendition="720p"``) and the audio track, and calls ``on_chunk(is_init, chunk)``: first
the CMAF init segment holding both tracks, then media chunks (moof+mdat) in decode order.
Writing every ``chunk.data`` to one file gives a playable MP4. ``chunk`` also carries
``track`` ("video"/"audio"), ``group``, ``object`` and ``decode_time`` (seconds).

``on_close(reason, detail)`` is called exactly once, with ``reason`` one of:

- ``"auth_failed"``: the ticket is bad, tampered, for another id, or expired (also when it
  expires mid-capture);
- ``"ended"``: the broadcast ended (or is not live);
- ``"closed"``: after :meth:`BroadcastViewer.close`;
- ``"network"``: the connection was lost and the reconnect attempts are exhausted.

Callbacks run on one thread per viewer, in order and never concurrently. An exception raised
by a callback is reported through :func:`sys.unraisablehook` and the capture goes on.

Long captures: a ticket's token stops working at ``expires_at``. Before then, mint a new one
and hand it to the running viewer::

    ticket = inp.signed_playback_url(ttl_seconds=3600)
    viewer = BroadcastViewer.open(ticket.url, on_chunk=on_chunk, on_close=on_close)
    while not viewer.closed:
        if ticket.expires_at - datetime.now(timezone.utc) < timedelta(minutes=5):
            ticket = inp.signed_playback_url(ttl_seconds=3600)
            viewer.renew(ticket.url)
        time.sleep(1)

``renew`` opens a second session with the new ticket while the first one still runs and closes
the first once the second overlaps it: the file continues with no missing and no repeated group,
and without a second init segment. (Opening a separate new viewer instead would start a new
file.) :func:`keep_renewed` runs that loop on a background thread.
"""

from __future__ import annotations

import atexit
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from clutchcall import _native
from clutchcall._native import Chunk

__all__ = [
    "Asset",
    "Assets",
    "BroadcastViewer",
    "Chunk",
    "LiveInput",
    "LiveInputPage",
    "LiveInputs",
    "SignedUrl",
    "Streams",
    "StreamsError",
    "Upload",
    "keep_renewed",
]

REASON_AUTH_FAILED = _native.REASON_AUTH_FAILED
REASON_ENDED = _native.REASON_ENDED
REASON_CLOSED = _native.REASON_CLOSED
REASON_NETWORK = _native.REASON_NETWORK


class StreamsError(Exception):
    """An error from the control plane: ``code`` is the API's stable machine code."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def _parse_time(value: str | None) -> datetime | None:
    """RFC 3339 → aware datetime (Python 3.9's fromisoformat does not take ``Z``)."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # fromisoformat before 3.11 wants 0, 3 or 6 fraction digits.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{head}.{(digits + '000000')[:6]}{rest}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


class _Api:
    def __init__(self, base_url: str, api_key: str, org_id: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.org_id = org_id
        self.timeout = timeout

    def org_path(self, *parts: str) -> str:
        quoted = "/".join(urllib.parse.quote(p, safe="") for p in (self.org_id, *parts))
        return f"/v1/orgs/{quoted}"

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.api_key}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                err = json.loads(raw)["error"]
                raise StreamsError(str(err["code"]), str(err.get("message", "")), e.code) from None
            except (ValueError, KeyError, TypeError):
                raise StreamsError("http_error", f"HTTP {e.code} from {method} {path}", e.code) from None
        except (urllib.error.URLError, OSError) as e:
            raise StreamsError("network", f"{method} {path}: {e}") from e
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            raise StreamsError("invalid_response", f"{method} {path}: not JSON") from e


@dataclass(frozen=True)
class SignedUrl:
    """A playback ticket: ``url`` to hand to a viewer, valid until ``expires_at``."""

    url: str
    token: str
    expires_at: datetime
    playback_id: str
    kid: str | None = None

    @classmethod
    def _from(cls, d: dict[str, Any]) -> SignedUrl:
        expires = _parse_time(d.get("expiresAt"))
        if expires is None:
            raise StreamsError("invalid_response", "playback token without expiresAt")
        return cls(
            url=str(d["url"]),
            token=str(d["token"]),
            expires_at=expires,
            playback_id=str(d.get("playbackId", "")),
            kid=d.get("kid"),
        )

    def expires_in(self) -> timedelta:
        """Time left before the token stops working."""
        return self.expires_at - datetime.now(timezone.utc)


@dataclass
class LiveInput:
    """A live input. ``stream_key`` is set only right after creation or rotation."""

    id: str
    external_input_id: str
    org_id: str
    name: str
    ingest: str
    namespace: str
    status: str | None = None
    stream_key: str | None = None
    stream_key_rotated_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    _api: _Api | None = field(default=None, repr=False, compare=False)

    @classmethod
    def _from(cls, api: _Api, d: dict[str, Any], stream_key: str | None = None) -> LiveInput:
        return cls(
            id=str(d["id"]),
            external_input_id=str(d["external_input_id"]),
            org_id=str(d["org_id"]),
            name=str(d["name"]),
            ingest=str(d["ingest"]),
            namespace=str(d.get("namespace", "")),
            status=d.get("status"),
            stream_key=stream_key,
            stream_key_rotated_at=_parse_time(d.get("stream_key_rotated_at")),
            created_at=_parse_time(d.get("created_at")),
            updated_at=_parse_time(d.get("updated_at")),
            _api=api,
        )

    def _client(self) -> _Api:
        if self._api is None:
            raise StreamsError("invalid_state", "this LiveInput is not bound to a Streams client")
        return self._api

    def rotate_stream_key(self) -> str:
        """Issues a new stream key (the old one stops working, publishers are cut off)."""
        api = self._client()
        d = api.request("POST", api.org_path("live_inputs", self.id, "stream_key"), {})
        key = str(d["streamKey"])
        fresh = LiveInput._from(api, d["input"], key)
        self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k != "_api"})
        return key

    def signed_playback_url(self, ttl_seconds: int | None = None) -> SignedUrl:
        """Mints a playback ticket (JWT) for this input's broadcast."""
        api = self._client()
        body: dict[str, Any] = {} if ttl_seconds is None else {"ttlSeconds": int(ttl_seconds)}
        d = api.request("POST", api.org_path("live_inputs", self.id, "playback_tokens"), body)
        return SignedUrl._from(d)


@dataclass(frozen=True)
class LiveInputPage:
    data: list[LiveInput]
    next_cursor: str | None


class LiveInputs:
    def __init__(self, api: _Api) -> None:
        self._api = api

    def create(self, name: str, ingest: str = "rtmp") -> LiveInput:
        """Creates an input (``ingest``: ``"rtmp"`` or ``"fmp4"``); its ``stream_key`` is set."""
        d = self._api.request("POST", self._api.org_path("live_inputs"), {"name": name, "ingest": ingest})
        return LiveInput._from(self._api, d["input"], str(d["streamKey"]))

    def get(self, id: str) -> LiveInput:
        """An input by its id (``li_…``) or its public id (``lv_…``)."""
        d = self._api.request("GET", self._api.org_path("live_inputs", id))
        return LiveInput._from(self._api, d["input"])

    def list(self, limit: int | None = None, cursor: str | None = None) -> LiveInputPage:
        """One page of inputs, newest first; pass ``next_cursor`` back for the next."""
        query = {k: str(v) for k, v in (("limit", limit), ("cursor", cursor)) if v is not None}
        path = self._api.org_path("live_inputs")
        if query:
            path += "?" + urllib.parse.urlencode(query)
        d = self._api.request("GET", path)
        data = [LiveInput._from(self._api, i) for i in d.get("data", [])]
        return LiveInputPage(data=data, next_cursor=d.get("nextCursor"))


@dataclass(frozen=True)
class Upload:
    """Where to send a file (TUS), and the asset it becomes."""

    upload_url: str
    asset_id: str


@dataclass(frozen=True)
class Asset:
    id: str


class Assets:
    def __init__(self, api: _Api) -> None:
        self._api = api

    def create_upload(self, name: str) -> Upload:
        """Creates a resumable upload; send the file to ``upload_url`` with a TUS client."""
        d = self._api.request("POST", self._api.org_path("assets", "uploads"), {"name": name})
        return Upload(upload_url=str(d["uploadUrl"]), asset_id=str(d["assetId"]))


class Streams:
    """The control-plane client (``base_url`` of the engine's HTTP API, an API key, the org)."""

    def __init__(self, base_url: str, api_key: str, org_id: str, timeout: float = 30.0) -> None:
        self._api = _Api(base_url, api_key, org_id, timeout)
        self.live_inputs = LiveInputs(self._api)
        self.assets = Assets(self._api)

    @property
    def org_id(self) -> str:
        return self._api.org_id


OnChunk = Callable[[bool, Chunk], object]
OnClose = Callable[[str, str], object]

# Running captures (a capture runs until it ends or is closed, even without a reference).
_open_viewers: set[BroadcastViewer] = set()


class BroadcastViewer:
    """A background capture of a live broadcast. Create with :meth:`open`. The capture runs
    until the broadcast ends, the ticket fails, or :meth:`close`: dropping the object does not
    stop it."""

    def __init__(self, native: _native.Viewer) -> None:
        self._native = native

    @classmethod
    def open(
        cls,
        url: str,
        on_chunk: OnChunk,
        on_close: OnClose,
        *,
        rendition: str | None = None,
        retries: int = 5,
        timeout: float = 10.0,
    ) -> BroadcastViewer:
        """Starts capturing the broadcast behind the signed URL ``url`` and returns at once.

        ``rendition``: a video track name (``"video/720p"`` or ``"720p"``); default the best.
        ``retries``: reconnect attempts after a lost connection. ``timeout``: per network step.
        Raises ``ValueError`` for a URL that is not a signed playback URL.
        """
        if not callable(on_chunk) or not callable(on_close):
            raise TypeError("on_chunk and on_close must be callable")
        holder: list[BroadcastViewer] = []

        def closing(reason: str, detail: str) -> object:
            for v in holder:
                _open_viewers.discard(v)
            return on_close(reason, detail)

        native = _native.Viewer.open(
            url, on_chunk, closing, rendition=rendition, retries=retries, timeout=timeout
        )
        viewer = cls(native)
        holder.append(viewer)
        _open_viewers.add(viewer)
        return viewer

    def close(self, timeout: float = 10.0) -> bool:
        """Stops the capture. Waits (up to ``timeout`` s) until ``on_close`` has run, except
        when called from a callback; returns whether it has."""
        return self._native.close(timeout)

    def renew(self, url: str) -> None:
        """Continues the capture with a new ticket's URL, with no gap (see the module doc)."""
        self._native.renew(url)

    @property
    def closed(self) -> bool:
        """Whether ``on_close`` has run."""
        return self._native.closed

    @property
    def close_reason(self) -> tuple[str, str] | None:
        """``(reason, detail)`` once closed."""
        return self._native.close_reason

    def stats(self) -> dict[str, int]:
        """Counters: chunks, bytes, duplicates, reconnects, renewals, last_group."""
        return self._native.stats()

    def __enter__(self) -> BroadcastViewer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def keep_renewed(
    viewer: BroadcastViewer,
    mint: Callable[[], SignedUrl],
    first: SignedUrl,
    margin: timedelta = timedelta(minutes=5),
) -> threading.Thread:
    """Renews ``viewer``'s ticket ``margin`` before each expiry until it closes, on a daemon
    thread. ``mint`` returns a fresh ticket, e.g. ``lambda: inp.signed_playback_url(ttl_seconds=3600)``."""

    def run() -> None:
        ticket = first
        while not viewer.closed:
            wait = (ticket.expires_at - margin - datetime.now(timezone.utc)).total_seconds()
            if wait > 0:
                stop = threading.Event()
                while wait > 0 and not viewer.closed:
                    stop.wait(min(wait, 1.0))
                    wait = (ticket.expires_at - margin - datetime.now(timezone.utc)).total_seconds()
                continue
            ticket = mint()
            viewer.renew(ticket.url)

    thread = threading.Thread(target=run, name="clutchcall-renew", daemon=True)
    thread.start()
    return thread


@atexit.register
def _close_all() -> None:
    # Deliver on_close before the interpreter goes away.
    for viewer in list(_open_viewers):
        viewer.close(timeout=5.0)
