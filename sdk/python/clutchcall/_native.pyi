"""Type stubs for the native part (Rust, PyO3): rs/py."""

from typing import Callable

__version__: str
REASON_AUTH_FAILED: str
REASON_ENDED: str
REASON_CLOSED: str
REASON_NETWORK: str

class Chunk:
    """One piece of the output MP4, as handed to ``on_chunk``."""

    @property
    def data(self) -> bytes: ...
    @property
    def is_init(self) -> bool: ...
    @property
    def track(self) -> str | None: ...
    @property
    def group(self) -> int: ...
    @property
    def object(self) -> int: ...
    @property
    def decode_time(self) -> float: ...
    def __len__(self) -> int: ...

class Viewer:
    @staticmethod
    def open(
        url: str,
        on_chunk: Callable[[bool, Chunk], object],
        on_close: Callable[[str, str], object],
        *,
        rendition: str | None = None,
        retries: int = 5,
        timeout: float = 10.0,
    ) -> Viewer: ...
    def close(self, timeout: float = 10.0) -> bool: ...
    def renew(self, url: str) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def close_reason(self) -> tuple[str, str] | None: ...
    def stats(self) -> dict[str, int]: ...
