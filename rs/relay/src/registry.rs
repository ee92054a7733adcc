//! Which tracks and namespaces the relay knows, and who feeds them.
//!
//! A track is fed by exactly one publication at a time: either a PUBLISH pushed by a
//! publisher, or one upstream SUBSCRIBE the relay sent to a session that announced the track's
//! namespace (PUBLISH_NAMESPACE). However many viewers subscribe, there is one feed per track.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::track::{CacheLimits, Track, TrackEnd, TrackInfo, TrackName};

/// How long a subscriber waits for an upstream to accept the subscription that feeds its track.
const UPSTREAM_ANSWER: Duration = Duration::from_secs(10);

/// A session that announced a namespace and can be asked for tracks in it.
pub trait Upstream: Send + Sync + 'static {
    /// Start feeding `track` from this upstream (send SUBSCRIBE and pump objects into it).
    /// Returns false when the upstream is gone.
    fn feed(&self, track: Arc<Track>, feed: FeedId) -> bool;
    /// A stable id for logs and for removing the announcement.
    fn id(&self) -> u64;
}

/// A change in announced namespaces, for SUBSCRIBE_NAMESPACE.
#[derive(Debug, Clone)]
pub enum NamespaceEvent {
    Announced(Vec<Bytes>),
    Withdrawn(Vec<Bytes>),
}

/// The feed currently owning a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedId {
    pub session: u64,
    pub generation: u64,
}

struct Entry {
    track: Arc<Track>,
    feed: Option<FeedId>,
    /// Cancelled to stop the current feed when another publisher takes the track over.
    stop: CancellationToken,
    /// Bumped on every release so a stale grace timer doesn't end a resumed track.
    epoch: u64,
    /// When a subscriber last looked the track up (an on-demand feed is not dropped while a
    /// subscriber that just found it may still be setting up).
    last_lookup: Instant,
}

struct Inner {
    tracks: HashMap<TrackName, Entry>,
    namespaces: HashMap<Vec<Bytes>, Arc<dyn Upstream>>,
}

impl Inner {
    /// The upstream announced for the longest prefix of `namespace`.
    fn upstream_for(&self, namespace: &[Bytes]) -> Option<Arc<dyn Upstream>> {
        self.namespaces
            .iter()
            .filter(|(ns, _)| namespace.starts_with(ns))
            .max_by_key(|(ns, _)| ns.len())
            .map(|(_, up)| up.clone())
    }
}

/// The relay's shared directory.
pub struct Registry {
    inner: Mutex<Inner>,
    cache: CacheLimits,
    grace: Duration,
    namespace_events: broadcast::Sender<NamespaceEvent>,
    track_added: broadcast::Sender<Arc<Track>>,
}

/// The result of becoming a track's publisher: feed `track` until `stop` is cancelled (a newer
/// publisher took over), then call [`Registry::release`] with `feed`.
pub struct Claim {
    pub track: Arc<Track>,
    pub feed: FeedId,
    pub stop: CancellationToken,
}

impl Registry {
    pub fn new(cache: CacheLimits, grace: Duration) -> Arc<Self> {
        let (namespace_events, _) = broadcast::channel(1024);
        let (track_added, _) = broadcast::channel(1024);
        Arc::new(Self {
            inner: Mutex::new(Inner {
                tracks: HashMap::new(),
                namespaces: HashMap::new(),
            }),
            cache,
            grace,
            namespace_events,
            track_added,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A publisher (PUBLISH) claims a track. The newest publisher wins: a live previous feed is
    /// told to stop (a reconnecting encoder replaces its own zombie connection), and a track in
    /// its grace window is resumed, so its subscribers keep going.
    pub fn claim(&self, name: &TrackName, session: u64, info: TrackInfo) -> Claim {
        let mut inner = self.lock();
        let cache = self.cache;
        let mut created = false;
        let entry = inner.tracks.entry(name.clone()).or_insert_with(|| {
            created = true;
            Entry {
                track: Track::new(name.clone(), cache),
                feed: None,
                stop: CancellationToken::new(),
                epoch: 0,
                last_lookup: Instant::now(),
            }
        });
        if created {
            let _ = self.track_added.send(entry.track.clone());
        }
        if entry.feed.is_some() {
            entry.stop.cancel();
        }
        let generation = entry.track.begin_publisher(info);
        let feed = FeedId {
            session,
            generation,
        };
        entry.feed = Some(feed);
        entry.stop = CancellationToken::new();
        entry.epoch += 1;
        Claim {
            track: entry.track.clone(),
            feed,
            stop: entry.stop.clone(),
        }
    }

    /// The feed stopped. After the grace window, if nobody took over, the track ends with
    /// `end` and is forgotten (subscribers get PUBLISH_DONE).
    pub fn release(self: &Arc<Self>, name: &TrackName, feed: FeedId, end: TrackEnd) {
        let epoch = {
            let mut inner = self.lock();
            let Some(entry) = inner.tracks.get_mut(name) else {
                return;
            };
            if entry.feed != Some(feed) {
                return;
            }
            entry.feed = None;
            entry.epoch += 1;
            entry.epoch
        };
        if self.grace.is_zero() {
            self.finish(name, epoch, end);
            return;
        }
        let this = self.clone();
        let name = name.clone();
        let grace = self.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            this.finish(&name, epoch, end);
        });
    }

    fn finish(&self, name: &TrackName, epoch: u64, end: TrackEnd) {
        let track = {
            let mut inner = self.lock();
            match inner.tracks.get(name) {
                Some(e) if e.epoch == epoch && e.feed.is_none() => {
                    inner.tracks.remove(name).map(|e| e.track)
                }
                _ => None,
            }
        };
        if let Some(track) = track {
            track.end(end);
        }
    }

    /// Find a track for a subscriber: an existing one, or one fed on demand from an upstream
    /// that announced a matching namespace prefix.
    pub fn lookup(&self, name: &TrackName) -> Option<Arc<Track>> {
        let upstream = {
            let mut inner = self.lock();
            if let Some(e) = inner.tracks.get_mut(name) {
                e.last_lookup = Instant::now();
                return Some(e.track.clone());
            }
            let upstream = inner.upstream_for(&name.namespace)?;
            let track = Track::new(name.clone(), self.cache);
            track.set_feed_state(crate::track::FeedState::Pending);
            let generation = track.begin_publisher(TrackInfo::default());
            let feed = FeedId {
                session: upstream.id(),
                generation,
            };
            inner.tracks.insert(
                name.clone(),
                Entry {
                    track: track.clone(),
                    feed: Some(feed),
                    stop: CancellationToken::new(),
                    epoch: 1,
                    last_lookup: Instant::now(),
                },
            );
            (upstream, track, feed)
        };
        let (upstream, track, feed) = upstream;
        if upstream.feed(track.clone(), feed) {
            Some(track)
        } else {
            self.lock().tracks.remove(name);
            None
        }
    }

    /// [`Registry::lookup`], then wait until an on-demand feed's upstream has answered, so a
    /// subscriber hears "no such track" from an edge as it would from the origin.
    pub async fn lookup_ready(&self, name: &TrackName) -> Result<Arc<Track>, String> {
        let track = self
            .lookup(name)
            .ok_or_else(|| "no such track: nothing is published under that name".to_owned())?;
        track.feed_ready(UPSTREAM_ANSWER).await?;
        Ok(track)
    }

    /// Forget a track fed on demand (its upstream subscription failed or was unused).
    pub fn forget(&self, name: &TrackName, feed: FeedId) {
        let mut inner = self.lock();
        if inner.tracks.get(name).is_some_and(|e| e.feed == Some(feed)) {
            inner.tracks.remove(name);
        }
    }

    /// Drop an on-demand feed nobody follows: true (and the track is forgotten) when `feed`
    /// still owns the track, no subscriber is attached, and nobody looked it up for `idle`.
    pub fn forget_if_unused(&self, name: &TrackName, feed: FeedId, idle: Duration) -> bool {
        let mut inner = self.lock();
        let unused = inner.tracks.get(name).is_some_and(|e| {
            e.feed == Some(feed) && e.track.watchers() == 0 && e.last_lookup.elapsed() >= idle
        });
        if unused {
            inner.tracks.remove(name);
        }
        unused
    }

    /// The upstream that would feed `namespace` now (longest announced prefix).
    pub fn upstream_for(&self, namespace: &[Bytes]) -> Option<Arc<dyn Upstream>> {
        self.lock().upstream_for(namespace)
    }

    /// An on-demand feed lost its upstream session (not a PUBLISH_DONE): hand the track to the
    /// next upstream announced for its namespace (a relay reconnecting to its origin), keeping
    /// the same feed so subscribers go on. Without one within the grace window the track is
    /// released with `end`.
    pub fn refeed(self: &Arc<Self>, track: Arc<Track>, feed: FeedId, lost: u64, end: TrackEnd) {
        let this = self.clone();
        let mut events = self.namespace_events.subscribe();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + this.grace;
            loop {
                if this.feed_of(&track.name) != Some(feed) {
                    return;
                }
                if let Some(up) = this
                    .upstream_for(&track.name.namespace)
                    .filter(|u| u.id() != lost)
                {
                    if up.feed(track.clone(), feed) {
                        return;
                    }
                }
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Err(_) => break,
                    Ok(Err(broadcast::error::RecvError::Closed)) => break,
                    Ok(_) => {}
                }
            }
            this.release(&track.name, feed, end);
        });
    }

    pub fn feed_of(&self, name: &TrackName) -> Option<FeedId> {
        self.lock().tracks.get(name).and_then(|e| e.feed)
    }

    /// PUBLISH_NAMESPACE: route future subscriptions under `namespace` to `upstream` (the
    /// newest announcement wins).
    pub fn announce(&self, namespace: Vec<Bytes>, upstream: Arc<dyn Upstream>) {
        self.lock().namespaces.insert(namespace.clone(), upstream);
        let _ = self
            .namespace_events
            .send(NamespaceEvent::Announced(namespace));
    }

    pub fn withdraw(&self, namespace: &[Bytes], upstream_id: u64) {
        let removed = {
            let mut inner = self.lock();
            if inner
                .namespaces
                .get(namespace)
                .is_some_and(|u| u.id() == upstream_id)
            {
                inner.namespaces.remove(namespace);
                true
            } else {
                false
            }
        };
        if removed {
            let _ = self
                .namespace_events
                .send(NamespaceEvent::Withdrawn(namespace.to_vec()));
        }
    }

    /// Namespaces currently announced or published under `prefix`, plus a stream of changes.
    pub fn namespaces(
        &self,
        prefix: &[Bytes],
    ) -> (Vec<Vec<Bytes>>, broadcast::Receiver<NamespaceEvent>) {
        let rx = self.namespace_events.subscribe();
        let inner = self.lock();
        let mut out: Vec<Vec<Bytes>> = inner
            .namespaces
            .keys()
            .filter(|ns| ns.starts_with(prefix))
            .cloned()
            .collect();
        for name in inner.tracks.keys() {
            if name.namespace.starts_with(prefix) && !out.contains(&name.namespace) {
                out.push(name.namespace.clone());
            }
        }
        (out, rx)
    }

    /// Tracks currently known under `prefix` (for SUBSCRIBE_TRACKS and status pages).
    pub fn tracks_under(&self, prefix: &[Bytes]) -> Vec<Arc<Track>> {
        self.lock()
            .tracks
            .values()
            .filter(|e| e.track.name.namespace.starts_with(prefix))
            .map(|e| e.track.clone())
            .collect()
    }

    /// Tracks as they appear (for SUBSCRIBE_TRACKS).
    pub fn track_added(&self) -> broadcast::Receiver<Arc<Track>> {
        self.track_added.subscribe()
    }

    pub fn track_count(&self) -> usize {
        self.lock().tracks.len()
    }

    /// Bytes held by every track's cache of recent groups (for the `relay_cache_bytes` gauge;
    /// takes each track's lock briefly, so call it per scrape, not per object).
    pub fn cached_bytes(&self) -> usize {
        let tracks: Vec<Arc<Track>> = self
            .lock()
            .tracks
            .values()
            .map(|e| e.track.clone())
            .collect();
        tracks.iter().map(|t| t.cached_bytes()).sum()
    }
}
