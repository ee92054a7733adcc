//! One MoQT session at the relay (server role): SETUP, then every request stream, data stream
//! and datagram the peer opens, until the session ends.
//!
//! A peer's mistake closes only its own session, with the draft's error code; nothing here
//! panics on input, and no peer can make the relay wait on it (every per-peer wait is in that
//! peer's own tasks).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use moqt::message::{ControlMessage, Goaway, RequestError, RequestOk};
use moqt::params::{AuthToken, Parameters};
use moqt::setup::{Setup, SetupOptions};
use moqt::{ReasonPhrase, TrackNamespace};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use web_transport_quinn::{SendStream, Session};

use crate::auth::{Action, AuthRequest, Grant};
use crate::error::{close, request, SessionError, AUTH_FAILED};
use crate::io::{self, Reader};
use crate::track::TrackName;
use crate::{deliver, ingest, Shared};

/// How long a peer may take to send its SETUP.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Which end of the session the relay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A peer connected to us (publishers, viewers, edge relays).
    Server,
    /// We connected to an origin relay, which feeds our subscribers (see [`crate::mesh`]).
    Client,
}

/// Per-session state shared by the session's tasks.
pub(crate) struct Ctx {
    pub id: u64,
    pub role: Role,
    /// Set in the client role: how upstream requests are authorized, and whom to tell about
    /// the origin's GOAWAY.
    pub upstream: Option<crate::mesh::UpstreamOptions>,
    /// FETCHes we sent, waiting for their data stream, by request id.
    fetch_waiters: Mutex<HashMap<u64, tokio::sync::oneshot::Sender<Reader>>>,
    pub session: Session,
    pub shared: Arc<Shared>,
    /// Token from the connection URL (`?token=`), used when a request carries none.
    pub url_token: Mutex<Option<Vec<u8>>>,
    /// Tokens the peer registered under an alias (AUTHORIZATION TOKEN, Alias Type REGISTER).
    token_aliases: Mutex<HashMap<u64, Bytes>>,
    /// Request IDs seen from the peer (duplicates close the session).
    seen_requests: Mutex<HashSet<u64>>,
    /// Our next request id (server: odd).
    next_request_id: AtomicU64,
    /// Our next track alias for SUBSCRIBE_OK / PUBLISH we send.
    next_alias: AtomicU64,
    /// Incoming track aliases (from PUBLISH we accepted or SUBSCRIBE_OK we received) → track.
    pub inbound: ingest::Aliases,
    /// Subscriptions we serve to this peer, by the peer's request id (for joining FETCH).
    pub subscriptions: Mutex<HashMap<u64, deliver::Joining>>,
    /// Cancelled when the session ends.
    pub closed: CancellationToken,
    /// Active SUBSCRIBE_NAMESPACE / SUBSCRIBE_TRACKS prefixes (overlaps are refused).
    prefixes: Mutex<Vec<(PrefixKind, Vec<Bytes>, u64)>>,
    next_prefix_id: AtomicU64,
    /// Set once we sent or received GOAWAY: new requests are refused.
    pub going_away: watch::Sender<bool>,
}

impl Ctx {
    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(2, Ordering::Relaxed)
    }

    pub fn next_alias(&self) -> u64 {
        self.next_alias.fetch_add(1, Ordering::Relaxed)
    }

    /// Close the whole session with a code and reason phrase.
    pub fn close(&self, code: u32, reason: &str) {
        debug!(session = self.id, code, reason, "closing session");
        self.session.close(code, reason.as_bytes());
        self.closed.cancel();
    }

    pub fn fail(&self, err: &SessionError) {
        if let Some((code, reason)) = err.close_code() {
            warn!(session = self.id, %err, "closing session");
            self.close(code, &reason);
        } else {
            debug!(session = self.id, %err, "session transport ended");
            self.closed.cancel();
        }
    }

    /// Register a request id from the peer (client ids are even, server ids odd), once.
    pub fn accept_request_id(&self, id: u64) -> Result<(), SessionError> {
        let peer_parity = match self.role {
            Role::Server => 0,
            Role::Client => 1,
        };
        if id % 2 != peer_parity {
            return Err(SessionError::Decode(moqt::DecodeError::InvalidRequestId(
                id,
            )));
        }
        if !Self::lock(&self.seen_requests).insert(id) {
            return Err(SessionError::Decode(moqt::DecodeError::InvalidRequestId(
                id,
            )));
        }
        Ok(())
    }

    /// The token a request presents: its AUTHORIZATION TOKEN parameter, else the URL's.
    pub fn token(&self, params: &Parameters) -> Result<Option<Vec<u8>>, SessionError> {
        for t in params.auth_tokens() {
            match t {
                AuthToken::UseValue { value, .. } => return Ok(Some(value.to_vec())),
                AuthToken::Register { alias, value, .. } => {
                    let mut aliases = Self::lock(&self.token_aliases);
                    if aliases.len() >= 64 {
                        return Err(SessionError::Protocol("too many token aliases".into()));
                    }
                    aliases.insert(*alias, value.clone());
                    return Ok(Some(value.to_vec()));
                }
                AuthToken::UseAlias { alias } => {
                    let aliases = Self::lock(&self.token_aliases);
                    match aliases.get(alias) {
                        Some(v) => return Ok(Some(v.to_vec())),
                        None => {
                            return Err(SessionError::Unauthorized(format!(
                                "unknown token alias {alias}"
                            )))
                        }
                    }
                }
                AuthToken::Delete { alias } => {
                    Self::lock(&self.token_aliases).remove(alias);
                }
            }
        }
        Ok(Self::lock(&self.url_token).clone())
    }

    /// Ask the policy; on refusal close the session with `auth_failed`. On success, enforce the
    /// grant's expiry and revocation for as long as `scope` lives, and return the grant's guard.
    pub async fn authorize(
        self: &Arc<Self>,
        action: Action,
        namespace: &TrackNamespace,
        track: Option<&Bytes>,
        params: &Parameters,
        scope: CancellationToken,
    ) -> Result<Option<Box<dyn std::any::Any + Send + Sync>>, SessionError> {
        let token = self.token(params)?;
        let req = AuthRequest {
            action,
            namespace: namespace.fields().iter().map(|f| f.to_vec()).collect(),
            track: track.map(|t| t.to_vec()),
            token,
        };
        match self.shared.policy.check(req).await {
            Ok(grant) => Ok(self.enforce(grant, scope)),
            Err(denied) => {
                info!(session = self.id, namespace = %namespace.to_path(), %denied, "request refused");
                Err(SessionError::Unauthorized(denied.0))
            }
        }
    }

    fn enforce(
        self: &Arc<Self>,
        grant: Grant,
        scope: CancellationToken,
    ) -> Option<Box<dyn std::any::Any + Send + Sync>> {
        let Grant {
            expires_at,
            revoked,
            guard,
        } = grant;
        if expires_at.is_some() || revoked.is_some() {
            let ctx = self.clone();
            tokio::spawn(async move {
                let expiry = async {
                    match expires_at {
                        Some(at) => {
                            let wait = at
                                .duration_since(SystemTime::now())
                                .unwrap_or(Duration::ZERO);
                            tokio::time::sleep(wait).await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                let revocation = async {
                    match &revoked {
                        Some(t) => t.cancelled().await,
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = expiry => {
                        info!(session = ctx.id, "token expired: closing session");
                        ctx.close(close::EXPIRED_AUTH_TOKEN, AUTH_FAILED);
                    }
                    _ = revocation => {
                        info!(session = ctx.id, "credential revoked: closing session");
                        ctx.close(close::UNAUTHORIZED, AUTH_FAILED);
                    }
                    _ = scope.cancelled() => {}
                    _ = ctx.closed.cancelled() => {}
                }
            });
        }
        guard
    }

    /// Open a request stream to the peer (for a request we send: upstream SUBSCRIBE, FETCH,
    /// PUBLISH).
    pub async fn open_request(&self) -> Result<(SendStream, Reader), SessionError> {
        let (send, recv) = self
            .session
            .open_bi()
            .await
            .map_err(SessionError::from_session)?;
        Ok((send, Reader::new(recv)))
    }

    /// Be told when the data stream of FETCH `request_id` arrives.
    pub fn expect_fetch(&self, request_id: u64) -> tokio::sync::oneshot::Receiver<Reader> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        Self::lock(&self.fetch_waiters).insert(request_id, tx);
        rx
    }

    pub fn forget_fetch(&self, request_id: u64) {
        Self::lock(&self.fetch_waiters).remove(&request_id);
    }

    /// Hand a FETCH_HEADER stream to the FETCH waiting for it; gives it back when none is.
    pub fn deliver_fetch(&self, request_id: u64, reader: Reader) -> Result<(), Reader> {
        match Self::lock(&self.fetch_waiters).remove(&request_id) {
            Some(tx) => tx.send(reader),
            None => Err(reader),
        }
    }

    pub fn subscriptions_insert(&self, request_id: u64, joining: deliver::Joining) {
        Self::lock(&self.subscriptions).insert(request_id, joining);
    }

    pub fn subscriptions_remove(&self, request_id: u64) {
        Self::lock(&self.subscriptions).remove(&request_id);
    }

    pub fn subscription(&self, request_id: u64) -> Option<deliver::Joining> {
        Self::lock(&self.subscriptions).get(&request_id).cloned()
    }

    /// Reserve a namespace prefix for a SUBSCRIBE_NAMESPACE or SUBSCRIBE_TRACKS; `None` when it
    /// shares a common prefix with an active one of the same kind (PREFIX_OVERLAP).
    pub fn claim_prefix(
        self: &Arc<Self>,
        kind: PrefixKind,
        prefix: &[Bytes],
    ) -> Option<PrefixClaim> {
        let mut prefixes = Self::lock(&self.prefixes);
        let overlaps = prefixes
            .iter()
            .any(|(k, p, _)| *k == kind && (p.starts_with(prefix) || prefix.starts_with(p)));
        if overlaps {
            return None;
        }
        let id = self.next_prefix_id.fetch_add(1, Ordering::Relaxed);
        prefixes.push((kind, prefix.to_vec(), id));
        Some(PrefixClaim {
            ctx: self.clone(),
            id,
        })
    }

    pub fn is_going_away(&self) -> bool {
        *self.going_away.borrow()
    }
}

/// The two independent overlap spaces of namespace-prefix requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrefixKind {
    Namespaces,
    Tracks,
}

/// An active prefix; released on drop.
pub(crate) struct PrefixClaim {
    ctx: Arc<Ctx>,
    id: u64,
}

impl Drop for PrefixClaim {
    fn drop(&mut self) {
        Ctx::lock(&self.ctx.prefixes).retain(|(_, _, id)| *id != self.id);
    }
}

/// Refuse a request for its credentials: REQUEST_ERROR (UNAUTHORIZED, `auth_failed`), then wait
/// briefly until the peer has it (the stream is acknowledged) before the caller closes the
/// session, so a browser sees the reason instead of a bare "connection lost".
pub(crate) async fn reject_auth(send: &mut SendStream) {
    reject(send, request::UNAUTHORIZED, AUTH_FAILED).await;
    let _ = tokio::time::timeout(Duration::from_millis(500), send.stopped()).await;
}

/// Send REQUEST_ERROR and finish the stream.
pub(crate) async fn reject(send: &mut SendStream, code: u64, reason: &str) {
    let msg = RequestError {
        error_code: code,
        retry_interval: 0,
        reason: ReasonPhrase::new(reason),
        redirect: None,
    };
    let _ = io::send(send, msg).await;
    let _ = send.finish();
}

/// Run a session to its end.
pub(crate) async fn run(shared: Arc<Shared>, session: Session, url: Option<url::Url>) {
    let url_token = url.as_ref().and_then(token_from_url);
    let webtransport = url.is_some();
    let ctx = new_ctx(shared, session, Role::Server, None, url_token);
    let result = drive(&ctx, webtransport).await;
    finish(&ctx, result);
}

/// Run a session we opened to an origin relay (client role) to its end. Once both SETUPs
/// are exchanged, subscriptions under `options.prefix` are fed from it.
pub(crate) async fn run_upstream(
    shared: Arc<Shared>,
    session: Session,
    options: crate::mesh::UpstreamOptions,
) -> Result<(), SessionError> {
    let ctx = new_ctx(shared, session, Role::Client, Some(options), None);
    let result = drive(&ctx, false).await;
    let outcome = match &result {
        Ok(()) => Ok(()),
        Err(e) => Err(SessionError::Transport(e.to_string())),
    };
    finish(&ctx, result);
    outcome
}

fn finish(ctx: &Arc<Ctx>, result: Result<(), SessionError>) {
    if let Err(e) = &result {
        ctx.fail(e);
    }
    ctx.closed.cancel();
    metrics::gauge!("relay_sessions").decrement(1.0);
    debug!(session = ctx.id, "session ended");
}

fn new_ctx(
    shared: Arc<Shared>,
    session: Session,
    role: Role,
    upstream: Option<crate::mesh::UpstreamOptions>,
    url_token: Option<Vec<u8>>,
) -> Arc<Ctx> {
    let id = shared.next_session_id();
    let (going_away, _) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        id,
        role,
        upstream,
        fetch_waiters: Mutex::new(HashMap::new()),
        session: session.clone(),
        shared: shared.clone(),
        url_token: Mutex::new(url_token),
        token_aliases: Mutex::new(HashMap::new()),
        seen_requests: Mutex::new(HashSet::new()),
        next_request_id: AtomicU64::new(match role {
            Role::Server => 1,
            Role::Client => 0,
        }),
        next_alias: AtomicU64::new(1),
        inbound: ingest::Aliases::default(),
        subscriptions: Mutex::new(HashMap::new()),
        prefixes: Mutex::new(Vec::new()),
        next_prefix_id: AtomicU64::new(0),
        closed: shared.shutdown.child_token(),
        going_away,
    });
    metrics::gauge!("relay_sessions").increment(1.0);
    debug!(session = id, ?role, "session started");
    ctx
}

async fn drive(ctx: &Arc<Ctx>, webtransport: bool) -> Result<(), SessionError> {
    // Our control stream: SETUP first. Pipelining is allowed, so send it right away.
    let mut control_tx = ctx
        .session
        .open_uni()
        .await
        .map_err(SessionError::from_session)?;
    let _ = control_tx.set_priority(i32::MAX);
    let mut options = SetupOptions::new();
    options.implementation = Some(concat!("clutchcall/", env!("CARGO_PKG_VERSION")).to_string());
    if let Some(up) = &ctx.upstream {
        // Raw QUIC carries the URL's authority and path in SETUP.
        options.path = up.path.clone();
        options.authority = up.authority.clone();
    }
    io::send(&mut control_tx, Setup { options }).await?;

    // Accept streams from the start (data may race the control stream); the peer's control
    // stream is recognised by its first bytes (SETUP).
    let (setup_tx, setup_rx) = tokio::sync::oneshot::channel::<Reader>();
    let uni = tokio::spawn(accept_uni(ctx.clone(), setup_tx));
    let bi = tokio::spawn(accept_bi(ctx.clone()));
    let dgrams = tokio::spawn(ingest::datagrams(ctx.clone()));

    let result = async {
        let mut control_rx = tokio::time::timeout(SETUP_TIMEOUT, setup_rx)
            .await
            .map_err(|_| SessionError::Protocol("no SETUP within 10 s".into()))?
            .map_err(|_| SessionError::Transport("session ended before SETUP".into()))?;
        let setup = match control_rx.message().await? {
            Some(ControlMessage::Setup(s)) => s,
            Some(other) => {
                return Err(SessionError::Protocol(format!(
                    "{} before SETUP",
                    other.name()
                )))
            }
            None => {
                return Err(SessionError::Protocol(
                    "control stream closed before SETUP".into(),
                ))
            }
        };
        if ctx.role == Role::Server {
            apply_setup(ctx, &setup, webtransport)?;
        }
        let _announced = crate::mesh::announce_upstream(ctx);
        control_loop(ctx, &mut control_rx, &mut control_tx).await
    }
    .await;
    uni.abort();
    bi.abort();
    dgrams.abort();
    result
}

fn apply_setup(ctx: &Ctx, setup: &Setup, webtransport: bool) -> Result<(), SessionError> {
    let o = &setup.options;
    if webtransport && (o.path.is_some() || o.authority.is_some()) {
        let code = if o.path.is_some() {
            close::INVALID_PATH
        } else {
            close::INVALID_AUTHORITY
        };
        ctx.close(
            code,
            "PATH/AUTHORITY options are not used over WebTransport",
        );
        return Err(SessionError::Transport("bad setup options".into()));
    }
    if let Some(path) = &o.path {
        if let Some(query) = path.split_once('?').map(|(_, q)| q) {
            if let Some(t) = token_from_query(query) {
                *Ctx::lock(&ctx.url_token) = Some(t);
            }
        }
    }
    for t in &o.auth_tokens {
        if let Some(v) = match t {
            AuthToken::UseValue { value, .. } | AuthToken::Register { value, .. } => Some(value),
            _ => None,
        } {
            *Ctx::lock(&ctx.url_token) = Some(v.to_vec());
        }
    }
    if let Some(imp) = &o.implementation {
        debug!(session = ctx.id, peer = %imp, "peer implementation");
    }
    Ok(())
}

/// Read the peer's control stream after SETUP: only GOAWAY may come; closing it is a violation.
async fn control_loop(
    ctx: &Arc<Ctx>,
    rx: &mut Reader,
    tx: &mut SendStream,
) -> Result<(), SessionError> {
    let mut shutdown = ctx.shared.going_away.subscribe();
    if *shutdown.borrow() {
        // The relay was already draining when this session began: tell it at once.
        shutdown.mark_changed();
    }
    let mut goaway_received = false;
    loop {
        tokio::select! {
            msg = rx.message() => match msg? {
                Some(ControlMessage::Goaway(g)) => {
                    if goaway_received {
                        return Err(SessionError::Protocol("second GOAWAY".into()));
                    }
                    if ctx.role == Role::Server && !g.new_session_uri.is_empty() {
                        return Err(SessionError::Protocol("client GOAWAY with a New Session URI".into()));
                    }
                    goaway_received = true;
                    let _ = ctx.going_away.send(true);
                    crate::mesh::origin_going_away(ctx, &g.new_session_uri);
                }
                Some(other) => {
                    return Err(SessionError::Protocol(format!("{} is not allowed on the control stream", other.name())));
                }
                None => return Err(SessionError::Protocol("control stream closed".into())),
            },
            _ = shutdown.changed() => {
                let _ = ctx.going_away.send(true);
                let next = Ctx::lock(&ctx.seen_requests).iter().max().map(|m| m + 2).unwrap_or(0);
                let _ = io::send(tx, Goaway { new_session_uri: String::new(), timeout: 2000, request_id: Some(next) }).await;
            }
            _ = ctx.closed.cancelled() => return Ok(()),
        }
    }
}

async fn accept_uni(ctx: Arc<Ctx>, setup_tx: tokio::sync::oneshot::Sender<Reader>) {
    let mut setup_tx = Some(setup_tx);
    loop {
        let stream = tokio::select! {
            s = ctx.session.accept_uni() => match s {
                Ok(s) => s,
                Err(_) => return,
            },
            _ = ctx.closed.cancelled() => return,
        };
        let mut reader = Reader::new(stream);
        let stream_type = match reader.decode(peek_varint).await {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                debug!(session = ctx.id, %e, "uni stream failed before its type");
                continue;
            }
        };
        if stream_type == moqt::message::kind::SETUP {
            match setup_tx.take() {
                Some(tx) => {
                    let _ = tx.send(reader);
                }
                None => {
                    ctx.fail(&SessionError::Protocol("second control stream".into()));
                    return;
                }
            }
            continue;
        }
        let ctx2 = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = ingest::data_stream(&ctx2, reader, stream_type).await {
                ctx2.fail(&e);
            }
        });
    }
}

/// Decode a varint without consuming it (the stream's type stays in the buffer for the
/// header decoder).
fn peek_varint(b: &mut &[u8]) -> Result<u64, moqt::DecodeError> {
    let (v, _) = moqt::varint::peek(b)?;
    Ok(v)
}

async fn accept_bi(ctx: Arc<Ctx>) {
    loop {
        let (send, recv) = tokio::select! {
            s = ctx.session.accept_bi() => match s {
                Ok(s) => s,
                Err(_) => return,
            },
            _ = ctx.closed.cancelled() => return,
        };
        let ctx2 = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = handle_request(&ctx2, send, Reader::new(recv)).await {
                ctx2.fail(&e);
            }
        });
    }
}

/// Dispatch one request stream by its first message.
async fn handle_request(
    ctx: &Arc<Ctx>,
    mut send: SendStream,
    mut recv: Reader,
) -> Result<(), SessionError> {
    let first = match recv.message().await {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(()),
        Err(SessionError::Reset(_)) | Err(SessionError::Transport(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if !first.is_request_start() {
        return Err(SessionError::Protocol(format!(
            "{} cannot open a request stream",
            first.name()
        )));
    }
    if let Some(id) = first.request_id() {
        ctx.accept_request_id(id)?;
    }
    if ctx.is_going_away() {
        reject(&mut send, request::GOING_AWAY, "relay is going away").await;
        return Ok(());
    }
    let _ = send.set_priority(i32::MAX - 1);
    metrics::counter!("relay_requests_total", "type" => first.name()).increment(1);
    match first {
        ControlMessage::Subscribe(m) => deliver::subscribe(ctx, m, send, recv).await,
        ControlMessage::Fetch(m) => deliver::fetch(ctx, m, send, recv).await,
        ControlMessage::TrackStatus(m) => deliver::track_status(ctx, m, send).await,
        ControlMessage::SubscribeNamespace(m) => {
            deliver::subscribe_namespace(ctx, m, send, recv).await
        }
        ControlMessage::SubscribeTracks(m) => deliver::subscribe_tracks(ctx, m, send, recv).await,
        ControlMessage::Publish(m) => ingest::publish(ctx, m, send, recv).await,
        ControlMessage::PublishNamespace(m) => ingest::publish_namespace(ctx, m, send, recv).await,
        other => Err(SessionError::Protocol(format!(
            "{} cannot open a request stream",
            other.name()
        ))),
    }
}

/// Send REQUEST_OK with no parameters.
pub(crate) async fn request_ok(
    send: &mut SendStream,
    params: Parameters,
) -> Result<(), SessionError> {
    io::send(
        send,
        RequestOk {
            params,
            properties: Default::default(),
        },
    )
    .await
}

fn token_from_url(url: &url::Url) -> Option<Vec<u8>> {
    url.query().and_then(token_from_query)
}

fn token_from_query(query: &str) -> Option<Vec<u8>> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token" || k == "jwt" || k == "key")
        .map(|(_, v)| v.into_owned().into_bytes())
}

/// Convert a codec namespace + name into the relay's track name.
pub(crate) fn track_name(namespace: &TrackNamespace, name: &Bytes) -> TrackName {
    TrackName::new(namespace.fields().to_vec(), name.clone())
}

/// Wait for the peer to cancel a request (STOP_SENDING on our side or its stream ending).
pub(crate) async fn cancelled(send: &SendStream) {
    let _ = send.stopped().await;
}
