//! The publishing side of a session: PUBLISH, PUBLISH_NAMESPACE, the upstream SUBSCRIBEs the
//! relay sends to announcing publishers, and the data streams that carry their objects into
//! the track cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moqt::data::{ObjectStatus, StreamType, SubgroupHeader, SubgroupObjectDecoder};
use moqt::message::{ControlMessage, Publish, PublishNamespace, Subscribe};
use moqt::params::{Parameters, SubscriptionFilter};
use moqt::Decode;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};
use web_transport_quinn::SendStream;

use crate::auth::Action;
use crate::error::{close, done, SessionError};
use crate::io::{self, Reader};
use crate::registry::{Claim, FeedId, Upstream};
use crate::session::{self, reject_auth, request_ok, track_name, Ctx};
use crate::track::{Object, SubgroupEnd, Track, TrackEnd, TrackInfo};

/// Largest object payload the relay accepts (bigger ones reset the stream).
const MAX_OBJECT_BYTES: u64 = 64 << 20;
/// How long a data stream may wait for the message that defines its track alias.
const ALIAS_WAIT: Duration = Duration::from_secs(2);

/// A track the peer feeds us, by the alias it chose.
#[derive(Clone)]
pub struct Inbound {
    pub track: Arc<Track>,
    pub default_priority: u8,
    pub generation: u64,
    /// Data streams seen for this alias, so PUBLISH_DONE's Stream Count can be honoured.
    pub streams: Arc<StreamCount>,
    /// Set while a joining FETCH fills the group the subscription started in: that group's
    /// subgroup streams wait for it and append after the fetched objects.
    pub join: Option<JoinGate>,
}

/// The group a joining FETCH is filling, and whether it is done.
#[derive(Clone)]
pub struct JoinGate {
    pub group: u64,
    pub done: tokio::sync::watch::Receiver<bool>,
    /// Subgroups of that group a subscription stream continued (the rest were complete
    /// upstream already, and are finished here once the next group begins).
    pub continued: Arc<Mutex<std::collections::HashSet<u64>>>,
}

/// Longest a subscription's stream waits for the joining FETCH of its group.
const JOIN_WAIT: Duration = Duration::from_secs(3);

/// Data streams started and finished for one incoming track.
#[derive(Default)]
pub struct StreamCount {
    started: std::sync::atomic::AtomicU64,
    ended: std::sync::atomic::AtomicU64,
    changed: Notify,
}

impl StreamCount {
    fn start(&self) {
        self.started
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn end(&self) {
        self.ended.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// Wait until `count` streams have ended (PUBLISH_DONE's Stream Count), at most `limit`.
    /// The draft's "unknown" count (2^62 - 1) only waits for streams already started.
    async fn settle(&self, count: u64, limit: Duration) {
        let target = if count >= (1u64 << 62) - 1 {
            self.started.load(std::sync::atomic::Ordering::Acquire)
        } else {
            count
        };
        let wait = async {
            loop {
                let notified = self.changed.notified();
                if self.ended.load(std::sync::atomic::Ordering::Acquire) >= target {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }
}

/// Longest the relay waits, after PUBLISH_DONE, for the data streams it announced.
const PUBLISH_DONE_DRAIN: Duration = Duration::from_secs(3);

/// Track aliases for incoming data streams and datagrams.
#[derive(Default)]
pub struct Aliases {
    map: Mutex<HashMap<u64, Inbound>>,
    added: Notify,
}

impl Aliases {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Inbound>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns false if the alias is already taken by another track.
    pub fn insert(&self, alias: u64, inbound: Inbound) -> bool {
        let mut map = self.lock();
        if map
            .get(&alias)
            .is_some_and(|i| !Arc::ptr_eq(&i.track, &inbound.track))
        {
            return false;
        }
        map.insert(alias, inbound);
        drop(map);
        self.added.notify_waiters();
        true
    }

    pub fn remove(&self, alias: u64) {
        self.lock().remove(&alias);
    }

    pub fn get(&self, alias: u64) -> Option<Inbound> {
        self.lock().get(&alias).cloned()
    }

    /// Wait briefly for an alias that a racing control message is about to define.
    pub async fn wait(&self, alias: u64) -> Option<Inbound> {
        let deadline = Instant::now() + ALIAS_WAIT;
        loop {
            let notified = self.added.notified();
            if let Some(i) = self.get(alias) {
                return Some(i);
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                return None;
            }
        }
    }
}

fn track_info(properties: &moqt::kvp::Properties) -> TrackInfo {
    TrackInfo {
        publisher_priority: properties.default_publisher_priority().unwrap_or(128),
        group_order: properties
            .default_group_order()
            .map(|o| o.to_u64() as u8)
            .unwrap_or(1),
        properties: properties.clone(),
    }
}

/// Authorize or close with `auth_failed` after telling the peer on the request stream.
async fn authorize_or_reject(
    ctx: &Arc<Ctx>,
    send: &mut SendStream,
    action: Action,
    namespace: &moqt::TrackNamespace,
    track: Option<&Bytes>,
    params: &Parameters,
    scope: CancellationToken,
) -> Result<Option<Box<dyn std::any::Any + Send + Sync>>, SessionError> {
    match ctx.authorize(action, namespace, track, params, scope).await {
        Ok(guard) => Ok(guard),
        Err(e @ SessionError::Unauthorized(_)) => {
            reject_auth(send).await;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// PUBLISH: the peer pushes a track to us.
pub async fn publish(
    ctx: &Arc<Ctx>,
    msg: Publish,
    mut send: SendStream,
    mut recv: Reader,
) -> Result<(), SessionError> {
    let name = track_name(&msg.namespace, &msg.track_name);
    let scope = ctx.closed.child_token();
    let _guard = authorize_or_reject(
        ctx,
        &mut send,
        Action::Publish,
        &msg.namespace,
        Some(&msg.track_name),
        &msg.params,
        scope.clone(),
    )
    .await?;
    let info = track_info(&msg.properties);
    let default_priority = info.publisher_priority;
    let Claim { track, feed, stop } = ctx.shared.registry.claim(&name, ctx.id, info);
    let streams = Arc::new(StreamCount::default());
    if !ctx.inbound.insert(
        msg.track_alias,
        Inbound {
            track: track.clone(),
            default_priority,
            generation: feed.generation,
            streams: streams.clone(),
            join: None,
        },
    ) {
        ctx.close(close::DUPLICATE_TRACK_ALIAS, "track alias already in use");
        return Err(SessionError::Transport("duplicate track alias".into()));
    }
    info!(session = ctx.id, track = %name, "publisher started");
    metrics::gauge!("relay_publishers").increment(1.0);
    request_ok(&mut send, Parameters::new()).await?;

    let end = loop {
        tokio::select! {
            m = recv.message() => match m {
                Ok(Some(ControlMessage::PublishDone(d))) => {
                    // Objects still in flight on data streams belong to the track: let the
                    // announced streams finish before ending it.
                    streams.settle(d.stream_count, PUBLISH_DONE_DRAIN).await;
                    break TrackEnd { code: d.status_code, reason: d.reason.to_string_lossy() };
                }
                Ok(Some(ControlMessage::RequestUpdate(_))) => request_ok(&mut send, Parameters::new()).await?,
                Ok(Some(other)) => {
                    return Err(SessionError::Protocol(format!("{} is not allowed on a PUBLISH stream", other.name())));
                }
                Ok(None) | Err(SessionError::Reset(_)) | Err(SessionError::Transport(_)) => {
                    break TrackEnd { code: done::TRACK_ENDED, reason: "publisher went away".into() };
                }
                Err(e) => return Err(e),
            },
            _ = stop.cancelled() => {
                // Another publisher took the track over: stop this one.
                recv.stop(crate::RESET_CANCELLED);
                let _ = send.reset(crate::RESET_CANCELLED);
                break TrackEnd { code: done::TRACK_ENDED, reason: "replaced by a new publisher".into() };
            }
            _ = ctx.closed.cancelled() => {
                break TrackEnd { code: done::TRACK_ENDED, reason: "publisher went away".into() };
            }
        }
    };
    scope.cancel();
    ctx.inbound.remove(msg.track_alias);
    metrics::gauge!("relay_publishers").decrement(1.0);
    info!(session = ctx.id, track = %name, reason = %end.reason, "publisher stopped");
    ctx.shared.registry.release(&name, feed, end);
    Ok(())
}

/// A session that announced a namespace (PUBLISH_NAMESPACE), or an origin relay we connected
/// to, seen from the registry.
pub(crate) struct AnnouncedBy {
    ctx: Weak<Ctx>,
    id: u64,
}

impl AnnouncedBy {
    pub(crate) fn new(ctx: &Arc<Ctx>) -> Self {
        Self {
            ctx: Arc::downgrade(ctx),
            id: ctx.id,
        }
    }
}

/// How an on-demand upstream subscription ended.
enum FeedEnd {
    /// The upstream refused the SUBSCRIBE (no such track there, or not allowed).
    Refused(String),
    /// The upstream ended the track (PUBLISH_DONE), or restarted it under our feet.
    Track(TrackEnd),
    /// The upstream session went away: another session may take over.
    Lost,
    /// No subscriber followed the track for the linger time: we unsubscribed.
    Unused,
}

impl Upstream for AnnouncedBy {
    fn feed(&self, track: Arc<Track>, feed: FeedId) -> bool {
        let Some(ctx) = self.ctx.upgrade() else {
            return false;
        };
        if ctx.closed.is_cancelled() || ctx.is_going_away() {
            return false;
        }
        tokio::spawn(async move {
            let name = track.name.clone();
            let registry = ctx.shared.registry.clone();
            match upstream_subscribe(&ctx, &track, feed).await {
                Ok(FeedEnd::Refused(reason)) => {
                    // Forget it at once, so the next subscriber asks upstream again.
                    debug!(session = ctx.id, track = %name, %reason, "upstream refused the track");
                    registry.forget(&name, feed);
                    track.set_feed_state(crate::track::FeedState::Refused(reason.clone()));
                    track.end(TrackEnd {
                        code: done::TRACK_ENDED,
                        reason,
                    });
                }
                Ok(FeedEnd::Track(end)) => registry.release(&name, feed, end),
                Ok(FeedEnd::Unused) => {
                    debug!(session = ctx.id, track = %name, "upstream subscription unused: cancelled");
                    track.end(TrackEnd {
                        code: done::TRACK_ENDED,
                        reason: "no subscribers".into(),
                    });
                }
                Ok(FeedEnd::Lost) => {
                    let end = TrackEnd {
                        code: done::TRACK_ENDED,
                        reason: "upstream went away".into(),
                    };
                    if ctx.role == crate::session::Role::Client {
                        registry.refeed(track, feed, ctx.id, end);
                    } else {
                        registry.release(&name, feed, end);
                    }
                }
                Err(e) => {
                    debug!(session = ctx.id, track = %name, %e, "upstream subscription failed");
                    track.set_feed_state(crate::track::FeedState::Refused(e.to_string()));
                    registry.release(
                        &name,
                        feed,
                        TrackEnd {
                            code: done::TRACK_ENDED,
                            reason: e.to_string(),
                        },
                    );
                }
            }
        });
        true
    }

    fn id(&self) -> u64 {
        self.id
    }
}

/// Subscribe upstream for a track; pump until the upstream ends it, the session goes away, or
/// nobody has followed the track for the linger time (then unsubscribe).
///
/// When the upstream reports a Largest Location, a joining FETCH of that group runs alongside,
/// so the track here starts at a group boundary (a keyframe) like the upstream's cache does.
async fn upstream_subscribe(
    ctx: &Arc<Ctx>,
    track: &Arc<Track>,
    feed: FeedId,
) -> Result<FeedEnd, SessionError> {
    let namespace = moqt::TrackNamespace::new(track.name.namespace.iter().cloned())
        .map_err(|e| SessionError::Internal(e.to_string()))?;
    let token = upstream_token(ctx, track).await;
    let (mut send, mut recv) = ctx.open_request().await?;
    let request_id = ctx.next_request_id();
    let sub = Subscribe {
        request_id,
        namespace,
        track_name: track.name.name.clone(),
        params: with_token(
            Parameters::new()
                .with_subscription_filter(SubscriptionFilter::LargestObject)
                .with_forward(true),
            &token,
        ),
    };
    io::send(&mut send, sub).await?;
    let ok = match recv.message().await {
        Ok(Some(ControlMessage::SubscribeOk(ok))) => ok,
        Ok(Some(ControlMessage::RequestError(e))) => {
            return Ok(FeedEnd::Refused(format!(
                "upstream refused: {}",
                e.reason.to_string_lossy()
            )));
        }
        Ok(Some(other)) => {
            return Err(SessionError::Protocol(format!(
                "unexpected {} in reply to SUBSCRIBE",
                other.name()
            )))
        }
        Ok(None) | Err(SessionError::Reset(_)) | Err(SessionError::Transport(_)) => {
            return Ok(FeedEnd::Lost)
        }
        Err(e) => return Err(e),
    };
    if let Some(ours) = track.largest() {
        let theirs = ok.params.largest_object();
        if theirs.is_none_or(|t| t.group < ours.group) {
            // A feed moving to a new upstream session found the track empty or numbered afresh
            // (the origin restarted): its groups would never pass our subscribers' filters, so
            // end the track and let viewers subscribe anew rather than stall.
            let _ = send.reset(crate::RESET_CANCELLED);
            recv.stop(crate::RESET_CANCELLED);
            return Ok(FeedEnd::Track(TrackEnd {
                code: done::TRACK_ENDED,
                reason: "the origin restarted the track".into(),
            }));
        }
    }
    let info = track_info(&ok.properties);
    let default_priority = info.publisher_priority;
    track.set_info(info);
    track.set_feed_state(crate::track::FeedState::Live);
    let mut fetch_task = None;
    let join = ok.params.largest_object().map(|largest| {
        let (done_tx, done) = tokio::sync::watch::channel(false);
        let gate = JoinGate {
            group: largest.group,
            done,
            continued: Arc::default(),
        };
        fetch_task = Some(tokio::spawn(joining_fetch(
            ctx.clone(),
            track.clone(),
            request_id,
            gate.clone(),
            token.clone(),
            done_tx,
        )));
        gate
    });
    let streams = Arc::new(StreamCount::default());
    if !ctx.inbound.insert(
        ok.track_alias,
        Inbound {
            track: track.clone(),
            default_priority,
            generation: feed.generation,
            streams: streams.clone(),
            join,
        },
    ) {
        ctx.close(close::DUPLICATE_TRACK_ALIAS, "track alias already in use");
        return Err(SessionError::Transport("duplicate track alias".into()));
    }
    let linger = ctx.shared.config.unused_feed_linger;
    let mut check = tokio::time::interval((linger / 2).max(Duration::from_millis(50)));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = loop {
        tokio::select! {
            m = recv.message() => match m {
                Ok(Some(ControlMessage::PublishDone(d))) => {
                    streams.settle(d.stream_count, PUBLISH_DONE_DRAIN).await;
                    break FeedEnd::Track(TrackEnd { code: d.status_code, reason: d.reason.to_string_lossy() });
                }
                Ok(Some(ControlMessage::RequestOk(_))) => {}
                Ok(Some(other)) => return Err(SessionError::Protocol(format!("{} on a SUBSCRIBE stream", other.name()))),
                Ok(None) | Err(SessionError::Reset(_)) | Err(SessionError::Transport(_)) => break FeedEnd::Lost,
                Err(e) => return Err(e),
            },
            _ = check.tick() => {
                if ctx.shared.registry.forget_if_unused(&track.name, feed, linger) {
                    // Request cancellation: reset our side and stop the upstream's.
                    let _ = send.reset(crate::RESET_CANCELLED);
                    recv.stop(crate::RESET_CANCELLED);
                    break FeedEnd::Unused;
                }
            }
            _ = ctx.closed.cancelled() => break FeedEnd::Lost,
        }
    };
    if let Some(task) = fetch_task {
        task.abort();
    }
    ctx.inbound.remove(ok.track_alias);
    Ok(end)
}

/// The token for an upstream request about `track`, when this session has a token source.
async fn upstream_token(ctx: &Ctx, track: &Track) -> Option<Vec<u8>> {
    let auth = ctx.upstream.as_ref()?.auth.clone()?;
    auth.token(&track.name.namespace, &track.name.name).await
}

fn with_token(params: Parameters, token: &Option<Vec<u8>>) -> Parameters {
    match token {
        Some(t) => params.with_auth_token(moqt::params::AuthToken::bearer(t.clone())),
        None => params,
    }
}

/// Relative joining FETCH (joining start 0) of the group an upstream subscription started
/// in: its objects up to the Largest Location go into the track first; `done` then lets that
/// group's subscription streams append the rest. An upstream that refuses or fails the FETCH
/// only costs the first subscribers a mid-group start (logged).
async fn joining_fetch(
    ctx: Arc<Ctx>,
    track: Arc<Track>,
    subscribe_id: u64,
    gate: JoinGate,
    token: Option<Vec<u8>>,
    done: tokio::sync::watch::Sender<bool>,
) {
    let group = gate.group;
    let request_id = ctx.next_request_id();
    let data = ctx.expect_fetch(request_id);
    let result = async {
        let (mut send, mut recv) = ctx.open_request().await?;
        let msg = moqt::message::Fetch {
            request_id,
            fetch_type: moqt::message::FetchType::RelativeJoining {
                joining_request_id: subscribe_id,
                joining_start: 0,
            },
            params: with_token(Parameters::new(), &token),
        };
        io::send(&mut send, msg).await?;
        match recv.message().await? {
            Some(ControlMessage::FetchOk(_)) => {}
            Some(ControlMessage::RequestError(e)) => {
                return Err(SessionError::Internal(format!(
                    "joining FETCH refused: {}",
                    e.reason.to_string_lossy()
                )))
            }
            Some(other) => {
                return Err(SessionError::Protocol(format!(
                    "unexpected {} in reply to FETCH",
                    other.name()
                )))
            }
            None => return Err(SessionError::Transport("FETCH stream closed".into())),
        }
        let reader = tokio::time::timeout(JOIN_WAIT, data)
            .await
            .map_err(|_| SessionError::Internal("no FETCH data stream in time".into()))?
            .map_err(|_| SessionError::Transport("session ended".into()))?;
        fetched_objects(&track, reader, group).await
    }
    .await;
    ctx.forget_fetch(request_id);
    if let Err(e) = result {
        info!(session = ctx.id, track = %track.name, %e, "joining FETCH failed: the track starts mid-group here");
    }
    let _ = done.send(true);
    // Fetched subgroups that no subscription stream continues were complete upstream: finish
    // them once a newer group has begun (and its lag budget passed), so their readers see FIN.
    // (Polled: an event receiver would count as a subscriber and keep the feed alive.)
    while track.largest().is_none_or(|l| l.group <= group) && track.ended().is_none() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(ctx.shared.config.lag_budget).await;
    let continued = gate
        .continued
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(g) = track.group(group) {
        for sg in g.subgroups() {
            if !sg.datagram && !continued.contains(&sg.id) {
                track.end_subgroup(&sg, SubgroupEnd::Finished);
            }
        }
    }
}

/// Write a FETCH stream's objects into their subgroups (created as needed, left open for the
/// subscription's streams to continue).
async fn fetched_objects(
    track: &Track,
    mut reader: Reader,
    group: u64,
) -> Result<(), SessionError> {
    let mut decoder = moqt::data::FetchObjectDecoder::new(moqt::GroupOrder::Ascending);
    loop {
        if !reader.has_more().await? {
            return Ok(());
        }
        let item = match reader.decode(|b| decoder.decode(b)).await? {
            Some(i) => i,
            None => return Ok(()),
        };
        let moqt::data::FetchItem::Object(h) = item else {
            continue;
        };
        if h.payload_len > MAX_OBJECT_BYTES {
            reader.stop(crate::RESET_CANCELLED);
            return Err(SessionError::Protocol(format!(
                "fetched object of {} bytes",
                h.payload_len
            )));
        }
        let payload = reader.bytes(h.payload_len as usize).await?;
        if h.group_id != group {
            continue;
        }
        let sg = match h.subgroup_id {
            Some(id) => track.join_subgroup(h.group_id, id, h.publisher_priority, false, true),
            None => track.datagram_lane(h.group_id, h.publisher_priority),
        };
        if sg.last_object_id().is_some_and(|last| h.object_id <= last) {
            continue;
        }
        track.push_object(
            &sg,
            Object {
                id: h.object_id,
                status: ObjectStatus::Normal,
                properties: h.properties,
                payload,
                received: Instant::now(),
            },
        );
    }
}

/// PUBLISH_NAMESPACE: route subscriptions under the namespace to this peer.
pub async fn publish_namespace(
    ctx: &Arc<Ctx>,
    msg: PublishNamespace,
    mut send: SendStream,
    mut recv: Reader,
) -> Result<(), SessionError> {
    let scope = ctx.closed.child_token();
    let _guard = authorize_or_reject(
        ctx,
        &mut send,
        Action::Publish,
        &msg.namespace,
        None,
        &msg.params,
        scope.clone(),
    )
    .await?;
    let fields: Vec<Bytes> = msg.namespace.fields().to_vec();
    let upstream = Arc::new(AnnouncedBy::new(ctx));
    ctx.shared.registry.announce(fields.clone(), upstream);
    info!(session = ctx.id, namespace = %msg.namespace.to_path(), "namespace announced");
    request_ok(&mut send, Parameters::new()).await?;
    loop {
        tokio::select! {
            m = recv.message() => match m {
                Ok(Some(ControlMessage::RequestUpdate(_))) => request_ok(&mut send, Parameters::new()).await?,
                Ok(Some(other)) => {
                    ctx.shared.registry.withdraw(&fields, ctx.id);
                    return Err(SessionError::Protocol(format!("{} on a PUBLISH_NAMESPACE stream", other.name())));
                }
                Ok(None) | Err(_) => break,
            },
            _ = session::cancelled(&send) => break,
            _ = ctx.closed.cancelled() => break,
        }
    }
    scope.cancel();
    ctx.shared.registry.withdraw(&fields, ctx.id);
    info!(session = ctx.id, namespace = %msg.namespace.to_path(), "namespace withdrawn");
    Ok(())
}

/// A unidirectional data stream from the peer.
pub async fn data_stream(
    ctx: &Arc<Ctx>,
    mut reader: Reader,
    stream_type: u64,
) -> Result<(), SessionError> {
    match StreamType::from_u64(stream_type).map_err(SessionError::Decode)? {
        StreamType::Subgroup(_) => subgroup_stream(ctx, reader).await,
        StreamType::Fetch => {
            // The answer to a joining FETCH we sent upstream.
            let Some(header) = reader
                .decode(|b| moqt::data::FetchHeader::decode(b))
                .await?
            else {
                return Ok(());
            };
            if let Err(mut reader) = ctx.deliver_fetch(header.request_id, reader) {
                reader.stop(crate::RESET_CANCELLED);
            }
            Ok(())
        }
        StreamType::Padding => {
            reader.stop(0);
            Ok(())
        }
        StreamType::Control => Err(SessionError::Protocol("second control stream".into())),
    }
}

async fn subgroup_stream(ctx: &Arc<Ctx>, mut reader: Reader) -> Result<(), SessionError> {
    let Some(header) = reader.decode(|b| SubgroupHeader::decode(b)).await? else {
        return Ok(());
    };
    let Some(inbound) = ctx.inbound.wait(header.track_alias).await else {
        debug!(
            session = ctx.id,
            alias = header.track_alias,
            "data for an unknown track alias: ignored"
        );
        reader.stop(crate::RESET_CANCELLED);
        return Ok(());
    };
    inbound.streams.start();
    let counted = inbound.streams.clone();
    let result = subgroup_objects(reader, header, inbound).await;
    counted.end();
    result
}

async fn subgroup_objects(
    mut reader: Reader,
    header: SubgroupHeader,
    inbound: Inbound,
) -> Result<(), SessionError> {
    let track = inbound.track;
    let priority = header.priority_or(inbound.default_priority);
    let mut decoder = SubgroupObjectDecoder::new(&header);
    let mut subgroup = None;
    let result = loop {
        match reader.has_more().await {
            Ok(true) => {}
            Ok(false) => break Ok(SubgroupEnd::Finished),
            Err(SessionError::Reset(code)) => break Ok(SubgroupEnd::Reset(code)),
            Err(SessionError::Transport(_)) => {
                break Ok(SubgroupEnd::Reset(crate::RESET_CANCELLED))
            }
            Err(e) => break Err(e),
        }
        let h = match reader.decode(|b| decoder.decode(b)).await {
            Ok(Some(h)) => h,
            Ok(None) => break Ok(SubgroupEnd::Finished),
            Err(SessionError::Reset(code)) => break Ok(SubgroupEnd::Reset(code)),
            Err(SessionError::Transport(_)) => {
                break Ok(SubgroupEnd::Reset(crate::RESET_CANCELLED))
            }
            Err(e) => break Err(e),
        };
        if h.payload_len > MAX_OBJECT_BYTES {
            reader.stop(crate::RESET_CANCELLED);
            break Ok(SubgroupEnd::Reset(crate::RESET_CANCELLED));
        }
        let received = Instant::now();
        let payload = match reader.bytes(h.payload_len as usize).await {
            Ok(p) => p,
            Err(SessionError::Reset(code)) => break Ok(SubgroupEnd::Reset(code)),
            Err(SessionError::Transport(_)) => {
                break Ok(SubgroupEnd::Reset(crate::RESET_CANCELLED))
            }
            Err(e) => break Err(e),
        };
        if subgroup.is_none() {
            let sg_id = decoder.subgroup_id().unwrap_or(0);
            if track.generation() != inbound.generation {
                // A newer publisher owns the track now.
                reader.stop(crate::RESET_CANCELLED);
                return Ok(());
            }
            let joining = inbound.join.as_ref().filter(|j| j.group == header.group_id);
            if let Some(gate) = joining {
                // The joining FETCH is writing this group's earlier objects: append after them.
                gate.continued
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(sg_id);
                let mut done = gate.done.clone();
                let _ = tokio::time::timeout(JOIN_WAIT, done.wait_for(|d| *d)).await;
                subgroup = Some(track.join_subgroup(
                    header.group_id,
                    sg_id,
                    priority,
                    header.end_of_group,
                    header.has_properties,
                ));
            } else {
                match track.create_subgroup(
                    header.group_id,
                    sg_id,
                    priority,
                    header.end_of_group,
                    header.has_properties,
                ) {
                    Some(sg) => subgroup = Some(sg),
                    None => {
                        reader.stop(crate::RESET_CANCELLED);
                        return Ok(());
                    }
                }
            }
        }
        if subgroup
            .as_ref()
            .and_then(|sg| sg.last_object_id())
            .is_some_and(|last| h.object_id <= last)
        {
            // Already written by the joining FETCH.
            continue;
        }
        if let Some(sg) = &subgroup {
            metrics::counter!("relay_ingress_bytes_total").increment(payload.len() as u64);
            track.push_object(
                sg,
                Object {
                    id: h.object_id,
                    status: h.status,
                    properties: h.properties,
                    payload,
                    received,
                },
            );
            if h.status == ObjectStatus::EndOfTrack {
                break Ok(SubgroupEnd::Finished);
            }
        }
    };
    match (result, subgroup) {
        (Ok(end), Some(sg)) => {
            track.end_subgroup(&sg, end);
            Ok(())
        }
        (Ok(_), None) => Ok(()),
        (Err(e), Some(sg)) => {
            track.end_subgroup(&sg, SubgroupEnd::Reset(crate::RESET_CANCELLED));
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

/// Object datagrams from the peer: each goes into its group's datagram lane and out to
/// subscribers as a datagram. Malformed datagrams close the session (PROTOCOL_VIOLATION);
/// datagrams for unknown aliases are dropped (they may race the PUBLISH that defines them).
pub async fn datagrams(ctx: Arc<Ctx>) {
    loop {
        let dgram = tokio::select! {
            d = ctx.session.read_datagram() => match d {
                Ok(d) => d,
                Err(_) => return,
            },
            _ = ctx.closed.cancelled() => return,
        };
        let object = match moqt::data::Datagram::decode(&dgram) {
            Ok(moqt::data::Datagram::Object(o)) => o,
            Ok(moqt::data::Datagram::Padding(_)) => continue,
            Err(e) => {
                ctx.fail(&SessionError::Decode(e));
                return;
            }
        };
        let Some(inbound) = ctx.inbound.get(object.track_alias) else {
            metrics::counter!("relay_datagrams_dropped_total").increment(1);
            continue;
        };
        if inbound.track.generation() != inbound.generation {
            continue;
        }
        let priority = object
            .publisher_priority
            .unwrap_or(inbound.default_priority);
        let lane = inbound.track.datagram_lane(object.group_id, priority);
        let (status, payload) = match object.content {
            moqt::data::DatagramContent::Payload(p) => (ObjectStatus::Normal, p),
            moqt::data::DatagramContent::Status(s) => (s, Bytes::new()),
        };
        if lane
            .last_object_id()
            .is_some_and(|last| object.object_id <= last)
        {
            // Datagrams can arrive out of order; the lane keeps increasing ids only.
            continue;
        }
        inbound.track.push_object(
            &lane,
            Object {
                id: object.object_id,
                status,
                properties: object.properties,
                payload,
                received: Instant::now(),
            },
        );
    }
}
