//! Subscribing: SUBSCRIBE, the optional joining FETCH, and the subgroup streams of a
//! subscription merged into one event stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moqt::data::{FetchItem, FetchObjectDecoder, SubgroupObjectDecoder};
use moqt::{
    AuthToken, ControlMessage, Decode, Fetch, FetchType, GroupOrder, Location, ObjectStatus,
    Parameters, SubgroupHeader, Subscribe, SubscriptionFilter, TrackNamespace,
};
use net::SendStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tracing::{debug, warn};

use crate::connection::{Inner, Shared, CANCELLED, PROTOCOL_VIOLATION};
use crate::error::Error;
use crate::io::{ReadFail, Reader};

/// Largest object payload accepted; a bigger one stops its stream.
const MAX_OBJECT_BYTES: u64 = 64 << 20;
/// How long the end of a subscription waits for data streams still in flight.
const END_WAIT: Duration = Duration::from_secs(2);
/// REQUEST_ERROR code INVALID_JOINING_REQUEST_ID.
const INVALID_JOINING_REQUEST_ID: u64 = 0x32;
/// Delays before retrying a joining FETCH refused with INVALID_JOINING_REQUEST_ID.
const JOINING_RETRIES: &[u64] = &[10, 40, 100];
/// PUBLISH_DONE stream count meaning "unknown" (2^62 - 1).
const UNKNOWN_STREAM_COUNT: u64 = (1 << 62) - 1;

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// At the start of the group being published now (its keyframe): SUBSCRIBE with the
    /// LargestObject filter plus a relative joining FETCH for the current group's earlier
    /// objects, which are delivered first. On a track with no objects yet, at the first one.
    #[default]
    Latest,
    /// At the next group to start (NextGroupStart filter): nothing from the current group.
    NextGroup,
    /// At this location (AbsoluteStart filter); cached groups from there on are delivered.
    Absolute(Location),
}

/// Options for [`crate::Connection::subscribe`].
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// Where to start. Default [`Start::Latest`].
    pub start: Start,
    /// Subscriber priority (0 = highest) among this session's subscriptions. Default 128.
    pub priority: u8,
    /// Group order to ask for; default: the publisher's.
    pub group_order: Option<GroupOrder>,
    /// Token for this request instead of [`crate::Config::token`].
    pub token: Option<String>,
    /// How long the relay may keep delivering a group after newer ones started before it
    /// abandons it for this subscriber (SUBGROUP_DELIVERY_TIMEOUT). `None`: the relay's default
    /// (live viewing: skip ahead when behind). Recorders that must not lose anything set it high.
    pub delivery_timeout: Option<std::time::Duration>,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            start: Start::Latest,
            priority: 128,
            group_order: None,
            token: None,
            delivery_timeout: None,
        }
    }
}

/// One received object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Group id.
    pub group: u64,
    /// Subgroup id (0 for objects from the joining FETCH of a single-subgroup track).
    pub subgroup: u64,
    /// Object id.
    pub object: u64,
    /// The payload.
    pub payload: Bytes,
    /// When the payload's last byte was read from the transport (before any wait in the
    /// subscription's buffer).
    pub received_at: Instant,
}

/// What a [`Subscription`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An object.
    Object(Received),
    /// The publisher ended the track (PUBLISH_DONE); nothing follows.
    Ended {
        /// PUBLISH_DONE status code (see [`crate::status`]).
        code: u64,
        /// Reason phrase.
        reason: String,
    },
}

/// Per-subscription state the data-stream tasks share.
pub(crate) struct Route {
    tx: mpsc::Sender<Event>,
    /// The joining FETCH: subscription objects wait for it; the joining group's objects it
    /// delivered are skipped.
    gate: Option<Gate>,
    /// (data streams started, data streams finished).
    streams: watch::Sender<(u64, u64)>,
}

struct Gate {
    group: u64,
    /// `Some(largest object id fetched in the group)` once the fetch is done.
    done: watch::Receiver<Option<Option<u64>>>,
}

/// A live subscription. Objects arrive per group in object order; groups may overlap in time
/// (a new group can begin before the previous one is complete, each on its own stream), and
/// every object is handed over as soon as it arrives rather than re-sorted across groups.
///
/// [`Subscription::next`] returns `None` when the subscription ended without PUBLISH_DONE (the
/// session closed: see [`crate::Connection::closed`]). Dropping it unsubscribes (the request
/// stream is reset).
pub struct Subscription {
    _conn: Arc<Inner>,
    rx: mpsc::Receiver<Event>,
    send: Option<SendStream>,
    _cancel: oneshot::Sender<()>,
    fetch: Option<AbortHandle>,
    largest: Option<Location>,
    alias: u64,
    request_id: u64,
    ended: bool,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("request_id", &self.request_id)
            .field("alias", &self.alias)
            .field("largest_at_start", &self.largest)
            .finish()
    }
}

impl Subscription {
    /// The next object or the end of the track; `None` once the subscription is over.
    pub async fn next(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        let ev = self.rx.recv().await;
        if !matches!(ev, Some(Event::Object(_))) {
            self.ended = true;
        }
        ev
    }

    /// The track's largest location when the subscription started (SUBSCRIBE_OK's
    /// LARGEST_OBJECT); `None` if nothing had been published.
    pub fn largest_at_start(&self) -> Option<Location> {
        self.largest
    }

    /// The track alias the relay assigned.
    pub fn alias(&self) -> u64 {
        self.alias
    }

    /// The SUBSCRIBE's request id.
    pub fn request_id(&self) -> u64 {
        self.request_id
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(h) = &self.fetch {
            h.abort();
        }
        if let Some(mut send) = self.send.take() {
            let _ = send.reset(CANCELLED);
        }
    }
}

fn token_params(shared: &Shared, token: &Option<String>) -> Parameters {
    let mut params = Parameters::new();
    if let Some(t) = shared.token(token) {
        params.add_auth_token(AuthToken::bearer(t.as_bytes().to_vec()));
    }
    params
}

pub(crate) async fn subscribe(
    conn: Arc<Inner>,
    namespace: TrackNamespace,
    track: &str,
    options: SubscribeOptions,
) -> Result<Subscription, Error> {
    let shared = conn.shared.clone();
    let filter = match options.start {
        Start::Latest => SubscriptionFilter::LargestObject,
        Start::NextGroup => SubscriptionFilter::NextGroupStart,
        Start::Absolute(l) => SubscriptionFilter::AbsoluteStart(l),
    };
    let mut params = token_params(&shared, &options.token)
        .with_subscription_filter(filter)
        .with_subscriber_priority(options.priority);
    if let Some(order) = options.group_order {
        params.set_group_order(order);
    }
    if let Some(t) = options.delivery_timeout {
        params
            .set_subgroup_delivery_timeout(u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1));
    }
    let request_id = shared.next_request_id();
    let msg = Subscribe {
        request_id,
        namespace,
        track_name: Bytes::copy_from_slice(track.as_bytes()),
        params,
    };
    let (send, mut recv) = shared.open_request(msg).await?;
    let ok = match shared.reply(&mut recv, "SUBSCRIBE").await? {
        ControlMessage::SubscribeOk(ok) => ok,
        ControlMessage::RequestError(e) => {
            return Err(Error::Refused {
                code: e.error_code,
                reason: e.reason.to_string_lossy(),
            })
        }
        other => {
            return Err(Error::Protocol(format!(
                "{} in reply to SUBSCRIBE",
                other.name()
            )))
        }
    };
    let largest = ok.params.largest_object();
    let (tx, rx) = mpsc::channel(shared.config.buffer.max(1));
    let joining = match (options.start, largest) {
        (Start::Latest, Some(l)) => Some((l.group, watch::channel(None))),
        _ => None,
    };
    let (gate, gate_tx) = match joining {
        Some((group, (gtx, grx))) => (Some(Gate { group, done: grx }), Some(gtx)),
        None => (None, None),
    };
    let (streams, _) = watch::channel((0, 0));
    let route = Arc::new(Route {
        tx: tx.clone(),
        gate,
        streams,
    });
    shared.insert_track(ok.track_alias, route.clone())?;
    let (cancel_tx, cancel_rx) = oneshot::channel();
    let gate_rx = route.gate.as_ref().map(|g| g.done.clone());
    tokio::spawn(control(
        shared.clone(),
        recv,
        route,
        ok.track_alias,
        cancel_rx,
        gate_rx,
    ));
    let fetch = gate_tx.map(|gate_tx| {
        let group = largest.map(|l| l.group).unwrap_or(0);
        tokio::spawn(joining_fetch(
            shared.clone(),
            request_id,
            group,
            options,
            tx,
            gate_tx,
        ))
        .abort_handle()
    });
    Ok(Subscription {
        _conn: conn,
        rx,
        send: Some(send),
        _cancel: cancel_tx,
        fetch,
        largest,
        alias: ok.track_alias,
        request_id,
        ended: false,
    })
}

/// Reads the subscription's request stream until PUBLISH_DONE, the session's end, or the
/// subscriber's cancel.
async fn control(
    shared: Arc<Shared>,
    mut recv: Reader,
    route: Arc<Route>,
    alias: u64,
    mut cancel: oneshot::Receiver<()>,
    gate: Option<watch::Receiver<Option<Option<u64>>>>,
) {
    loop {
        tokio::select! {
            _ = &mut cancel => {
                recv.stop(CANCELLED);
                break;
            }
            m = recv.message() => match m {
                Ok(Some(ControlMessage::PublishDone(done))) => {
                    // Let data streams still in flight deliver first (up to END_WAIT).
                    let mut streams = route.streams.subscribe();
                    let count = done.stream_count;
                    let wait = async {
                        if let Some(mut g) = gate.clone() {
                            let _ = g.wait_for(|d| d.is_some()).await;
                        }
                        let _ = streams
                            .wait_for(|&(started, finished)| {
                                finished >= started && (count == UNKNOWN_STREAM_COUNT || started >= count)
                            })
                            .await;
                    };
                    let _ = tokio::time::timeout(END_WAIT, wait).await;
                    let _ = route
                        .tx
                        .send(Event::Ended { code: done.status_code, reason: done.reason.to_string_lossy() })
                        .await;
                    break;
                }
                Ok(Some(ControlMessage::RequestOk(_))) => {}
                Ok(Some(other)) => {
                    shared.close(PROTOCOL_VIOLATION, &format!("{} on a SUBSCRIBE stream", other.name()));
                    break;
                }
                Err(ReadFail::Decode(e)) => {
                    shared.close(e.code() as u32, &e.to_string());
                    break;
                }
                Ok(None) | Err(_) => break,
            },
        }
    }
    shared.remove_track(alias);
}

/// Relative joining FETCH (joining_start 0): the current group's objects up to the joining
/// location, delivered before that group's subscription objects.
async fn joining_fetch(
    shared: Arc<Shared>,
    subscribe_id: u64,
    group: u64,
    options: SubscribeOptions,
    tx: mpsc::Sender<Event>,
    gate: watch::Sender<Option<Option<u64>>>,
) {
    let mut fetched = None;
    let mut retries = JOINING_RETRIES.iter();
    loop {
        match fetch_once(&shared, subscribe_id, group, &options, &tx, &mut fetched).await {
            // A relay may handle our FETCH before it has registered the subscription it just
            // acknowledged (they travel on different streams): retry briefly.
            Err(Error::Refused { code, .. })
                if code == INVALID_JOINING_REQUEST_ID && fetched.is_none() =>
            {
                match retries.next() {
                    Some(ms) => {
                        debug!(
                            subscribe_id,
                            "joining fetch refused with INVALID_JOINING_REQUEST_ID: retrying"
                        );
                        tokio::time::sleep(Duration::from_millis(*ms)).await;
                    }
                    None => {
                        warn!("joining fetch refused: the subscription starts mid-group");
                        break;
                    }
                }
            }
            Err(e) => {
                warn!(%e, "joining fetch failed: the subscription starts mid-group");
                break;
            }
            Ok(()) => break,
        }
    }
    gate.send_replace(Some(fetched));
}

async fn fetch_once(
    shared: &Arc<Shared>,
    subscribe_id: u64,
    group: u64,
    options: &SubscribeOptions,
    tx: &mpsc::Sender<Event>,
    fetched: &mut Option<u64>,
) -> Result<(), Error> {
    let request_id = shared.next_request_id();
    let data = shared.expect_fetch(request_id);
    let msg = Fetch {
        request_id,
        fetch_type: FetchType::RelativeJoining {
            joining_request_id: subscribe_id,
            joining_start: 0,
        },
        params: token_params(shared, &options.token).with_subscriber_priority(options.priority),
    };
    let result = async {
        let (mut send, mut recv) = shared.open_request(msg).await?;
        match shared.reply(&mut recv, "FETCH").await? {
            ControlMessage::FetchOk(_) => {}
            ControlMessage::RequestError(e) => {
                return Err(Error::Refused {
                    code: e.error_code,
                    reason: e.reason.to_string_lossy(),
                })
            }
            other => {
                return Err(Error::Protocol(format!(
                    "{} in reply to FETCH",
                    other.name()
                )))
            }
        }
        let mut reader = tokio::time::timeout(shared.config.timeout, data)
            .await
            .map_err(|_| Error::Timeout("fetch data stream"))?
            .map_err(|_| shared.transport_error("fetch data stream never came"))?;
        let mut decoder = FetchObjectDecoder::new(GroupOrder::Ascending);
        loop {
            if !reader.has_more().await.map_err(|e| shared.read_error(e))? {
                break;
            }
            let item = match reader.decode(|b| decoder.decode(b)).await {
                Ok(Some(i)) => i,
                Ok(None) => break,
                Err(e) => return Err(shared.read_error(e)),
            };
            let FetchItem::Object(h) = item else { continue };
            if h.payload_len > MAX_OBJECT_BYTES {
                reader.stop(CANCELLED);
                return Err(Error::Protocol(format!(
                    "object of {} bytes",
                    h.payload_len
                )));
            }
            let payload = reader
                .bytes(h.payload_len as usize)
                .await
                .map_err(|e| shared.read_error(e))?;
            let received_at = Instant::now();
            if h.group_id == group {
                *fetched = Some(fetched.map_or(h.object_id, |f: u64| f.max(h.object_id)));
            }
            let ev = Event::Object(Received {
                group: h.group_id,
                subgroup: h.subgroup_id.unwrap_or(0),
                object: h.object_id,
                payload,
                received_at,
            });
            if tx.send(ev).await.is_err() {
                reader.stop(CANCELLED);
                return Ok(());
            }
        }
        let _ = send.finish();
        Ok(())
    }
    .await;
    shared.forget_fetch(request_id);
    result
}

/// Counts a data stream as finished when dropped.
struct StreamDone(Arc<Route>);

impl Drop for StreamDone {
    fn drop(&mut self) {
        self.0.streams.send_modify(|s| s.1 += 1);
    }
}

/// A SUBGROUP_HEADER stream from the relay: objects into the subscription owning its alias.
pub(crate) async fn subgroup_stream(shared: &Arc<Shared>, mut reader: Reader) {
    let header = match reader.decode(|b| SubgroupHeader::decode(b)).await {
        Ok(Some(h)) => h,
        Ok(None) => return,
        Err(ReadFail::Decode(e)) => {
            shared.close(e.code() as u32, &e.to_string());
            return;
        }
        Err(_) => return,
    };
    let Some(route) = shared.track(header.track_alias).await else {
        debug!(
            alias = header.track_alias,
            "data stream for an unknown track alias"
        );
        reader.stop(CANCELLED);
        return;
    };
    route.streams.send_modify(|s| s.0 += 1);
    let _done = StreamDone(route.clone());
    // With a joining FETCH in flight, every subscription object waits for it, so the
    // subscriber starts at the joining group's first object.
    let mut skip_upto = None;
    if let Some(gate) = &route.gate {
        let mut done = gate.done.clone();
        let waited = done.wait_for(|d| d.is_some()).await.map(|v| (*v).flatten());
        if let Ok(Some(v)) = waited {
            if header.group_id == gate.group {
                skip_upto = Some(v);
            }
        }
    }
    let mut decoder = SubgroupObjectDecoder::new(&header);
    loop {
        match reader.has_more().await {
            Ok(true) => {}
            Ok(false) | Err(ReadFail::Reset(_)) | Err(ReadFail::Transport(_)) => return,
            Err(e) => {
                report(shared, e);
                return;
            }
        }
        let h = match reader.decode(|b| decoder.decode(b)).await {
            Ok(Some(h)) => h,
            Ok(None) | Err(ReadFail::Reset(_)) | Err(ReadFail::Transport(_)) => return,
            Err(e) => {
                report(shared, e);
                return;
            }
        };
        if h.payload_len > MAX_OBJECT_BYTES {
            reader.stop(CANCELLED);
            return;
        }
        let payload = match reader.bytes(h.payload_len as usize).await {
            Ok(p) => p,
            Err(_) => return,
        };
        let received_at = Instant::now();
        if h.status != ObjectStatus::Normal || skip_upto.is_some_and(|s| h.object_id <= s) {
            continue;
        }
        let ev = Event::Object(Received {
            group: header.group_id,
            subgroup: decoder.subgroup_id().unwrap_or(0),
            object: h.object_id,
            payload,
            received_at,
        });
        if route.tx.send(ev).await.is_err() {
            reader.stop(CANCELLED);
            return;
        }
    }
}

fn report(shared: &Shared, e: ReadFail) {
    match e {
        ReadFail::Decode(d) => shared.close(d.code() as u32, &d.to_string()),
        other => debug!(?other, "data stream failed"),
    }
}
