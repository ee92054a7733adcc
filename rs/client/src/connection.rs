//! One MoQT session in the client role: SETUP, the control stream, request streams and the
//! dispatch of incoming data streams to subscriptions and fetches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use moqt::data::StreamType;
use moqt::{ControlMessage, Goaway, Setup, SetupOptions};
use net::client::{Client, Verify};
use net::{SendStream, Session, Transport};
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::AbortHandle;
use tracing::debug;

use crate::error::{CloseReason, Error};
use crate::io::{self, ReadFail, Reader, SendFail};
use crate::publish::{PublishOptions, TrackPublisher};
use crate::subscribe::{self, SubscribeOptions, Subscription};
use crate::Namespace;

/// Session close code PROTOCOL_VIOLATION.
pub(crate) const PROTOCOL_VIOLATION: u32 = 0x3;
/// Stream reset / STOP_SENDING code CANCELLED.
pub(crate) const CANCELLED: u32 = 0x1;

/// Client settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// How the relay's certificate is checked. For the engine's self-signed certificate use
    /// [`Verify::Pinned`] (see [`Connection::connect_engine`]).
    pub verify: Verify,
    /// Credential sent as the AUTHORIZATION TOKEN parameter (Alias Type USE_VALUE, Token Type 0)
    /// on every PUBLISH, SUBSCRIBE, FETCH and PUBLISH_NAMESPACE. Per-request options override it.
    pub token: Option<String>,
    /// Objects buffered per subscription before the subscription's streams stop being read
    /// (QUIC flow control then slows the relay for this subscriber only). Default 256.
    pub buffer: usize,
    /// How long to wait for the server's SETUP and for request replies. Default 10 s.
    pub timeout: Duration,
    /// QUIC transport settings of the endpoint [`Connection::connect`] builds.
    pub tuning: net::TransportTuning,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            verify: Verify::default(),
            token: None,
            buffer: 256,
            timeout: Duration::from_secs(10),
            tuning: net::TransportTuning::default(),
        }
    }
}

impl Config {
    /// The defaults with `verify`.
    pub fn new(verify: Verify) -> Self {
        Self {
            verify,
            ..Self::default()
        }
    }

    /// The endpoint configuration for [`Client::new`] matching this config.
    pub fn endpoint(&self) -> net::client::Config {
        net::client::Config {
            verify: self.verify.clone(),
            tuning: self.tuning.clone(),
            ..net::client::Config::default()
        }
    }
}

/// State shared by a connection's handles and its reader tasks.
pub(crate) struct Shared {
    pub session: Session,
    pub config: Config,
    next_request_id: AtomicU64,
    next_alias: AtomicU64,
    /// Subscriptions by the track alias the relay chose.
    tracks: Mutex<HashMap<u64, Arc<subscribe::Route>>>,
    track_added: Notify,
    /// Fetches waiting for their data stream, by request id.
    fetches: Mutex<HashMap<u64, oneshot::Sender<Reader>>>,
    goaway: watch::Sender<Option<Goaway>>,
    local_close: Mutex<Option<CloseReason>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long an incoming data stream waits for the SUBSCRIBE_OK that defines its alias.
const ALIAS_WAIT: Duration = Duration::from_secs(2);

impl Shared {
    pub fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(2, Ordering::Relaxed)
    }

    pub fn next_alias(&self) -> u64 {
        self.next_alias.fetch_add(1, Ordering::Relaxed)
    }

    /// The session's close reason, once it is closed.
    pub fn close_reason(&self) -> Option<CloseReason> {
        if let Some(local) = lock(&self.local_close).clone() {
            return Some(local);
        }
        self.session
            .close_reason()
            .map(|e| CloseReason::from_session(&e))
    }

    /// Close the session (recording our own reason for [`Connection::closed`]).
    pub fn close(&self, code: u32, reason: &str) {
        {
            let mut local = lock(&self.local_close);
            if local.is_none() && self.session.close_reason().is_none() {
                *local = Some(CloseReason {
                    code: code.into(),
                    reason: reason.to_owned(),
                });
            }
        }
        self.session.close(code, reason.as_bytes());
    }

    /// A failure on some stream, turned into the session's close reason when it is closed.
    pub fn transport_error(&self, what: impl std::fmt::Display) -> Error {
        match self.close_reason() {
            Some(c) => c.into(),
            None => Error::Transport(what.to_string()),
        }
    }

    pub fn read_error(&self, e: ReadFail) -> Error {
        match e {
            ReadFail::Decode(d) => Error::Decode(d),
            ReadFail::Truncated => {
                Error::Protocol("stream ended in the middle of a message".into())
            }
            ReadFail::Reset(code) => {
                self.transport_error(format!("stream reset by peer (code {code:#x})"))
            }
            ReadFail::Transport(e) => self.transport_error(e),
        }
    }

    pub fn write_error(&self, e: net::WriteError) -> Error {
        match e {
            net::WriteError::Stopped(code) => {
                self.transport_error(format!("stream stopped by peer (code {code:#x})"))
            }
            other => self.transport_error(other),
        }
    }

    pub fn send_error(&self, e: SendFail) -> Error {
        match e {
            SendFail::Encode(e) => Error::Invalid(e.to_string()),
            SendFail::Write(e) => self.write_error(e),
        }
    }

    /// Open a request stream and send its first message.
    pub async fn open_request(
        &self,
        msg: impl Into<ControlMessage>,
    ) -> Result<(SendStream, Reader), Error> {
        let msg = msg.into();
        // Encode first so an invalid request fails before a stream is spent.
        msg.to_vec()?;
        let (mut send, recv) = self
            .session
            .open_bi()
            .await
            .map_err(|e| self.transport_error(e))?;
        let _ = send.set_priority(i32::MAX - 1);
        io::send(&mut send, msg)
            .await
            .map_err(|e| self.send_error(e))?;
        Ok((send, Reader::new(recv)))
    }

    /// The first reply on a request stream.
    pub async fn reply(
        &self,
        recv: &mut Reader,
        what: &'static str,
    ) -> Result<ControlMessage, Error> {
        let msg = tokio::time::timeout(self.config.timeout, recv.message())
            .await
            .map_err(|_| Error::Timeout(what))?;
        match msg {
            Ok(Some(m)) => Ok(m),
            Ok(None) => {
                Err(self
                    .transport_error(format!("request stream closed before the reply to {what}")))
            }
            Err(e) => Err(self.read_error(e)),
        }
    }

    /// The AUTHORIZATION TOKEN parameter for a request (override, else the config's).
    pub fn token<'a>(&'a self, token: &'a Option<String>) -> Option<&'a str> {
        token.as_deref().or(self.config.token.as_deref())
    }

    pub fn insert_track(&self, alias: u64, route: Arc<subscribe::Route>) -> Result<(), Error> {
        let mut tracks = lock(&self.tracks);
        if tracks.contains_key(&alias) {
            drop(tracks);
            self.close(0x5, "duplicate track alias");
            return Err(Error::Protocol(format!("relay reused track alias {alias}")));
        }
        tracks.insert(alias, route);
        drop(tracks);
        self.track_added.notify_waiters();
        Ok(())
    }

    pub fn remove_track(&self, alias: u64) {
        lock(&self.tracks).remove(&alias);
    }

    /// The subscription a data stream belongs to, waiting briefly for a racing SUBSCRIBE_OK.
    pub async fn track(&self, alias: u64) -> Option<Arc<subscribe::Route>> {
        let deadline = tokio::time::Instant::now() + ALIAS_WAIT;
        loop {
            let notified = self.track_added.notified();
            if let Some(r) = lock(&self.tracks).get(&alias).cloned() {
                return Some(r);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    pub fn expect_fetch(&self, request_id: u64) -> oneshot::Receiver<Reader> {
        let (tx, rx) = oneshot::channel();
        lock(&self.fetches).insert(request_id, tx);
        rx
    }

    pub fn forget_fetch(&self, request_id: u64) {
        lock(&self.fetches).remove(&request_id);
    }

    fn take_fetch(&self, request_id: u64) -> Option<oneshot::Sender<Reader>> {
        lock(&self.fetches).remove(&request_id)
    }
}

/// Owned by every handle (connection clones, publishers, subscriptions); closes the session and
/// stops the reader tasks when the last one is dropped.
pub(crate) struct Inner {
    pub shared: Arc<Shared>,
    tasks: Vec<AbortHandle>,
    /// Our control stream: kept open for the session's lifetime (closing it is a violation).
    _control: SendStream,
    /// The endpoint, when this connection built its own.
    _client: Option<Client>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if self.shared.close_reason().is_none() {
            self.shared.close(0, "");
        }
    }
}

/// A MoQT session to a relay, in the client role. Cheap to clone; the session closes (code 0)
/// when the last clone and the last publisher/subscription made from it are dropped.
#[derive(Clone)]
pub struct Connection {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("closed", &self.inner.shared.close_reason())
            .finish()
    }
}

impl Connection {
    /// Connects to `moqt://host:port/path?query` (raw QUIC) or `https://…` (WebTransport) with
    /// an endpoint (UDP socket) of its own, sends SETUP and waits for the server's.
    ///
    /// Spawns the session's reader tasks on the current tokio runtime (control stream,
    /// incoming data streams); they end with the session.
    pub async fn connect(url: &str, config: Config) -> Result<Self, Error> {
        let client = Client::new(config.endpoint())?;
        Self::setup(&client, url, config, true).await
    }

    /// Like [`Connection::connect`] over an existing endpoint, so many connections share one
    /// UDP socket (load generators). `client`'s own verification applies, not `config.verify`.
    pub async fn connect_with(client: &Client, url: &str, config: Config) -> Result<Self, Error> {
        Self::setup(client, url, config, false).await
    }

    /// Fetches the engine's certificate fingerprint from `http_base` (plain HTTP,
    /// `GET /certificate.sha256`, e.g. `http://127.0.0.1:8080`), pins it and connects to
    /// `relay_url`. For development setups with the engine's self-signed certificate.
    pub async fn connect_engine(
        http_base: &str,
        relay_url: &str,
        mut config: Config,
    ) -> Result<Self, Error> {
        let fingerprint = crate::http::certificate_fingerprint(http_base, config.timeout).await?;
        config.verify = Verify::Pinned(vec![fingerprint]);
        Self::connect(relay_url, config).await
    }

    async fn setup(
        client: &Client,
        url: &str,
        config: Config,
        own_client: bool,
    ) -> Result<Self, Error> {
        let url = net::Url::parse(url).map_err(|e| Error::Invalid(format!("URL {url:?}: {e}")))?;
        let connected = client.connect(&url).await?;
        let session = connected.session;
        let (goaway, _) = watch::channel(None);
        let timeout = config.timeout;
        let shared = Arc::new(Shared {
            session: session.clone(),
            config,
            next_request_id: AtomicU64::new(0),
            next_alias: AtomicU64::new(0),
            tracks: Mutex::new(HashMap::new()),
            track_added: Notify::new(),
            fetches: Mutex::new(HashMap::new()),
            goaway,
            local_close: Mutex::new(None),
        });

        // Accept streams right away: the server's control stream and data may come early.
        let (setup_tx, setup_rx) = oneshot::channel();
        let accept = tokio::spawn(accept_uni(shared.clone(), setup_tx));
        let bi = tokio::spawn(refuse_bi(shared.clone()));
        let tasks = vec![accept.abort_handle(), bi.abort_handle()];

        let result = async {
            let mut control = session.open_uni().await.map_err(|e| shared.transport_error(e))?;
            let _ = control.set_priority(i32::MAX);
            let mut options = SetupOptions::new();
            options.implementation = Some(concat!("clutchcall-client/", env!("CARGO_PKG_VERSION")).to_owned());
            if connected.transport == Transport::Quic {
                options.path = Some(connected.path.clone());
                options.authority = Some(connected.authority.clone());
            }
            io::send(&mut control, Setup { options }).await.map_err(|e| shared.send_error(e))?;
            let setup = tokio::select! {
                s = setup_rx => s.map_err(|_| shared.transport_error("session ended before the server's SETUP"))?,
                _ = tokio::time::sleep(timeout) => {
                    shared.close(0x11, "no SETUP in time");
                    return Err(Error::Timeout("server SETUP"));
                }
            };
            debug!(server = ?setup.options.implementation, "MoQT session established");
            Ok(control)
        }
        .await;
        match result {
            Ok(control) => Ok(Self {
                inner: Arc::new(Inner {
                    shared,
                    tasks,
                    _control: control,
                    _client: own_client.then(|| client.clone()),
                }),
            }),
            Err(e) => {
                for t in &tasks {
                    t.abort();
                }
                if shared.close_reason().is_none() {
                    shared.close(0, "");
                }
                Err(e)
            }
        }
    }

    /// Waits until the session is closed and returns why: the code and reason phrase the peer
    /// sent (e.g. `auth_failed`), or our own from [`Connection::close`].
    pub async fn closed(&self) -> CloseReason {
        let shared = &self.inner.shared;
        if let Some(c) = shared.close_reason() {
            return c;
        }
        let err = shared.session.closed().await;
        shared
            .close_reason()
            .unwrap_or_else(|| CloseReason::from_session(&err))
    }

    /// The close reason if the session is already closed.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.inner.shared.close_reason()
    }

    /// Closes the session with a code (draft-18 session termination codes; 0 = NO_ERROR) and a
    /// reason phrase.
    pub fn close(&self, code: u32, reason: &str) {
        self.inner.shared.close(code, reason);
    }

    /// The GOAWAY the relay sent, if any: finish current work, then reconnect (to its New
    /// Session URI when not empty). New requests on this session may be refused.
    pub fn goaway(&self) -> Option<Goaway> {
        self.inner.shared.goaway.borrow().clone()
    }

    /// Waits for a GOAWAY (returns at once if one arrived); `None` if the session ended first.
    pub async fn goaway_received(&self) -> Option<Goaway> {
        let mut rx = self.inner.shared.goaway.subscribe();
        loop {
            if let Some(g) = rx.borrow_and_update().clone() {
                return Some(g);
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return None; },
                _ = self.inner.shared.session.closed() => return None,
            }
        }
    }

    /// Publishes a track (PUBLISH; waits for REQUEST_OK). See [`TrackPublisher`].
    pub async fn publish(
        &self,
        namespace: impl Namespace,
        track: &str,
        options: PublishOptions,
    ) -> Result<TrackPublisher, Error> {
        crate::publish::publish(self.inner.clone(), namespace.namespace()?, track, options).await
    }

    /// Announces a namespace (PUBLISH_NAMESPACE; waits for REQUEST_OK). The relay then forwards
    /// SUBSCRIBEs for tracks under it to this session, which this client does not serve yet:
    /// use [`Connection::publish`] to push tracks. The announcement lasts until the returned
    /// handle is dropped.
    pub async fn publish_namespace(
        &self,
        namespace: impl Namespace,
        token: Option<String>,
    ) -> Result<Announced, Error> {
        let shared = &self.inner.shared;
        let mut params = moqt::Parameters::new();
        if let Some(t) = shared.token(&token) {
            params.add_auth_token(moqt::AuthToken::bearer(t.as_bytes().to_vec()));
        }
        let msg = moqt::PublishNamespace {
            request_id: shared.next_request_id(),
            namespace: namespace.namespace()?,
            params,
        };
        let (send, mut recv) = shared.open_request(msg).await?;
        match shared.reply(&mut recv, "PUBLISH_NAMESPACE").await? {
            ControlMessage::RequestOk(_) | ControlMessage::PublishOk(_) => Ok(Announced {
                _conn: self.clone(),
                send,
                recv,
            }),
            ControlMessage::RequestError(e) => Err(Error::Refused {
                code: e.error_code,
                reason: e.reason.to_string_lossy(),
            }),
            other => Err(Error::Protocol(format!(
                "{} in reply to PUBLISH_NAMESPACE",
                other.name()
            ))),
        }
    }

    /// Subscribes to a track. See [`SubscribeOptions`] and [`Subscription`].
    pub async fn subscribe(
        &self,
        namespace: impl Namespace,
        track: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription, Error> {
        subscribe::subscribe(self.inner.clone(), namespace.namespace()?, track, options).await
    }
}

/// A namespace announced with [`Connection::publish_namespace`]; dropping it withdraws it.
pub struct Announced {
    _conn: Connection,
    send: SendStream,
    recv: Reader,
}

impl Drop for Announced {
    fn drop(&mut self) {
        let _ = self.send.reset(CANCELLED);
        self.recv.stop(CANCELLED);
    }
}

/// Accepts the server's unidirectional streams: its control stream and data streams.
async fn accept_uni(shared: Arc<Shared>, setup_tx: oneshot::Sender<Setup>) {
    let setup_tx = Arc::new(Mutex::new(Some(setup_tx)));
    loop {
        let stream = match shared.session.accept_uni().await {
            Ok(s) => s,
            Err(_) => return,
        };
        let shared = shared.clone();
        let setup_tx = setup_tx.clone();
        tokio::spawn(async move {
            let mut reader = Reader::new(stream);
            let kind = match reader.decode(|b| StreamType::peek(b).map(|(t, _)| t)).await {
                Ok(Some(t)) => t,
                Ok(None) => return,
                Err(ReadFail::Decode(e)) => {
                    shared.close(e.code() as u32, &e.to_string());
                    return;
                }
                Err(e) => {
                    debug!(?e, "data stream failed before its type");
                    return;
                }
            };
            match kind {
                StreamType::Control => {
                    let tx = lock(&setup_tx).take();
                    match tx {
                        Some(tx) => control_stream(&shared, reader, tx).await,
                        None => shared.close(PROTOCOL_VIOLATION, "second control stream"),
                    }
                }
                StreamType::Subgroup(_) => subscribe::subgroup_stream(&shared, reader).await,
                StreamType::Fetch => fetch_stream(&shared, reader).await,
                StreamType::Padding => reader.stop(0),
            }
        });
    }
}

/// The server's control stream: SETUP, then at most one GOAWAY.
async fn control_stream(
    shared: &Arc<Shared>,
    mut reader: Reader,
    setup_tx: oneshot::Sender<Setup>,
) {
    match reader.message().await {
        Ok(Some(ControlMessage::Setup(s))) => {
            let _ = setup_tx.send(s);
        }
        Ok(Some(other)) => {
            shared.close(
                PROTOCOL_VIOLATION,
                &format!("{} before SETUP", other.name()),
            );
            return;
        }
        Ok(None) => {
            shared.close(PROTOCOL_VIOLATION, "control stream closed");
            return;
        }
        Err(ReadFail::Decode(e)) => {
            shared.close(e.code() as u32, &e.to_string());
            return;
        }
        Err(_) => return,
    }
    loop {
        match reader.message().await {
            Ok(Some(ControlMessage::Goaway(g))) => {
                if shared.goaway.borrow().is_some() {
                    shared.close(PROTOCOL_VIOLATION, "second GOAWAY");
                    return;
                }
                debug!(uri = %g.new_session_uri, "GOAWAY received");
                shared.goaway.send_replace(Some(g));
            }
            Ok(Some(other)) => {
                shared.close(
                    PROTOCOL_VIOLATION,
                    &format!("{} is not allowed on the control stream", other.name()),
                );
                return;
            }
            Ok(None) => {
                shared.close(PROTOCOL_VIOLATION, "control stream closed");
                return;
            }
            Err(ReadFail::Decode(e)) => {
                shared.close(e.code() as u32, &e.to_string());
                return;
            }
            Err(_) => return,
        }
    }
}

/// A FETCH_HEADER stream: hand it to the fetch waiting for its request id.
async fn fetch_stream(shared: &Arc<Shared>, mut reader: Reader) {
    let header = match reader
        .decode(|b| <moqt::FetchHeader as moqt::Decode>::decode(b))
        .await
    {
        Ok(Some(h)) => h,
        Ok(None) => return,
        Err(ReadFail::Decode(e)) => {
            shared.close(e.code() as u32, &e.to_string());
            return;
        }
        Err(_) => return,
    };
    match shared.take_fetch(header.request_id) {
        Some(tx) => {
            if let Err(mut reader) = tx.send(reader) {
                reader.stop(CANCELLED);
            }
        }
        None => {
            debug!(
                request_id = header.request_id,
                "fetch stream for no pending fetch"
            );
            reader.stop(CANCELLED);
        }
    }
}

/// The client serves no requests: refuse every bidirectional stream the server opens
/// (upstream SUBSCRIBEs after PUBLISH_NAMESPACE get REQUEST_ERROR NOT_SUPPORTED).
async fn refuse_bi(shared: Arc<Shared>) {
    loop {
        let (mut send, recv) = match shared.session.accept_bi().await {
            Ok(s) => s,
            Err(_) => return,
        };
        tokio::spawn(async move {
            let mut recv = Reader::new(recv);
            if let Ok(Some(_)) = recv.message().await {
                let msg = moqt::RequestError {
                    error_code: 0x3,
                    retry_interval: 0,
                    reason: moqt::ReasonPhrase::new("this client serves no requests"),
                    redirect: None,
                };
                let _ = io::send(&mut send, msg).await;
                let _ = send.finish();
            }
        });
    }
}
