//! The subscribing side of a session: SUBSCRIBE (fan-out of live groups), FETCH (from the
//! cache), TRACK_STATUS and SUBSCRIBE_NAMESPACE.
//!
//! Fan-out: every subgroup a subscriber receives is written by its own task onto its own QUIC
//! stream, reading the shared subgroup buffer at its own pace. QUIC stream priorities follow
//! the draft's scheduling order (subscriber priority, then publisher priority, then group
//! order). When a newer group starts, older subgroups still being written get a short lag
//! budget; if they are not done by then they are reset (DELIVERY_TIMEOUT) so a slow viewer
//! skips ahead instead of falling further behind. Nothing a subscriber does blocks the
//! publisher or another subscriber.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use moqt::data::{
    FetchHeader, FetchObjectEncoder, FetchObjectHeader, ObjectHeader, SubgroupHeader, SubgroupId,
    SubgroupObjectEncoder,
};
use moqt::message::{
    ControlMessage, Fetch, FetchOk, FetchType, Namespace, NamespaceDone, PublishDone, Subscribe,
    SubscribeNamespace, SubscribeOk, TrackStatus,
};
use moqt::params::{GroupOrder, Parameters, SubscriptionFilter};
use moqt::Encode;
use moqt::{Location as WireLocation, ReasonPhrase, TrackNamespace};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tracing::debug;
use web_transport_quinn::{SendStream, Session};

use crate::auth::Action;
use crate::error::{done, request, SessionError};
use crate::io::{self, Reader};
use crate::registry::NamespaceEvent;
use crate::session::{reject, reject_auth, request_ok, track_name, Ctx, PrefixKind};
use crate::track::{Location, Subgroup, SubgroupEnd, Track, TrackEvent};

/// What a joining FETCH needs to know about the subscription it joins.
#[derive(Clone)]
pub struct Joining {
    pub track: Arc<Track>,
    /// The Largest Location when the subscription started forwarding.
    pub location: Option<Location>,
}

fn wire(l: Location) -> WireLocation {
    WireLocation {
        group: l.group,
        object: l.object,
    }
}

fn local(l: WireLocation) -> Location {
    Location::new(l.group, l.object)
}

async fn authorize_or_reject(
    ctx: &Arc<Ctx>,
    send: &mut SendStream,
    namespace: &TrackNamespace,
    track: Option<&bytes::Bytes>,
    params: &Parameters,
    scope: tokio_util::sync::CancellationToken,
) -> Result<Option<Box<dyn std::any::Any + Send + Sync>>, SessionError> {
    match ctx
        .authorize(Action::Subscribe, namespace, track, params, scope)
        .await
    {
        Ok(g) => Ok(g),
        Err(e @ SessionError::Unauthorized(_)) => {
            reject_auth(send).await;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// SUBSCRIBE: deliver a track's objects to this peer until it ends or the peer cancels.
pub async fn subscribe(
    ctx: &Arc<Ctx>,
    msg: Subscribe,
    mut send: SendStream,
    mut recv: Reader,
) -> Result<(), SessionError> {
    let scope = ctx.closed.child_token();
    let _guard = authorize_or_reject(
        ctx,
        &mut send,
        &msg.namespace,
        Some(&msg.track_name),
        &msg.params,
        scope.clone(),
    )
    .await?;
    let name = track_name(&msg.namespace, &msg.track_name);
    let track = match ctx.shared.registry.lookup_ready(&name).await {
        Ok(track) => track,
        Err(reason) => {
            reject(&mut send, request::DOES_NOT_EXIST, &reason).await;
            return Ok(());
        }
    };

    let alias = ctx.next_alias();
    let mut established = None;
    let result = serve(
        ctx,
        &track,
        alias,
        &msg.params,
        &mut send,
        &mut recv,
        scope.clone(),
        |largest, info| {
            let mut params = Parameters::new();
            if let Some(l) = largest {
                params.set_largest_object(wire(l));
            }
            // Registered before SUBSCRIBE_OK leaves, so a joining FETCH sent on receipt finds it.
            let forward = msg.params.forward_or_default();
            ctx.subscriptions_insert(
                msg.request_id,
                Joining {
                    track: track.clone(),
                    location: if forward { largest } else { None },
                },
            );
            established = Some(msg.request_id);
            Some(ControlMessage::SubscribeOk(SubscribeOk {
                track_alias: alias,
                params,
                properties: info.properties.clone(),
            }))
        },
    )
    .await;
    if let Some(id) = established {
        ctx.subscriptions_remove(id);
    }
    result
}

/// Where a subscription starts and ends, from its filter and the track's largest location.
fn filter_range(
    filter: Option<SubscriptionFilter>,
    largest: Option<Location>,
) -> Result<(Location, Option<u64>), SessionError> {
    Ok(match filter {
        Some(SubscriptionFilter::NextGroupStart) => (
            largest
                .map(|l| Location::new(l.group + 1, 0))
                .unwrap_or_default(),
            None,
        ),
        Some(SubscriptionFilter::LargestObject) => (
            largest
                .map(|l| Location::new(l.group, l.object + 1))
                .unwrap_or_default(),
            None,
        ),
        Some(SubscriptionFilter::AbsoluteStart(s)) => (local(s), None),
        Some(SubscriptionFilter::AbsoluteRange {
            start,
            end_group_delta,
        }) => {
            let end = start
                .group
                .checked_add(end_group_delta)
                .ok_or_else(|| SessionError::Protocol("end group overflows".into()))?;
            (local(start), Some(end))
        }
        None => (Location::default(), None),
    })
}

/// Serve one established subscription (SUBSCRIBE, or a PUBLISH the relay sent for
/// SUBSCRIBE_TRACKS): send the opening message `open` builds (nothing when it returns `None`),
/// fan the track out until it ends or the subscriber cancels, apply REQUEST_UPDATEs, and
/// finish with PUBLISH_DONE.
#[allow(clippy::too_many_arguments)]
async fn serve(
    ctx: &Arc<Ctx>,
    track: &Arc<Track>,
    alias: u64,
    params: &Parameters,
    send: &mut SendStream,
    recv: &mut Reader,
    scope: tokio_util::sync::CancellationToken,
    open: impl FnOnce(Option<Location>, &crate::track::TrackInfo) -> Option<ControlMessage>,
) -> Result<(), SessionError> {
    // Take the event stream before reading the state, so nothing falls in between.
    let events = track.events();
    let largest = track.largest();
    let (start, end_group) = filter_range(params.subscription_filter(), largest)?;
    let info = track.info();
    let order = match params.group_order() {
        Some(o) => o,
        None if info.group_order == 2 => GroupOrder::Descending,
        None => GroupOrder::Ascending,
    };
    if let Some(msg) = open(largest, &info) {
        io::send(send, msg).await?;
    }
    metrics::gauge!("relay_subscriptions").increment(1.0);

    let (settings_tx, settings_rx) = watch::channel(Settings {
        subscriber_priority: params.subscriber_priority_or_default(),
        forward: params.forward_or_default(),
    });
    let lag_budget = params
        .subgroup_delivery_timeout()
        .filter(|t| *t > 0)
        .map(Duration::from_millis)
        .unwrap_or(ctx.shared.config.lag_budget);
    // OBJECT_DELIVERY_TIMEOUT: the smaller of the subscriber's parameter and the publisher's
    // track property, when either is set (0 = none).
    let object_timeout = [
        params.object_delivery_timeout(),
        info.properties.object_delivery_timeout(),
    ]
    .into_iter()
    .flatten()
    .filter(|t| *t > 0)
    .min()
    .map(Duration::from_millis);
    let delivery = Delivery {
        session: ctx.session.clone(),
        track: track.clone(),
        alias,
        order,
        start,
        end_group,
        lag_budget,
        object_timeout,
        default_priority: info.publisher_priority,
        settings: settings_rx,
        streams: Arc::new(AtomicU64::new(0)),
    };
    let streams = delivery.streams.clone();
    let run = delivery.run(events);
    tokio::pin!(run);

    let outcome = loop {
        tokio::select! {
            end = &mut run => break Some(end),
            m = recv.message() => match m {
                Ok(Some(ControlMessage::RequestUpdate(u))) => {
                    settings_tx.send_modify(|s| {
                        if let Some(p) = u.params.subscriber_priority() {
                            s.subscriber_priority = p;
                        }
                        if let Some(f) = u.params.forward() {
                            s.forward = f;
                        }
                    });
                    request_ok(send, Parameters::new()).await?;
                }
                Ok(Some(other)) => {
                    scope.cancel();
                    metrics::gauge!("relay_subscriptions").decrement(1.0);
                    return Err(SessionError::Protocol(format!("{} on a subscription's stream", other.name())));
                }
                // The subscriber closed or reset its side: unsubscribe.
                Ok(None) | Err(_) => break None,
            },
            _ = send.stopped() => break None,
            _ = ctx.closed.cancelled() => break None,
        }
    };
    scope.cancel();
    metrics::gauge!("relay_subscriptions").decrement(1.0);
    if let Some(end) = outcome {
        let count = streams.load(Ordering::Relaxed);
        let _ = io::send(
            send,
            PublishDone {
                status_code: end.code,
                stream_count: count,
                reason: ReasonPhrase::new(&end.reason),
            },
        )
        .await;
        let _ = send.finish();
    }
    Ok(())
}

/// SUBSCRIBE_TRACKS: PUBLISH every track under the prefix to this peer, now and as tracks
/// appear, each on its own request stream.
pub async fn subscribe_tracks(
    ctx: &Arc<Ctx>,
    msg: moqt::SubscribeTracks,
    mut send: SendStream,
    mut recv: Reader,
) -> Result<(), SessionError> {
    let scope = ctx.closed.child_token();
    let prefix = msg.prefix.clone();
    let _guard =
        authorize_or_reject(ctx, &mut send, &prefix, None, &msg.params, scope.clone()).await?;
    let Some(_claim) = ctx.claim_prefix(PrefixKind::Tracks, prefix.fields()) else {
        reject(
            &mut send,
            request::PREFIX_OVERLAP,
            "overlaps another SUBSCRIBE_TRACKS of this session",
        )
        .await;
        return Ok(());
    };
    let mut added = ctx.shared.registry.track_added();
    let existing = ctx.shared.registry.tracks_under(prefix.fields());
    request_ok(&mut send, Parameters::new()).await?;
    let forward = msg.params.forward_or_default();
    let mut published = std::collections::HashSet::new();
    for track in existing {
        if published.insert(track.name.clone()) {
            spawn_publish(ctx, track, forward, scope.clone());
        }
    }
    loop {
        tokio::select! {
            t = added.recv() => match t {
                Ok(track) if track.name.namespace.starts_with(prefix.fields()) => {
                    if published.insert(track.name.clone()) {
                        spawn_publish(ctx, track, forward, scope.clone());
                    }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            m = recv.message() => match m {
                Ok(Some(ControlMessage::RequestUpdate(_))) => request_ok(&mut send, Parameters::new()).await?,
                Ok(Some(other)) => return Err(SessionError::Protocol(format!("{} on a SUBSCRIBE_TRACKS stream", other.name()))),
                Ok(None) | Err(_) => break,
            },
            _ = ctx.closed.cancelled() => break,
        }
    }
    // Subscriptions established by PUBLISH live on their own streams and outlive this one.
    Ok(())
}

fn spawn_publish(
    ctx: &Arc<Ctx>,
    track: Arc<Track>,
    forward: bool,
    scope: tokio_util::sync::CancellationToken,
) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        if let Err(e) = publish_to_peer(&ctx, &track, forward, scope).await {
            ctx.fail(&e);
        }
    });
}

/// Send PUBLISH for `track` to the peer, wait for PUBLISH_OK, then serve it like a SUBSCRIBE.
async fn publish_to_peer(
    ctx: &Arc<Ctx>,
    track: &Arc<Track>,
    forward: bool,
    scope: tokio_util::sync::CancellationToken,
) -> Result<(), SessionError> {
    let (mut send, mut recv) = ctx.open_request().await?;
    let namespace = TrackNamespace::new(track.name.namespace.iter().cloned())
        .map_err(|e| SessionError::Internal(e.to_string()))?;
    let alias = ctx.next_alias();
    let mut params = Parameters::new();
    if let Some(l) = track.largest() {
        params.set_largest_object(wire(l));
    }
    if !forward {
        params.set_forward(false);
    }
    let publish = moqt::Publish {
        request_id: ctx.next_request_id(),
        namespace,
        track_name: track.name.name.clone(),
        track_alias: alias,
        params,
        properties: track.info().properties,
    };
    io::send(&mut send, publish).await?;
    let ok = match recv.message().await {
        Ok(Some(ControlMessage::RequestOk(ok))) | Ok(Some(ControlMessage::PublishOk(ok))) => ok,
        Ok(Some(ControlMessage::RequestError(_))) | Ok(None) | Err(SessionError::Reset(_)) => {
            return Ok(())
        }
        Ok(Some(other)) => {
            return Err(SessionError::Protocol(format!(
                "{} in reply to PUBLISH",
                other.name()
            )))
        }
        Err(e) => return Err(e),
    };
    let mut sub_params = ok.params.clone();
    if sub_params.forward().is_none() && !forward {
        sub_params.set_forward(false);
    }
    let scope = scope.child_token();
    serve(
        ctx,
        track,
        alias,
        &sub_params,
        &mut send,
        &mut recv,
        scope,
        |_, _| None,
    )
    .await
}

/// Why a delivery stopped.
struct DeliveryEnd {
    code: u64,
    reason: String,
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    subscriber_priority: u8,
    forward: bool,
}

/// One subscription's fan-out state.
struct Delivery {
    session: Session,
    track: Arc<Track>,
    alias: u64,
    order: GroupOrder,
    start: Location,
    end_group: Option<u64>,
    lag_budget: Duration,
    /// Objects older than this (since the relay received them) are not sent: the subgroup's
    /// stream is reset with DELIVERY_TIMEOUT, or the datagram dropped.
    object_timeout: Option<Duration>,
    default_priority: u8,
    settings: watch::Receiver<Settings>,
    streams: Arc<AtomicU64>,
}

impl Delivery {
    async fn run(self, mut events: broadcast::Receiver<TrackEvent>) -> DeliveryEnd {
        let this = Arc::new(self);
        let mut started: HashSet<(u64, u64)> = HashSet::new();
        let mut writers: JoinSet<()> = JoinSet::new();
        let mut newest_group: Option<u64> = None;
        // Per-group deadline senders: when a newer group starts, older writers get a deadline.
        let mut deadlines: Vec<(u64, watch::Sender<Option<Instant>>)> = Vec::new();

        // Cached subgroups that pass the filter (e.g. AbsoluteStart in the past).
        for group in this.track.groups() {
            for sg in group.subgroups() {
                this.start_writer(
                    &sg,
                    &mut started,
                    &mut writers,
                    &mut newest_group,
                    &mut deadlines,
                );
            }
        }
        if let Some(end) = this.track.ended() {
            while writers.join_next().await.is_some() {}
            return DeliveryEnd {
                code: end.code,
                reason: end.reason,
            };
        }
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(TrackEvent::Subgroup(sg)) => {
                        this.start_writer(&sg, &mut started, &mut writers, &mut newest_group, &mut deadlines);
                        if this.end_group.is_some_and(|e| sg.group > e) {
                            break;
                        }
                    }
                    Ok(TrackEvent::Ended(end)) => {
                        // Let in-flight subgroups finish (bounded by their own deadlines).
                        let drain = async { while writers.join_next().await.is_some() {} };
                        let _ = tokio::time::timeout(this.lag_budget + Duration::from_millis(500), drain).await;
                        return DeliveryEnd { code: end.code, reason: end.reason };
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Catch up from the cache; only the newest groups matter now.
                        for group in this.track.groups() {
                            for sg in group.subgroups() {
                                this.start_writer(&sg, &mut started, &mut writers, &mut newest_group, &mut deadlines);
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                Some(_) = writers.join_next(), if !writers.is_empty() => {}
            }
        }
        while writers.join_next().await.is_some() {}
        DeliveryEnd {
            code: done::SUBSCRIPTION_ENDED,
            reason: "end of the requested range".into(),
        }
    }

    fn passes(&self, sg: &Subgroup) -> bool {
        sg.group >= self.start.group && self.end_group.is_none_or(|e| sg.group <= e)
    }

    fn start_writer(
        self: &Arc<Self>,
        sg: &Arc<Subgroup>,
        started: &mut HashSet<(u64, u64)>,
        writers: &mut JoinSet<()>,
        newest_group: &mut Option<u64>,
        deadlines: &mut Vec<(u64, watch::Sender<Option<Instant>>)>,
    ) {
        if !self.passes(sg) || !started.insert((sg.group, sg.id)) {
            return;
        }
        if newest_group.is_none_or(|n| sg.group > n) {
            *newest_group = Some(sg.group);
            let at = Instant::now() + self.lag_budget;
            deadlines.retain(|(g, tx)| {
                if *g < sg.group {
                    tx.send_if_modified(|d| {
                        if d.is_none() {
                            *d = Some(at);
                            true
                        } else {
                            false
                        }
                    });
                    // Keep the sender alive until the writer finishes (it holds a receiver).
                    !tx.is_closed()
                } else {
                    true
                }
            });
        }
        let (tx, rx) = watch::channel(None);
        if newest_group.is_some_and(|n| sg.group < n) {
            // Already older than the live edge: it gets the lag budget from now.
            let _ = tx.send(Some(Instant::now() + self.lag_budget));
        }
        deadlines.push((sg.group, tx));
        let this = self.clone();
        let sg = sg.clone();
        writers.spawn(async move {
            this.write_subgroup(sg, rx).await;
        });
    }

    /// QUIC stream priority (higher first) from the draft's scheduling order.
    fn priority(&self, sg: &Subgroup) -> i32 {
        let sub = self.settings.borrow().subscriber_priority as i32;
        let publ = sg.priority as i32;
        // 15 bits of group order: newer groups first when descending, older first ascending.
        let rank = (sg.group.saturating_sub(self.start.group) & 0x7fff) as i32;
        let group_rank = match self.order {
            GroupOrder::Descending => rank,
            GroupOrder::Ascending => 0x7fff - rank,
        };
        ((255 - sub) << 23) | ((255 - publ) << 15) | group_rank
    }

    async fn write_subgroup(
        self: Arc<Self>,
        sg: Arc<Subgroup>,
        mut deadline: watch::Receiver<Option<Instant>>,
    ) {
        // Objects below the start location are skipped (a filter can start mid-group).
        let skip_below = if sg.group == self.start.group {
            self.start.object
        } else {
            0
        };
        let mut progress = sg.watch();
        let mut settings = self.settings.clone();
        // Wait for forward state 1 before opening anything.
        while !settings.borrow().forward {
            if settings.changed().await.is_err() {
                return;
            }
        }
        if sg.datagram {
            self.write_datagrams(&sg, skip_below, &mut progress, &mut deadline)
                .await;
            return;
        }
        let mut stream = match self.session.open_uni().await {
            Ok(s) => s,
            Err(_) => return,
        };
        self.streams.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_priority(self.priority(&sg));
        let header = SubgroupHeader {
            track_alias: self.alias,
            group_id: sg.group,
            subgroup_id: SubgroupId::Explicit(sg.id),
            publisher_priority: (sg.priority != self.default_priority).then_some(sg.priority),
            has_properties: sg.has_properties,
            end_of_group: sg.end_of_group,
            first_object: skip_below == 0,
        };
        let mut encoder = SubgroupObjectEncoder::new(&header);
        let mut buf = BytesMut::with_capacity(256);
        header.encode(&mut buf);
        let mut next = 0usize;
        let mut wrote_header = false;
        loop {
            let p = *progress.borrow_and_update();
            if next < p.len {
                for obj in sg.get_from(next) {
                    next += 1;
                    if obj.id < skip_below {
                        continue;
                    }
                    if self
                        .object_timeout
                        .is_some_and(|t| obj.received.elapsed() > t)
                    {
                        metrics::counter!("relay_objects_expired_total").increment(1);
                        let _ = stream.reset(crate::RESET_DELIVERY_TIMEOUT);
                        return;
                    }
                    let h = ObjectHeader {
                        object_id: obj.id,
                        properties: obj.properties.clone(),
                        payload_len: obj.payload.len() as u64,
                        status: obj.status,
                    };
                    if encoder.encode(&h, &mut buf).is_err() {
                        let _ = stream.reset(crate::RESET_CANCELLED);
                        return;
                    }
                    let head = buf.split().freeze();
                    let write = async {
                        stream.write_chunk(head).await?;
                        if !obj.payload.is_empty() {
                            stream.write_chunk(obj.payload.clone()).await?;
                        }
                        Ok::<(), web_transport_quinn::WriteError>(())
                    };
                    let result = tokio::select! {
                        r = write => r.map(|_| true),
                        _ = wait_deadline(&mut deadline) => Ok(false),
                    };
                    match result {
                        Ok(true) => {
                            wrote_header = true;
                            metrics::counter!("relay_egress_bytes_total")
                                .increment(obj.payload.len() as u64);
                        }
                        Ok(false) => {
                            debug!(
                                group = sg.group,
                                "subscriber behind: resetting an old group"
                            );
                            metrics::counter!("relay_groups_abandoned_total").increment(1);
                            let _ = stream.reset(crate::RESET_DELIVERY_TIMEOUT);
                            return;
                        }
                        Err(_) => return,
                    }
                }
                continue;
            }
            match p.end {
                SubgroupEnd::Finished => {
                    if !wrote_header && !buf.is_empty() {
                        let _ = stream.write_chunk(buf.split().freeze()).await;
                    }
                    let _ = stream.finish();
                    return;
                }
                SubgroupEnd::Reset(code) => {
                    let _ = stream.reset(code);
                    return;
                }
                SubgroupEnd::Open => {}
            }
            tokio::select! {
                r = progress.changed() => if r.is_err() { let _ = stream.reset(crate::RESET_CANCELLED); return; },
                _ = wait_deadline(&mut deadline) => {
                    metrics::counter!("relay_groups_abandoned_total").increment(1);
                    let _ = stream.reset(crate::RESET_DELIVERY_TIMEOUT);
                    return;
                }
            }
        }
    }
}

impl Delivery {
    /// Forward a group's datagram lane as object datagrams (dropped, never queued, when the
    /// connection cannot take them: datagrams are the lossy lane by design).
    async fn write_datagrams(
        &self,
        sg: &Subgroup,
        skip_below: u64,
        progress: &mut watch::Receiver<crate::track::SubgroupProgress>,
        deadline: &mut watch::Receiver<Option<Instant>>,
    ) {
        let mut next = 0usize;
        loop {
            let p = *progress.borrow_and_update();
            for obj in sg.get_from(next) {
                next += 1;
                if obj.id < skip_below
                    || self
                        .object_timeout
                        .is_some_and(|t| obj.received.elapsed() > t)
                {
                    continue;
                }
                let content = if obj.status == moqt::data::ObjectStatus::Normal {
                    moqt::data::DatagramContent::Payload(obj.payload.clone())
                } else {
                    moqt::data::DatagramContent::Status(obj.status)
                };
                let d = moqt::data::ObjectDatagram {
                    track_alias: self.alias,
                    group_id: sg.group,
                    object_id: obj.id,
                    publisher_priority: (sg.priority != self.default_priority)
                        .then_some(sg.priority),
                    properties: obj.properties.clone(),
                    end_of_group: false,
                    content,
                };
                if let Ok(bytes) = d.to_bytes() {
                    if self.session.send_datagram(bytes).is_ok() {
                        metrics::counter!("relay_egress_bytes_total")
                            .increment(obj.payload.len() as u64);
                    }
                }
            }
            if p.end != SubgroupEnd::Open {
                return;
            }
            tokio::select! {
                r = progress.changed() => if r.is_err() { return; },
                _ = wait_deadline(deadline) => return,
            }
        }
    }
}

/// Resolves when the deadline (once set) passes; never if the sender is gone without one.
async fn wait_deadline(rx: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let d = *rx.borrow_and_update();
        match d {
            Some(at) => {
                tokio::time::sleep_until(at.into()).await;
                return;
            }
            None => {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// FETCH: objects from the cache on one unidirectional stream.
pub async fn fetch(
    ctx: &Arc<Ctx>,
    msg: Fetch,
    mut send: SendStream,
    mut recv: Reader,
) -> Result<(), SessionError> {
    let scope = ctx.closed.child_token();
    let (track, start, end) = match &msg.fetch_type {
        FetchType::Standalone {
            namespace,
            track_name: tn,
            start,
            end,
        } => {
            let _guard = authorize_or_reject(
                ctx,
                &mut send,
                namespace,
                Some(tn),
                &msg.params,
                scope.clone(),
            )
            .await?;
            let track = match ctx
                .shared
                .registry
                .lookup_ready(&track_name(namespace, tn))
                .await
            {
                Ok(track) => track,
                Err(reason) => {
                    reject(&mut send, request::DOES_NOT_EXIST, &reason).await;
                    return Ok(());
                }
            };
            (track, local(*start), local(*end))
        }
        FetchType::RelativeJoining {
            joining_request_id,
            joining_start,
        }
        | FetchType::AbsoluteJoining {
            joining_request_id,
            joining_start,
        } => {
            let Some(joining) = ctx.subscription(*joining_request_id) else {
                reject(
                    &mut send,
                    request::INVALID_JOINING_REQUEST_ID,
                    "no established subscription with that request id",
                )
                .await;
                return Ok(());
            };
            let Some(j) = joining.location else {
                reject(
                    &mut send,
                    request::INVALID_RANGE,
                    "nothing has been published on this track yet",
                )
                .await;
                return Ok(());
            };
            let start_group = match msg.fetch_type {
                FetchType::RelativeJoining { .. } => j.group.saturating_sub(*joining_start),
                _ => *joining_start,
            };
            (
                joining.track,
                Location::new(start_group, 0),
                Location::new(j.group, j.object + 1),
            )
        }
    };
    let Some(largest) = track.largest() else {
        reject(
            &mut send,
            request::INVALID_RANGE,
            "nothing has been published on this track yet",
        )
        .await;
        return Ok(());
    };
    if start > largest {
        reject(
            &mut send,
            request::INVALID_RANGE,
            "start is beyond the largest object",
        )
        .await;
        return Ok(());
    }
    // End is exclusive ({g, o+1}); object 0 means "the whole group".
    let whole_end_group = end.object == 0;
    let last_group = end.group;
    let in_range = |g: u64, o: u64| {
        Location::new(g, o) >= start
            && g <= last_group
            && (whole_end_group || g < last_group || o < end.object)
    };
    let largest_exclusive = Location::new(largest.group, largest.object + 1);
    let end_location = if whole_end_group && end.group < largest.group {
        end
    } else if Location::new(
        end.group,
        if whole_end_group {
            u64::MAX
        } else {
            end.object
        },
    ) > largest_exclusive
    {
        largest_exclusive
    } else {
        end
    };
    let order = msg.params.group_order().unwrap_or(GroupOrder::Ascending);
    io::send(
        &mut send,
        FetchOk {
            end_of_track: track.ended().is_some(),
            end_location: wire(end_location),
            params: Parameters::new(),
            properties: track.info().properties,
        },
    )
    .await?;

    // Collect the cached objects in range, in the requested group order.
    let mut groups = track.groups();
    groups.retain(|g| g.id >= start.group && g.id <= last_group);
    if order == GroupOrder::Descending {
        groups.reverse();
    }
    let mut stream = ctx
        .session
        .open_uni()
        .await
        .map_err(SessionError::from_session)?;
    let _ = stream.set_priority(i32::MAX - 2);
    let mut buf = BytesMut::new();
    FetchHeader {
        request_id: msg.request_id,
    }
    .encode(&mut buf);
    let mut encoder = FetchObjectEncoder::new(order);
    let write = async {
        stream
            .write_chunk(buf.split().freeze())
            .await
            .map_err(SessionError::from_write)?;
        for g in groups {
            let mut objects: Vec<(u64, u8, crate::track::Object)> = Vec::new();
            for sg in g.subgroups() {
                for o in sg.get_from(0) {
                    if in_range(g.id, o.id) && o.status == moqt::data::ObjectStatus::Normal {
                        objects.push((sg.id, sg.priority, o));
                    }
                }
            }
            objects.sort_by_key(|(_, _, o)| o.id);
            for (sg_id, prio, o) in objects {
                let h = FetchObjectHeader {
                    group_id: g.id,
                    subgroup_id: Some(sg_id),
                    object_id: o.id,
                    publisher_priority: prio,
                    properties: o.properties.clone(),
                    payload_len: o.payload.len() as u64,
                };
                encoder
                    .encode(&h, &mut buf)
                    .map_err(|e| SessionError::Internal(e.to_string()))?;
                stream
                    .write_chunk(buf.split().freeze())
                    .await
                    .map_err(SessionError::from_write)?;
                stream
                    .write_chunk(o.payload.clone())
                    .await
                    .map_err(SessionError::from_write)?;
            }
        }
        let _ = stream.finish();
        Ok::<(), SessionError>(())
    };
    tokio::select! {
        r = write => {
            if let Err(e) = r {
                debug!(session = ctx.id, %e, "fetch stream ended early");
            }
        }
        _ = send.stopped() => { let _ = stream.reset(crate::RESET_CANCELLED); }
        _ = ctx.closed.cancelled() => {}
    }
    // The request stream stays open until the subscriber is done with it.
    let _ = send.finish();
    let _ = tokio::time::timeout(Duration::from_secs(5), recv.has_more()).await;
    scope.cancel();
    Ok(())
}

/// TRACK_STATUS: the largest location and the track's properties, without subscribing.
pub async fn track_status(
    ctx: &Arc<Ctx>,
    msg: TrackStatus,
    mut send: SendStream,
) -> Result<(), SessionError> {
    let scope = ctx.closed.child_token();
    let _guard = authorize_or_reject(
        ctx,
        &mut send,
        &msg.namespace,
        Some(&msg.track_name),
        &msg.params,
        scope.clone(),
    )
    .await?;
    let name = track_name(&msg.namespace, &msg.track_name);
    let track = match ctx.shared.registry.lookup_ready(&name).await {
        Ok(track) => track,
        Err(reason) => {
            reject(&mut send, request::DOES_NOT_EXIST, &reason).await;
            return Ok(());
        }
    };
    let mut params = Parameters::new();
    if let Some(l) = track.largest() {
        params.set_largest_object(wire(l));
    }
    io::send(
        &mut send,
        moqt::message::RequestOk {
            params,
            properties: track.info().properties,
        },
    )
    .await?;
    let _ = send.finish();
    scope.cancel();
    Ok(())
}

/// SUBSCRIBE_NAMESPACE: NAMESPACE / NAMESPACE_DONE for namespaces under a prefix.
pub async fn subscribe_namespace(
    ctx: &Arc<Ctx>,
    msg: SubscribeNamespace,
    mut send: SendStream,
    mut recv: Reader,
) -> Result<(), SessionError> {
    let scope = ctx.closed.child_token();
    let prefix = msg.prefix.clone();
    let _guard =
        authorize_or_reject(ctx, &mut send, &prefix, None, &msg.params, scope.clone()).await?;
    let Some(_claim) = ctx.claim_prefix(PrefixKind::Namespaces, prefix.fields()) else {
        reject(
            &mut send,
            request::PREFIX_OVERLAP,
            "overlaps another SUBSCRIBE_NAMESPACE of this session",
        )
        .await;
        return Ok(());
    };
    let (existing, mut events) = ctx.shared.registry.namespaces(prefix.fields());
    request_ok(&mut send, Parameters::new()).await?;
    let suffix = |ns: &[bytes::Bytes]| TrackNamespace::new(ns[prefix.len()..].iter().cloned()).ok();
    for ns in existing {
        if let Some(s) = suffix(&ns) {
            io::send(&mut send, Namespace { suffix: s }).await?;
        }
    }
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(NamespaceEvent::Announced(ns)) if ns.starts_with(prefix.fields()) => {
                    if let Some(s) = suffix(&ns) { io::send(&mut send, Namespace { suffix: s }).await?; }
                }
                Ok(NamespaceEvent::Withdrawn(ns)) if ns.starts_with(prefix.fields()) => {
                    if let Some(s) = suffix(&ns) { io::send(&mut send, NamespaceDone { suffix: s }).await?; }
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            m = recv.message() => match m {
                Ok(Some(ControlMessage::RequestUpdate(_))) => request_ok(&mut send, Parameters::new()).await?,
                Ok(Some(other)) => return Err(SessionError::Protocol(format!("{} on a SUBSCRIBE_NAMESPACE stream", other.name()))),
                Ok(None) | Err(_) => break,
            },
            _ = ctx.closed.cancelled() => break,
        }
    }
    scope.cancel();
    Ok(())
}
