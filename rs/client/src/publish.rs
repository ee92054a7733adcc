//! Publishing: PUBLISH, one unidirectional stream per group, PUBLISH_DONE.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use moqt::kvp::{
    KeyValuePair, PROP_DEFAULT_PUBLISHER_GROUP_ORDER, PROP_DEFAULT_PUBLISHER_PRIORITY,
};
use moqt::{
    AuthToken, ControlMessage, Encode, GroupOrder, ObjectHeader, ObjectStatus, Parameters,
    Properties, Publish, PublishDone, ReasonPhrase, SubgroupHeader, SubgroupId,
    SubgroupObjectEncoder, TrackNamespace,
};
use net::SendStream;
use tokio::task::AbortHandle;

use crate::connection::{Inner, CANCELLED};
use crate::error::Error;
use crate::io::{self, ReadFail, Reader};

/// PUBLISH_DONE status codes (draft-18).
pub mod status {
    /// INTERNAL_ERROR.
    pub const INTERNAL_ERROR: u64 = 0x0;
    /// UNAUTHORIZED.
    pub const UNAUTHORIZED: u64 = 0x1;
    /// TRACK_ENDED: the publisher is done with the track.
    pub const TRACK_ENDED: u64 = 0x2;
    /// SUBSCRIPTION_ENDED.
    pub const SUBSCRIPTION_ENDED: u64 = 0x3;
    /// GOING_AWAY.
    pub const GOING_AWAY: u64 = 0x4;
    /// TOO_FAR_BEHIND.
    pub const TOO_FAR_BEHIND: u64 = 0x5;
    /// EXPIRED.
    pub const EXPIRED: u64 = 0x6;
}

/// How many finished group streams are remembered so [`TrackPublisher::finish`] can wait for
/// their delivery before sending PUBLISH_DONE.
const RECENT_STREAMS: usize = 8;
/// Longest [`TrackPublisher::finish`] waits for outstanding group data to be acknowledged.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Options for [`crate::Connection::publish`].
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Publisher priority of every group (0 = highest). Default 128.
    pub priority: u8,
    /// The track's default group order for subscribers that do not ask for one
    /// (DEFAULT_PUBLISHER_GROUP_ORDER). Default: not sent (ascending).
    pub group_order: Option<GroupOrder>,
    /// Token for this request instead of [`crate::Config::token`].
    pub token: Option<String>,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            priority: 128,
            group_order: None,
            token: None,
        }
    }
}

pub(crate) async fn publish(
    conn: Arc<Inner>,
    namespace: TrackNamespace,
    track: &str,
    options: PublishOptions,
) -> Result<TrackPublisher, Error> {
    let shared = conn.shared.clone();
    let mut params = Parameters::new();
    if let Some(t) = shared.token(&options.token) {
        params.add_auth_token(AuthToken::bearer(t.as_bytes().to_vec()));
    }
    let mut properties = Properties::new();
    if options.priority != 128 {
        properties.set(KeyValuePair::int(
            PROP_DEFAULT_PUBLISHER_PRIORITY,
            options.priority.into(),
        )?);
    }
    if let Some(order) = options.group_order {
        properties.set(KeyValuePair::int(
            PROP_DEFAULT_PUBLISHER_GROUP_ORDER,
            order.to_u64(),
        )?);
    }
    let alias = shared.next_alias();
    let msg = Publish {
        request_id: shared.next_request_id(),
        namespace,
        track_name: Bytes::copy_from_slice(track.as_bytes()),
        track_alias: alias,
        params,
        properties,
    };
    let (send, mut recv) = shared.open_request(msg).await?;
    match shared.reply(&mut recv, "PUBLISH").await? {
        ControlMessage::RequestOk(_) | ControlMessage::PublishOk(_) => {}
        ControlMessage::RequestError(e) => {
            return Err(Error::Refused {
                code: e.error_code,
                reason: e.reason.to_string_lossy(),
            })
        }
        other => {
            return Err(Error::Protocol(format!(
                "{} in reply to PUBLISH",
                other.name()
            )))
        }
    }
    let stopped = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_request(recv, stopped.clone())).abort_handle();
    Ok(TrackPublisher {
        conn,
        alias,
        priority: options.priority,
        send: Some(send),
        watcher,
        stopped,
        next_group: AtomicU64::new(0),
        streams: AtomicU64::new(0),
        recent: Arc::new(Mutex::new(VecDeque::new())),
    })
}

/// Reads the relay's side of the PUBLISH stream after REQUEST_OK; notes when the relay ends
/// the publication (a newer publisher took the track over, or the session is going).
async fn watch_request(mut recv: Reader, stopped: Arc<AtomicBool>) {
    loop {
        match recv.message().await {
            // REQUEST_OK to updates we never send; tolerate anything else the draft may add.
            Ok(Some(_)) => continue,
            Ok(None) | Err(ReadFail::Reset(_)) | Err(_) => {
                stopped.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// A published track. Create groups with [`TrackPublisher::group`] or
/// [`TrackPublisher::next_group`]; end with [`TrackPublisher::finish`]. Dropping it without
/// `finish` resets the PUBLISH stream: the relay keeps the track for its grace period so a
/// reconnecting publisher can resume it.
///
/// Writes never wait on subscribers: data goes to the relay, which fans it out on its own.
pub struct TrackPublisher {
    conn: Arc<Inner>,
    alias: u64,
    priority: u8,
    send: Option<SendStream>,
    watcher: AbortHandle,
    stopped: Arc<AtomicBool>,
    next_group: AtomicU64,
    streams: AtomicU64,
    recent: Arc<Mutex<VecDeque<SendStream>>>,
}

impl std::fmt::Debug for TrackPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackPublisher")
            .field("alias", &self.alias)
            .field("priority", &self.priority)
            .field("next_group", &self.next_group.load(Ordering::Relaxed))
            .finish()
    }
}

impl TrackPublisher {
    /// The track alias this publisher chose (carried by its data streams).
    pub fn alias(&self) -> u64 {
        self.alias
    }

    /// Whether the relay ended the publication (e.g. another publisher took the track over) or
    /// the session is gone.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed) || self.conn.shared.close_reason().is_some()
    }

    /// Starts group `group_id` on a new unidirectional stream (SUBGROUP_HEADER with subgroup 0,
    /// this track's priority, END_OF_GROUP). Group ids should increase; [`Self::next_group`]
    /// continues after the largest id used here.
    pub async fn group(&self, group_id: u64) -> Result<GroupWriter, Error> {
        let shared = &self.conn.shared;
        if let Some(c) = shared.close_reason() {
            return Err(c.into());
        }
        if self.stopped.load(Ordering::Relaxed) {
            return Err(Error::Transport("the relay ended this publication".into()));
        }
        self.next_group
            .fetch_max(group_id.saturating_add(1), Ordering::Relaxed);
        let stream = shared
            .session
            .open_uni()
            .await
            .map_err(|e| shared.transport_error(e))?;
        // Newer groups first when the link is short of capacity.
        let _ = stream.set_priority(i32::try_from(group_id).unwrap_or(i32::MAX));
        self.streams.fetch_add(1, Ordering::Relaxed);
        let header = SubgroupHeader {
            track_alias: self.alias,
            group_id,
            subgroup_id: SubgroupId::Explicit(0),
            publisher_priority: Some(self.priority),
            has_properties: false,
            end_of_group: true,
            first_object: true,
        };
        let mut buf = BytesMut::with_capacity(64);
        header.encode(&mut buf);
        Ok(GroupWriter {
            conn: self.conn.clone(),
            stream: Some(stream),
            encoder: SubgroupObjectEncoder::new(&header),
            buf,
            group: group_id,
            next_object: 0,
            recent: self.recent.clone(),
        })
    }

    /// Starts the next group (0, 1, 2, … continuing after any id given to [`Self::group`]).
    pub async fn next_group(&self) -> Result<GroupWriter, Error> {
        let id = self.next_group.load(Ordering::Relaxed);
        self.group(id).await
    }

    /// Ends the track: waits (up to 2 s) until the data of the last groups is acknowledged,
    /// then sends PUBLISH_DONE with `status` (usually [`status::TRACK_ENDED`]) and closes the
    /// request stream.
    pub async fn finish(self, status: u64) -> Result<(), Error> {
        let reason = match status {
            status::TRACK_ENDED => "track ended",
            status::GOING_AWAY => "going away",
            _ => "",
        };
        self.finish_with_reason(status, reason).await
    }

    /// [`Self::finish`] with an explicit reason phrase.
    pub async fn finish_with_reason(mut self, status: u64, reason: &str) -> Result<(), Error> {
        let shared = self.conn.shared.clone();
        let recent: Vec<SendStream> = match self.recent.lock() {
            Ok(mut r) => r.drain(..).collect(),
            Err(e) => e.into_inner().drain(..).collect(),
        };
        let drain = async {
            for s in &recent {
                let _ = s.stopped().await;
            }
        };
        let _ = tokio::time::timeout(DRAIN_WAIT, drain).await;
        let Some(mut send) = self.send.take() else {
            return Ok(());
        };
        let msg = PublishDone {
            status_code: status,
            stream_count: self.streams.load(Ordering::Relaxed),
            reason: ReasonPhrase::new(reason),
        };
        io::send(&mut send, msg)
            .await
            .map_err(|e| shared.send_error(e))?;
        let _ = send.finish();
        // Return once the relay has the PUBLISH_DONE (or gave up on the stream).
        let _ = tokio::time::timeout(DRAIN_WAIT, send.stopped()).await;
        Ok(())
    }
}

impl Drop for TrackPublisher {
    fn drop(&mut self) {
        self.watcher.abort();
        if let Some(mut send) = self.send.take() {
            let _ = send.reset(CANCELLED);
        }
    }
}

/// One group being written: objects get ids 0, 1, 2, … in write order. Dropping it without
/// [`GroupWriter::finish`] finishes the stream too (the group ends at the last object written);
/// use [`GroupWriter::abort`] to cut it off instead.
pub struct GroupWriter {
    conn: Arc<Inner>,
    stream: Option<SendStream>,
    encoder: SubgroupObjectEncoder,
    /// Bytes not yet written: the SUBGROUP_HEADER until the first object goes out.
    buf: BytesMut,
    group: u64,
    next_object: u64,
    recent: Arc<Mutex<VecDeque<SendStream>>>,
}

impl std::fmt::Debug for GroupWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupWriter")
            .field("group", &self.group)
            .field("next_object", &self.next_object)
            .finish()
    }
}

impl GroupWriter {
    /// This group's id.
    pub fn group_id(&self) -> u64 {
        self.group
    }

    /// The id the next object written will get.
    pub fn next_object_id(&self) -> u64 {
        self.next_object
    }

    /// Writes the next object; returns its object id. Waits only for QUIC flow control towards
    /// the relay.
    pub async fn write(&mut self, payload: Bytes) -> Result<u64, Error> {
        let shared = &self.conn.shared;
        let Some(stream) = self.stream.as_mut() else {
            return Err(Error::Transport("group already finished".into()));
        };
        let id = self.next_object;
        let header = ObjectHeader {
            object_id: id,
            properties: Properties::new(),
            payload_len: payload.len() as u64,
            status: ObjectStatus::Normal,
        };
        self.encoder.encode(&header, &mut self.buf)?;
        let mut chunks = [self.buf.split().freeze(), payload];
        stream
            .write_all_chunks(&mut chunks)
            .await
            .map_err(|e| shared.write_error(e))?;
        self.next_object += 1;
        Ok(id)
    }

    /// Ends the group (FIN on its stream).
    pub async fn finish(mut self) -> Result<(), Error> {
        self.close().await
    }

    async fn close(&mut self) -> Result<(), Error> {
        let Some(mut stream) = self.stream.take() else {
            return Ok(());
        };
        if !self.buf.is_empty() {
            let head = self.buf.split().freeze();
            stream
                .write_chunk(head)
                .await
                .map_err(|e| self.conn.shared.write_error(e))?;
        }
        let _ = stream.finish();
        self.remember(stream);
        Ok(())
    }

    /// Cuts the group off (RESET_STREAM): objects not yet delivered are lost.
    pub fn abort(mut self) {
        if let Some(mut s) = self.stream.take() {
            let _ = s.reset(CANCELLED);
        }
    }

    fn remember(&self, stream: SendStream) {
        let mut recent = match self.recent.lock() {
            Ok(r) => r,
            Err(e) => e.into_inner(),
        };
        if recent.len() >= RECENT_STREAMS {
            recent.pop_front();
        }
        recent.push_back(stream);
    }
}

impl Drop for GroupWriter {
    fn drop(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            if self.buf.is_empty() {
                let _ = stream.finish();
                self.remember(stream);
            } else {
                // Nothing was written: the header alone is not worth a stream.
                let _ = stream.reset(CANCELLED);
            }
        }
    }
}
