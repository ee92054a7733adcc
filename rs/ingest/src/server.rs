//! The RTMP listener: one task per connection for its handshake and commands, and a thread
//! per publishing connection for its media path.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use media::amf0::Value;
use media::flv::{self, Audio, Video};
use relay::auth::{Action, AuthRequest, Authorizer, Grant};
use relay::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::broadcast::{lock, Broadcast, Metadata, StatusMap};
use crate::rtmp::{self, chunk, types, Message};
use crate::{Config, Error, Lookup, Status};

/// Session ids for our claims in the relay's registry (far from the relay's own counter).
const SESSION_BASE: u64 = 1 << 48;

struct Slot {
    org: String,
    broadcast: Arc<Broadcast>,
    /// Connection currently feeding the broadcast.
    owner: u64,
    /// Cancelled to disconnect the owner (a newer encoder took over).
    kick: CancellationToken,
}

struct Shared {
    config: Config,
    registry: Arc<Registry>,
    authorizer: Arc<dyn Authorizer>,
    lookup: Arc<dyn Lookup>,
    slots: Mutex<HashMap<String, Slot>>,
    statuses: StatusMap,
    next_id: AtomicU64,
    /// The runtime that called [`Server::bind`]: authorization (the control plane's
    /// database) and the transcoder supervisors run there, not on the event loops.
    main: Handle,
}

/// The RTMP ingest server. [`Server::bind`] binds the port; [`Server::run`] serves until
/// dropped.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    status: watch::Receiver<BTreeMap<String, Status>>,
}

impl Server {
    pub async fn bind(
        config: Config,
        relay: &relay::Relay,
        authorizer: Arc<dyn Authorizer>,
        lookup: Arc<dyn Lookup>,
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let (statuses, status) = watch::channel(BTreeMap::new());
        Ok(Self {
            listener,
            status,
            shared: Arc::new(Shared {
                config,
                registry: relay.registry().clone(),
                authorizer,
                lookup,
                slots: Mutex::new(HashMap::new()),
                statuses,
                next_id: AtomicU64::new(1),
                main: Handle::current(),
            }),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Status of every RTMP broadcast by lv id (live, renditions, transcoder errors).
    pub fn status(&self) -> watch::Receiver<BTreeMap<String, Status>> {
        self.status.clone()
    }

    /// Accept connections until the future is dropped (which ends every connection task).
    pub async fn run(self) -> Result<(), Error> {
        let mut loops =
            EventLoops::start(self.shared.config.event_loops).map_err(Error::EventLoops)?;
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) if is_transient(&e) => {
                            tracing::warn!(error = %e, "RTMP accept failed; continuing");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                        Err(e) => return Err(Error::Accept(e)),
                    };
                    let shared = self.shared.clone();
                    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_nodelay(true);
                    let Some(handle) = loops.next() else {
                        tasks.spawn(async move {
                            let reason = connection(&shared, id, stream).await;
                            tracing::info!(%peer, conn = id, %reason, "RTMP connection closed");
                        });
                        continue;
                    };
                    // Hand the socket to the event loop's reactor.
                    let stream = match stream.into_std() {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "RTMP connection dropped: moving it to an event loop failed");
                            continue;
                        }
                    };
                    tasks.spawn_on(async move {
                        let reason = match TcpStream::from_std(stream) {
                            Ok(stream) => connection(&shared, id, stream).await,
                            Err(e) => format!("registering with the event loop: {e}"),
                        };
                        tracing::info!(%peer, conn = id, %reason, "RTMP connection closed");
                    }, handle);
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
    }
}

/// Dedicated single-threaded runtimes for RTMP connections ([`Config::event_loops`]). Dropping
/// this stops them: their connection tasks are dropped and the threads joined.
struct EventLoops {
    loops: Vec<EventLoop>,
    next: usize,
}

/// One loop: its runtime's handle, the sender whose drop stops it, its thread.
type EventLoop = (
    Handle,
    Option<oneshot::Sender<()>>,
    Option<std::thread::JoinHandle<()>>,
);

impl EventLoops {
    fn start(n: usize) -> std::io::Result<Self> {
        let mut loops = Vec::with_capacity(n);
        for i in 0..n {
            // Sockets and timers only: no signal/process driver to poll on every wakeup
            // (transcoders are spawned on the main runtime).
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()?;
            let handle = rt.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("rtmp-loop-{i}"))
                .spawn(move || {
                    rt.block_on(async {
                        let _ = stopped.await;
                    });
                    // Drops every connection task still on this loop.
                    rt.shutdown_background();
                })?;
            loops.push((handle, Some(stop), Some(thread)));
        }
        Ok(Self { loops, next: 0 })
    }

    /// The loop for the next connection (round-robin); `None` without loops.
    fn next(&mut self) -> Option<&Handle> {
        if self.loops.is_empty() {
            return None;
        }
        let i = self.next % self.loops.len();
        self.next = self.next.wrapping_add(1);
        Some(&self.loops[i].0)
    }
}

impl Drop for EventLoops {
    fn drop(&mut self) {
        for (_, stop, _) in &mut self.loops {
            stop.take();
        }
        for (_, _, thread) in &mut self.loops {
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || e.raw_os_error() == Some(24)
        || e.raw_os_error() == Some(23)
}

/// Bytes made room for before each socket read.
const READ_SIZE: usize = 32 << 10;

/// How long a publisher's thread waits for the encoder to take our acknowledgements before
/// the connection is dropped (an encoder that stops reading its socket).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a closing connection waits to deliver its last status message.
const CLOSE_FLUSH: Duration = Duration::from_millis(200);

/// Why a connection ended (for the log).
type Reason = String;

/// One connection's protocol state, apart from its socket: the socket is async (tokio) until
/// the connection publishes, then blocking on the publisher's own thread.
struct Conn {
    reader: chunk::Reader,
    out: Vec<u8>,
    received: u64,
    acked: u64,
    peer_window: u32,
    /// The arrival time of the messages being handled: taken when the first message a socket
    /// read completed is parsed, so a read that completes none (an encoder's header-only
    /// segment, about half of them) costs no clock read. See [`Conn::arrival`].
    read_at: Instant,
    /// Bytes were read since `read_at` was taken.
    fresh_read: bool,
}

impl Conn {
    fn new() -> Self {
        Self {
            reader: chunk::Reader::new(),
            out: Vec::new(),
            received: 0,
            acked: 0,
            peer_window: 0,
            read_at: Instant::now(),
            fresh_read: false,
        }
    }
    fn send(&mut self, m: &Message) {
        chunk::write(&mut self.out, rtmp::OUT_CHUNK_SIZE, m);
    }
    /// Book `n` bytes just read: an acknowledgement once the peer's window is used up, and
    /// their arrival time once a message they complete is parsed ([`Conn::arrival`]).
    fn received(&mut self, n: usize) {
        self.fresh_read = true;
        self.received += n as u64;
        if self.peer_window > 0 && self.received - self.acked >= u64::from(self.peer_window) {
            self.acked = self.received;
            self.send(&rtmp::control(types::ACK, self.received as u32));
        }
    }
    /// When the message just parsed arrived: the clock at the first message since the last
    /// read (within microseconds of that read, which the parsing follows directly).
    fn arrival(&mut self) -> Instant {
        if self.fresh_read {
            self.read_at = Instant::now();
            self.fresh_read = false;
        }
        self.read_at
    }
    async fn flush(&mut self, stream: &mut TcpStream) -> std::io::Result<()> {
        if !self.out.is_empty() {
            stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }
    fn flush_blocking(&mut self, stream: &mut std::net::TcpStream) -> std::io::Result<()> {
        if !self.out.is_empty() {
            std::io::Write::write_all(stream, &self.out)?;
            self.out.clear();
        }
        Ok(())
    }
    /// Read straight into the chunk reader's buffer.
    async fn fill(&mut self, stream: &mut TcpStream) -> Result<(), Reason> {
        let buf = self.reader.buffer_mut();
        buf.reserve(READ_SIZE);
        let n = stream
            .read_buf(buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("peer closed".into());
        }
        self.received(n);
        Ok(())
    }
}

struct Publishing {
    lv: String,
    org: String,
    broadcast: Arc<Broadcast>,
    kick: CancellationToken,
    revoked: CancellationToken,
    _grant: Grant,
}

/// A `publish` command that needs authorizing (stream name and message stream id).
struct PublishRequest {
    name: String,
    stream_id: u32,
}

/// A connection's life: handshake and commands on the event loop; once it publishes, the
/// media path on a thread of its own ([`PublisherThread`]).
async fn connection(shared: &Arc<Shared>, id: u64, mut stream: TcpStream) -> Reason {
    let cfg = &shared.config;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(id, |d| d.as_nanos() as u64 ^ id);
    match tokio::time::timeout(Duration::from_secs(5), rtmp::handshake(&mut stream, seed)).await {
        Err(_) => return "handshake timed out".into(),
        Ok(Err(e)) => return format!("handshake failed: {e}"),
        Ok(Ok(())) => {}
    }
    // Deadlines (publish, idle) and stop conditions (replaced, key revoked) are watched by a
    // task on the main runtime: the read loops arm no timer and poll no token per wakeup;
    // they store when the last message arrived, and the watchdog answers through `stop`.
    let activity = Arc::new(Activity {
        start: Instant::now(),
        last_ms: AtomicU64::new(0),
    });
    let (stop_tx, mut stop) = oneshot::channel();
    let (tokens_tx, tokens_rx) = oneshot::channel();
    shared.main.spawn(watchdog(
        activity.clone(),
        cfg.idle_timeout,
        cfg.publish_timeout,
        tokens_rx,
        stop_tx,
    ));
    let mut conn = Conn::new();
    let mut app = String::new();
    let mut publishing: Option<Publishing> = None;
    let ended = serve(
        shared,
        id,
        &mut stream,
        &mut conn,
        &mut app,
        &mut publishing,
        &activity,
        &mut stop,
    )
    .await;
    let reason = match (ended, publishing.as_ref()) {
        (Err(reason), _) => {
            let _ = tokio::time::timeout(CLOSE_FLUSH, conn.flush(&mut stream)).await;
            reason
        }
        (Ok(()), Some(p)) => {
            let _ = tokens_tx.send((p.kick.clone(), p.revoked.clone()));
            let thread = PublisherThread {
                shared: shared.clone(),
                id,
                conn,
                app,
                broadcast: p.broadcast.clone(),
                activity,
            };
            thread.run(stream, stop).await
        }
        (Ok(()), None) => "connection left the command phase without publishing".into(),
    };
    if let Some(p) = publishing {
        end_publishing(shared, id, p, cfg.grace).await;
    }
    reason
}

/// The command phase: reads and answers commands until the connection publishes (`Ok`) or
/// ends (`Err` with why; a last status message may be queued in `conn.out`).
#[allow(clippy::too_many_arguments)]
async fn serve(
    shared: &Arc<Shared>,
    id: u64,
    stream: &mut TcpStream,
    conn: &mut Conn,
    app: &mut String,
    publishing: &mut Option<Publishing>,
    activity: &Activity,
    stop: &mut oneshot::Receiver<Stop>,
) -> Result<(), Reason> {
    loop {
        loop {
            let broadcast = publishing.as_ref().map(|p| &*p.broadcast);
            match drain(id, conn, app, broadcast, activity)? {
                None => break,
                // The rest of what was read (metadata, first frames) goes to the broadcast.
                Some(request) => *publishing = Some(publish(shared, id, conn, app, request).await?),
            }
        }
        conn.flush(stream)
            .await
            .map_err(|e| format!("write: {e}"))?;
        if publishing.is_some() {
            return Ok(());
        }
        // Reads first: most wakeups are data, and then the other branch is not polled.
        tokio::select! {
            biased;
            r = conn.fill(stream) => r?,
            why = &mut *stop => return Err(stop_reason(conn, why.ok(), false)),
        }
    }
}

/// Parse and handle every complete message buffered. Stops early at a `publish` command that
/// needs authorizing (only while not publishing: `broadcast` is `None`) and returns it.
/// `broadcast` is where media goes once publishing.
fn drain(
    id: u64,
    conn: &mut Conn,
    app: &mut String,
    broadcast: Option<&Broadcast>,
    activity: &Activity,
) -> Result<Option<PublishRequest>, Reason> {
    let mut got_message = false;
    let result = loop {
        let msg = match conn.reader.poll() {
            Ok(Some(m)) => m,
            Ok(None) => break Ok(None),
            Err(e) => {
                conn.send(&rtmp::on_status(
                    0,
                    "error",
                    "NetConnection.Connect.Rejected",
                    &format!("protocol error: {e}"),
                ));
                break Err(format!("protocol error: {e}"));
            }
        };
        got_message = true;
        conn.arrival();
        match handle(id, conn, app, broadcast, msg) {
            Ok(None) => {}
            other => break other,
        }
    };
    if got_message {
        let ms = conn
            .read_at
            .saturating_duration_since(activity.start)
            .as_millis();
        activity.last_ms.store(ms as u64, Ordering::Relaxed);
    }
    result
}

/// A publisher's media path. Once a connection publishes, its socket is switched to blocking
/// mode and served by a thread of its own: one `recv` per wakeup, with no event loop, waker or
/// scheduler between the kernel and the packager. This is what makes passthrough ingest cost
/// no more CPU per stream than nginx-rtmp (bench/rtmp-ingest); a thread per publisher is
/// cheap at the scale of one node's encoders (hundreds, not hundreds of thousands).
struct PublisherThread {
    shared: Arc<Shared>,
    id: u64,
    conn: Conn,
    app: String,
    broadcast: Arc<Broadcast>,
    activity: Arc<Activity>,
}

impl PublisherThread {
    /// Move `stream` to the thread and wait for it to end; a stop from the watchdog shuts the
    /// socket's read side so the thread's blocked `recv` returns and it ends with that reason.
    async fn run(self, stream: TcpStream, mut stop: oneshot::Receiver<Stop>) -> Reason {
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => return format!("moving the publisher to its thread: {e}"),
        };
        let setup = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
            .and_then(|()| stream.try_clone());
        let waker = match setup {
            Ok(w) => ShutdownOnDrop(w),
            Err(e) => return format!("moving the publisher to its thread: {e}"),
        };
        let stopped: Arc<Mutex<Option<Stop>>> = Arc::default();
        let (done_tx, mut done) = oneshot::channel::<Reason>();
        let id = self.id;
        let spawned = std::thread::Builder::new()
            .name(format!("rtmp-publisher-{id}"))
            .spawn({
                let stopped = stopped.clone();
                move || {
                    let reason = self.serve(stream, &stopped);
                    let _ = done_tx.send(reason);
                }
            });
        if let Err(e) = spawned {
            tracing::error!(conn = id, error = %e, "no thread for an RTMP publisher: raise the process's thread limit (ulimit -u)");
            return format!("could not start the publisher's thread: {e}");
        }
        tokio::select! {
            reason = &mut done => return reason.unwrap_or_else(|_| "publisher thread failed".into()),
            why = &mut stop => {
                *lock(&stopped) = Some(why.unwrap_or(Stop::Why("connection watchdog ended".into())));
                let _ = waker.0.shutdown(std::net::Shutdown::Read);
            }
        }
        done.await
            .unwrap_or_else(|_| "publisher thread failed".into())
    }

    /// The thread's loop: read, handle every complete message, send what is queued (the
    /// acknowledgements), until the peer goes, a message ends the connection, or a stop.
    fn serve(mut self, mut stream: std::net::TcpStream, stopped: &Mutex<Option<Stop>>) -> Reason {
        // Broadcast code may spawn on the main runtime.
        let _runtime = self.shared.main.enter();
        let mut scratch = vec![0u8; READ_SIZE];
        let reason = loop {
            match drain(
                self.id,
                &mut self.conn,
                &mut self.app,
                Some(&self.broadcast),
                &self.activity,
            ) {
                Ok(None) => {}
                // `handle` refuses a second publish itself; nothing to authorize here.
                Ok(Some(_)) => break "second publish on one connection".into(),
                Err(reason) => break reason,
            }
            if let Err(e) = self.conn.flush_blocking(&mut stream) {
                break format!("write: {e}");
            }
            let read = std::io::Read::read(&mut stream, &mut scratch);
            if let Some(why) = lock(stopped).take() {
                break stop_reason(&mut self.conn, Some(why), true);
            }
            match read {
                Ok(0) => break "peer closed".into(),
                Ok(n) => {
                    self.conn.reader.push(&scratch[..n]);
                    self.conn.received(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break format!("read: {e}"),
            }
        };
        let _ = stream.set_write_timeout(Some(CLOSE_FLUSH));
        let _ = self.conn.flush_blocking(&mut stream);
        reason
    }
}

/// Shuts the socket down when dropped: the publisher's thread then sees its peer gone and
/// ends, also when the task waiting for it is dropped (the server stopping).
struct ShutdownOnDrop(std::net::TcpStream);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// Queue the status message for a stop from the watchdog and say why (for the log).
fn stop_reason(conn: &mut Conn, why: Option<Stop>, publishing: bool) -> Reason {
    match why {
        Some(Stop::TimedOut) => {
            conn.send(&rtmp::on_status(
                0,
                "error",
                "NetConnection.Connect.Closed",
                "timed out",
            ));
            if publishing {
                "no complete message before the idle timeout".into()
            } else {
                "did not publish in time".into()
            }
        }
        Some(Stop::Why(why)) => {
            if why.starts_with("auth_failed") {
                conn.send(&rtmp::on_status(
                    1,
                    "error",
                    "NetStream.Publish.Unauthorized",
                    "auth_failed: stream key rotated or input removed",
                ));
            }
            why
        }
        None => "connection watchdog ended".into(),
    }
}

/// What the connection and its watchdog share: when its last complete message arrived.
struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the read that completed the last message.
    last_ms: AtomicU64,
}

/// Why the watchdog stops a connection.
enum Stop {
    /// No publish before the publish timeout, or no message for the idle timeout.
    TimedOut,
    /// Replaced by a newer connection, or its key revoked.
    Why(Reason),
}

/// Watches one connection from the main runtime: the publish deadline until `tokens` brings
/// the publisher's (replaced, revoked) tokens, the idle timeout (re-armed from the last
/// message's time when it fires early, so once per idle period at most), and the tokens; says
/// why through `tx`, and ends with the connection (the receiver dropped).
async fn watchdog(
    activity: Arc<Activity>,
    idle: Duration,
    publish_timeout: Duration,
    mut tokens: oneshot::Receiver<(CancellationToken, CancellationToken)>,
    mut tx: oneshot::Sender<Stop>,
) {
    let start = tokio::time::Instant::from_std(activity.start);
    let mut watching: Option<(CancellationToken, CancellationToken)> = None;
    let mut tokens_open = true;
    let stop = loop {
        let last = start + Duration::from_millis(activity.last_ms.load(Ordering::Relaxed));
        let mut deadline = last + idle;
        if watching.is_none() {
            deadline = deadline.min(start + publish_timeout);
        }
        if tokio::time::Instant::now() >= deadline {
            break Stop::TimedOut;
        }
        let (kick, revoked) = match &watching {
            Some((k, r)) => (Some(k.clone()), Some(r.clone())),
            None => (None, None),
        };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            t = &mut tokens, if tokens_open => {
                tokens_open = false;
                watching = t.ok();
            }
            _ = cancelled(kick) => {
                break Stop::Why("replaced by a newer connection for the same input".into())
            }
            _ = cancelled(revoked) => break Stop::Why("auth_failed: stream key revoked".into()),
            _ = tx.closed() => return,
        }
    };
    let _ = tx.send(stop);
}

/// Resolves when `token` is cancelled; never without one.
async fn cancelled(token: Option<CancellationToken>) {
    match token {
        Some(t) => t.cancelled().await,
        None => std::future::pending().await,
    }
}

/// Handle one message. Media goes to `broadcast` (while publishing); a `publish` command
/// that needs authorizing is returned to the caller.
fn handle(
    id: u64,
    conn: &mut Conn,
    app: &mut String,
    broadcast: Option<&Broadcast>,
    msg: Message,
) -> Result<Option<PublishRequest>, Reason> {
    match msg.type_id {
        types::SET_CHUNK_SIZE => {} // applied by the reader
        types::ABORT if msg.payload.len() >= 4 => {
            conn.reader.abort(u32::from_be_bytes([
                msg.payload[0],
                msg.payload[1],
                msg.payload[2],
                msg.payload[3],
            ]));
        }
        types::WINDOW_ACK if msg.payload.len() >= 4 => {
            conn.peer_window = u32::from_be_bytes([
                msg.payload[0],
                msg.payload[1],
                msg.payload[2],
                msg.payload[3],
            ]);
        }
        types::ACK | types::USER_CONTROL | types::PEER_BANDWIDTH => {}
        types::COMMAND_AMF0 | types::COMMAND_AMF3 => {
            let payload = if msg.type_id == types::COMMAND_AMF3 {
                msg.payload.slice(1.min(msg.payload.len())..)
            } else {
                msg.payload.clone()
            };
            let cmd = rtmp::parse_command(&payload).map_err(|e| format!("bad command: {e}"))?;
            return command(conn, app, broadcast.is_some(), cmd, msg.stream_id);
        }
        types::DATA_AMF0 => {
            if let (Some(b), Some(meta)) = (broadcast, rtmp::parse_metadata(&msg.payload)) {
                b.set_metadata(metadata(&meta));
            }
        }
        types::VIDEO => {
            if let Some(b) = broadcast {
                match flv::parse_video(&msg.payload) {
                    Ok(Video::Config(c)) => b.video_config(c),
                    Ok(Video::Frame(f)) => {
                        b.video_frame(conn.read_at, msg.timestamp, f.keyframe, f.cts, f.data)
                    }
                    Ok(Video::Other) => {}
                    Err(e) => {
                        tracing::debug!(conn = id, error = %e, "video message skipped");
                    }
                }
            }
        }
        types::AUDIO => {
            if let Some(b) = broadcast {
                match flv::parse_audio(&msg.payload) {
                    Ok(Audio::Config(c)) => b.audio_config(c),
                    Ok(Audio::Frame(f)) => b.audio_frame(conn.read_at, msg.timestamp, f),
                    Ok(Audio::Other) => {}
                    Err(e) => {
                        tracing::debug!(conn = id, error = %e, "audio message skipped");
                    }
                }
            }
        }
        _ => {}
    }
    Ok(None)
}

fn metadata(v: &Value) -> Metadata {
    let num = |k: &str| {
        v.get(k)
            .and_then(Value::as_f64)
            .filter(|n| n.is_finite() && *n > 0.0)
    };
    Metadata {
        framerate: num("framerate").or_else(|| num("fps")),
        video_bitrate: num("videodatarate").map(|k| (k * 1000.0) as u64),
        audio_bitrate: num("audiodatarate").map(|k| (k * 1000.0) as u64),
        width: num("width").map(|n| n as u32),
        height: num("height").map(|n| n as u32),
    }
}

/// Answer one command. `publish` is only checked here and returned for [`publish`] to
/// authorize (a second one on a publishing connection is refused).
fn command(
    conn: &mut Conn,
    app: &mut String,
    publishing: bool,
    cmd: rtmp::Command,
    stream_id: u32,
) -> Result<Option<PublishRequest>, Reason> {
    match cmd.name.as_str() {
        "connect" => {
            *app = cmd
                .object
                .get("app")
                .and_then(Value::as_str)
                .unwrap_or("")
                .chars()
                .take(512)
                .collect();
            conn.send(&rtmp::control(types::WINDOW_ACK, rtmp::WINDOW));
            conn.send(&rtmp::peer_bandwidth(rtmp::WINDOW));
            conn.send(&rtmp::control(
                types::SET_CHUNK_SIZE,
                rtmp::OUT_CHUNK_SIZE as u32,
            ));
            conn.send(&rtmp::connect_result(cmd.transaction));
        }
        "releaseStream" | "FCPublish" => {
            conn.send(&rtmp::result(
                cmd.transaction,
                Value::Null,
                Value::Undefined,
            ));
        }
        "createStream" => {
            conn.send(&rtmp::result(
                cmd.transaction,
                Value::Null,
                Value::Number(1.0),
            ));
        }
        "publish" => {
            let name = cmd.args.first().and_then(Value::as_str).unwrap_or("");
            let stream_id = stream_id.max(1);
            if publishing {
                conn.send(&rtmp::on_status(
                    stream_id,
                    "error",
                    "NetStream.Publish.BadName",
                    "this connection is already publishing",
                ));
                return Err("second publish on one connection".into());
            }
            return Ok(Some(PublishRequest {
                name: name.to_owned(),
                stream_id,
            }));
        }
        "FCUnpublish" | "deleteStream" | "closeStream" if publishing => {
            return Err(format!("encoder sent {}", cmd.name));
        }
        "play" | "play2" => {
            conn.send(&rtmp::on_status(
                stream_id,
                "error",
                "NetStream.Play.Failed",
                "this server only accepts publishers",
            ));
            return Err("play is not supported".into());
        }
        _ => {}
    }
    Ok(None)
}

/// Authorize a `publish` (on the main runtime: the control plane's lookups use its database
/// pool) and start publishing, or refuse it with a status message queued.
async fn publish(
    shared: &Arc<Shared>,
    id: u64,
    conn: &mut Conn,
    app: &str,
    request: PublishRequest,
) -> Result<Publishing, Reason> {
    let sid = request.stream_id;
    let auth = {
        let (shared, app, name) = (shared.clone(), app.to_owned(), request.name);
        shared
            .main
            .clone()
            .spawn(async move { authorize(&shared, &app, &name).await })
    };
    let auth = auth.await.unwrap_or_else(|_| {
        Err((
            "NetStream.Publish.Failed",
            "authorization was cancelled".into(),
        ))
    });
    match auth {
        Ok((lv, org, grant)) => {
            let p = start_publishing(shared, id, lv, org, grant);
            conn.send(&rtmp::stream_begin(sid));
            conn.send(&rtmp::on_status(
                sid,
                "status",
                "NetStream.Publish.Start",
                &format!("publishing {}", p.lv),
            ));
            tracing::info!(conn = id, lv = %p.lv, org = %p.org, "RTMP publish started");
            Ok(p)
        }
        Err((code, why)) => {
            tracing::warn!(conn = id, app = %app, reason = %why, "RTMP publish refused");
            conn.send(&rtmp::on_status(sid, "error", code, &why));
            Err(format!("publish refused: {why}"))
        }
    }
}

async fn authorize(
    shared: &Arc<Shared>,
    app: &str,
    name: &str,
) -> Result<(String, String, Grant), (&'static str, String)> {
    let Some((lv, key)) = rtmp::publish_target(app, name) else {
        return Err((
            "NetStream.Publish.BadName",
            "expected rtmp://host/live/<external_input_id> with the stream key as stream name"
                .into(),
        ));
    };
    let org = match shared.lookup.org_of(&lv).await {
        Ok(Some(org)) => org,
        Ok(None) => {
            return Err((
                "NetStream.Publish.BadName",
                format!("auth_failed: unknown input {lv}"),
            ))
        }
        Err(e) => {
            tracing::error!(lv = %lv, error = %e, "input lookup failed");
            return Err(("NetStream.Publish.Failed", "input lookup failed".into()));
        }
    };
    let req = AuthRequest {
        action: Action::Publish,
        namespace: vec![
            b"stream".to_vec(),
            org.as_bytes().to_vec(),
            lv.as_bytes().to_vec(),
        ],
        track: None,
        token: Some(key.into_bytes()),
    };
    match shared.authorizer.authorize(req).await {
        Ok(g) => Ok((lv, org, g)),
        Err(d) => Err((
            "NetStream.Publish.Unauthorized",
            format!("auth_failed: {}", d.0),
        )),
    }
}

fn start_publishing(
    shared: &Arc<Shared>,
    id: u64,
    lv: String,
    org: String,
    grant: Grant,
) -> Publishing {
    let kick = CancellationToken::new();
    let revoked = grant.revoked.clone().unwrap_or_default();
    let mut slots = lock(&shared.slots);
    let broadcast = match slots.get_mut(&lv) {
        Some(slot) if slot.org == org => {
            // A reconnect (or a second encoder): the newest wins, the broadcast continues.
            slot.kick.cancel();
            slot.owner = id;
            slot.kick = kick.clone();
            slot.broadcast.attach();
            slot.broadcast.clone()
        }
        _ => {
            if let Some(old) = slots.remove(&lv) {
                old.kick.cancel();
                old.broadcast.close("replaced");
            }
            let b = Broadcast::new(
                &shared.main,
                &shared.config,
                shared.registry.clone(),
                &org,
                &lv,
                SESSION_BASE + id,
                shared.statuses.clone(),
            );
            slots.insert(
                lv.clone(),
                Slot {
                    org: org.clone(),
                    broadcast: b.clone(),
                    owner: id,
                    kick: kick.clone(),
                },
            );
            b
        }
    };
    Publishing {
        lv,
        org,
        broadcast,
        kick,
        revoked,
        _grant: grant,
    }
}

async fn end_publishing(shared: &Arc<Shared>, id: u64, p: Publishing, grace: Duration) {
    let owns = |slots: &HashMap<String, Slot>| slots.get(&p.lv).is_some_and(|s| s.owner == id);
    if !owns(&lock(&shared.slots)) {
        return;
    }
    p.broadcast.detach();
    let Publishing {
        lv,
        broadcast,
        _grant,
        ..
    } = p;
    drop(_grant); // the input is idle while nobody publishes
    tokio::time::sleep(grace).await;
    let mut slots = lock(&shared.slots);
    if slots.get(&lv).is_some_and(|s| s.owner == id) {
        slots.remove(&lv);
        drop(slots);
        tracing::info!(lv = %lv, "RTMP broadcast ended (no reconnect within the grace window)");
        broadcast.close("encoder disconnected");
    }
}
