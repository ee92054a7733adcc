//! The relay's in-memory model of a track: groups of subgroups of objects, appended by one
//! publisher and read concurrently by any number of subscribers.
//!
//! Writers never wait for readers: a subgroup is an append-only list of objects behind a short
//! mutex plus a `watch` channel that tells readers how many objects exist. Each reader keeps its
//! own cursor, so a stalled reader costs nothing but the memory of the groups it still holds,
//! and the track's cache evicts old groups by age and by a byte budget ([`CacheLimits`])
//! regardless of readers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{broadcast, watch};

/// Full track name: namespace tuple + track name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackName {
    pub namespace: Vec<Bytes>,
    pub name: Bytes,
}

impl TrackName {
    pub fn new(namespace: Vec<Bytes>, name: Bytes) -> Self {
        Self { namespace, name }
    }

    pub fn from_strs(namespace: &[&str], name: &str) -> Self {
        Self {
            namespace: namespace
                .iter()
                .map(|f| Bytes::copy_from_slice(f.as_bytes()))
                .collect(),
            name: Bytes::copy_from_slice(name.as_bytes()),
        }
    }
}

impl std::fmt::Display for TrackName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, field) in self.namespace.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(&String::from_utf8_lossy(field))?;
        }
        write!(f, "--{}", String::from_utf8_lossy(&self.name))
    }
}

/// A position in a track, ordered as the draft orders Locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    pub group: u64,
    pub object: u64,
}

impl Location {
    pub const fn new(group: u64, object: u64) -> Self {
        Self { group, object }
    }
}

/// One object as the relay stores it.
#[derive(Debug, Clone)]
pub struct Object {
    pub id: u64,
    /// Object status. Non-normal objects have an empty payload.
    pub status: moqt::data::ObjectStatus,
    /// Object Properties, forwarded as received.
    pub properties: moqt::kvp::Properties,
    pub payload: Bytes,
    /// When the relay received the first byte (for OBJECT_DELIVERY_TIMEOUT).
    pub received: Instant,
}

impl Object {
    fn cost(&self) -> usize {
        self.payload.len() + self.properties.encoded_len() + 64
    }
}

/// How a subgroup ended, if it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubgroupEnd {
    /// Still receiving objects.
    Open,
    /// The publisher finished the stream (FIN): every object is here.
    Finished,
    /// The stream was reset upstream (or evicted): no more objects will come.
    Reset(u32),
}

/// Reader-visible progress of a subgroup: number of objects and whether it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubgroupProgress {
    pub len: usize,
    pub end: SubgroupEnd,
}

/// An append-only subgroup shared by the publisher (writer) and all subscribers (readers).
#[derive(Debug)]
pub struct Subgroup {
    pub group: u64,
    pub id: u64,
    pub priority: u8,
    /// The subgroup header's END_OF_GROUP bit: this subgroup holds the group's largest object.
    pub end_of_group: bool,
    /// Whether objects carry a properties block (the header's PROPERTIES bit).
    pub has_properties: bool,
    /// Objects with the Datagram forwarding preference: one such lane per group, sent to
    /// subscribers as datagrams rather than on a stream.
    pub datagram: bool,
    objects: Mutex<Vec<Object>>,
    progress: watch::Sender<SubgroupProgress>,
}

impl Subgroup {
    pub fn new(
        group: u64,
        id: u64,
        priority: u8,
        end_of_group: bool,
        has_properties: bool,
    ) -> Self {
        let (progress, _) = watch::channel(SubgroupProgress {
            len: 0,
            end: SubgroupEnd::Open,
        });
        Self {
            group,
            id,
            priority,
            end_of_group,
            has_properties,
            datagram: false,
            objects: Mutex::new(Vec::new()),
            progress,
        }
    }

    fn objects(&self) -> MutexGuard<'_, Vec<Object>> {
        // A poisoned lock only means a reader panicked mid-read; the data is still valid.
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Readers subscribe to progress and then fetch objects by index.
    pub fn watch(&self) -> watch::Receiver<SubgroupProgress> {
        self.progress.subscribe()
    }

    pub fn progress(&self) -> SubgroupProgress {
        *self.progress.borrow()
    }

    /// Object at index `i` (not object id), if it exists.
    pub fn get(&self, i: usize) -> Option<Object> {
        self.objects().get(i).cloned()
    }

    /// Objects from index `from` on.
    pub fn get_from(&self, from: usize) -> Vec<Object> {
        let objects = self.objects();
        objects.get(from..).map(|s| s.to_vec()).unwrap_or_default()
    }

    pub fn last_object_id(&self) -> Option<u64> {
        self.objects().last().map(|o| o.id)
    }

    /// Append an object; returns its byte cost for the cache. Objects after the end are ignored.
    pub(crate) fn push(&self, object: Object) -> usize {
        if self.progress.borrow().end != SubgroupEnd::Open {
            return 0;
        }
        let cost = object.cost();
        let len = {
            let mut objects = self.objects();
            objects.push(object);
            objects.len()
        };
        // Wake readers only when there are any (a track nobody watches, e.g. an ingest before
        // its first viewer, skips the notification's locks). Without receivers the new length
        // is stored silently: a reader that subscribes later reads it with `borrow`, and the
        // receiver count is read under the value's write lock, so one subscribing meanwhile
        // either is counted (and notified) or borrows after this write.
        self.progress.send_if_modified(|p| {
            p.len = len;
            self.progress.receiver_count() > 0
        });
        cost
    }

    pub(crate) fn end(&self, end: SubgroupEnd) {
        self.progress.send_if_modified(|p| {
            if p.end == SubgroupEnd::Open {
                p.end = end;
                true
            } else {
                false
            }
        });
    }
}

/// A group: the subgroups seen so far, in arrival order.
#[derive(Debug)]
pub struct Group {
    pub id: u64,
    pub created: Instant,
    subgroups: Mutex<Vec<Arc<Subgroup>>>,
}

impl Group {
    fn new(id: u64) -> Self {
        Self {
            id,
            created: Instant::now(),
            subgroups: Mutex::new(Vec::new()),
        }
    }

    pub fn subgroups(&self) -> Vec<Arc<Subgroup>> {
        self.subgroups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn find(&self, id: u64) -> Option<Arc<Subgroup>> {
        self.subgroups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|s| s.id == id)
            .cloned()
    }
}

/// Why a track stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackEnd {
    /// PUBLISH_DONE status code (e.g. TRACK_ENDED = 2).
    pub code: u64,
    pub reason: String,
}

/// Track-level metadata learned from the publisher (PUBLISH or SUBSCRIBE_OK).
#[derive(Debug, Clone)]
pub struct TrackInfo {
    pub publisher_priority: u8,
    /// 1 = ascending, 2 = descending (the draft's GROUP ORDER values).
    pub group_order: u8,
    /// Track Properties, forwarded to subscribers as received.
    pub properties: moqt::kvp::Properties,
}

impl Default for TrackInfo {
    fn default() -> Self {
        Self {
            publisher_priority: 128,
            group_order: 1,
            properties: Default::default(),
        }
    }
}

/// What a subscriber's fan-out task is told.
#[derive(Debug, Clone)]
pub enum TrackEvent {
    /// A new subgroup started (possibly in a new group).
    Subgroup(Arc<Subgroup>),
    /// The track ended (publisher gone for good).
    Ended(TrackEnd),
}

struct State {
    groups: VecDeque<Arc<Group>>,
    largest: Option<Location>,
    bytes: usize,
    ended: Option<TrackEnd>,
    info: TrackInfo,
}

/// How much of a track the relay keeps in memory once groups are complete. The newest group is
/// always kept, whatever its size or age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Bytes of cached objects, at most (a hard cap on a track's memory).
    pub bytes: usize,
    /// A group is kept until the group after it is older than this: the cache holds at least
    /// the last `window` of the track (plus the newest group). It bounds memory by time, so a
    /// low-bitrate track does not hold hours of content under the byte cap, and the memory
    /// new objects are written into was last used recently.
    pub window: Duration,
}

impl CacheLimits {
    /// The relay's defaults: 10 s, at most 64 MiB.
    pub const DEFAULT: Self = Self {
        bytes: 64 << 20,
        window: Duration::from_secs(10),
    };
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One track in the relay, shared by its publisher and its subscribers.
pub struct Track {
    pub name: TrackName,
    cache: CacheLimits,
    /// Publisher generation: bumps when a new publisher takes over the track. Outside the
    /// state lock so publishers can check per object that they still own the track.
    generation: AtomicU64,
    state: Mutex<State>,
    events: broadcast::Sender<TrackEvent>,
    /// Whether the upstream has accepted the subscription feeding this track (on-demand feeds).
    feed_state: watch::Sender<FeedState>,
}

/// Where an on-demand feed stands. Pushed tracks (PUBLISH) are `Live` from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedState {
    /// The upstream SUBSCRIBE is on its way.
    Pending,
    /// The upstream accepted it (or the track is pushed).
    Live,
    /// The upstream refused it; the reason phrase.
    Refused(String),
}

impl std::fmt::Debug for Track {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Track")
            .field("name", &self.name.to_string())
            .finish()
    }
}

impl Track {
    pub fn new(name: TrackName, cache: CacheLimits) -> Arc<Self> {
        let (events, _) = broadcast::channel(256);
        Arc::new(Self {
            name,
            cache,
            generation: AtomicU64::new(0),
            state: Mutex::new(State {
                groups: VecDeque::new(),
                largest: None,
                bytes: 0,
                ended: None,
                info: TrackInfo::default(),
            }),
            events,
            feed_state: watch::channel(FeedState::Live).0,
        })
    }

    pub fn set_feed_state(&self, state: FeedState) {
        self.feed_state.send_replace(state);
    }

    /// Wait (at most `limit`) until the feed's upstream has answered: `Err(reason)` when it
    /// refused or did not answer in time.
    pub async fn feed_ready(&self, limit: std::time::Duration) -> Result<(), String> {
        let mut rx = self.feed_state.subscribe();
        let answered = tokio::time::timeout(limit, rx.wait_for(|s| *s != FeedState::Pending)).await;
        match answered {
            Ok(Ok(state)) => match &*state {
                FeedState::Refused(reason) => Err(reason.clone()),
                _ => Ok(()),
            },
            Ok(Err(_)) => Err("the track is gone".into()),
            Err(_) => Err("the upstream did not answer in time".into()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribe to new subgroups and the end of the track. Take this BEFORE reading
    /// [`Track::snapshot`] so nothing falls in between.
    pub fn events(&self) -> broadcast::Receiver<TrackEvent> {
        self.events.subscribe()
    }

    pub fn largest(&self) -> Option<Location> {
        self.state().largest
    }

    pub fn info(&self) -> TrackInfo {
        self.state().info.clone()
    }

    pub fn set_info(&self, info: TrackInfo) {
        self.state().info = info;
    }

    pub fn ended(&self) -> Option<TrackEnd> {
        self.state().ended.clone()
    }

    /// The current publisher's generation (see [`Track::begin_publisher`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Cached groups, oldest first.
    pub fn groups(&self) -> Vec<Arc<Group>> {
        self.state().groups.iter().cloned().collect()
    }

    pub fn group(&self, id: u64) -> Option<Arc<Group>> {
        self.state().groups.iter().find(|g| g.id == id).cloned()
    }

    /// The newest cached group, where a late joiner starts.
    pub fn latest_group(&self) -> Option<Arc<Group>> {
        self.state().groups.back().cloned()
    }

    pub fn cached_bytes(&self) -> usize {
        self.state().bytes
    }

    /// A new publisher takes over (first publisher, or a reconnect). Clears a previous end.
    /// Returns the new generation number.
    pub fn begin_publisher(&self, info: TrackInfo) -> u64 {
        let mut state = self.state();
        state.ended = None;
        state.info = info;
        // Bumped under the state lock, so takeovers are numbered in order.
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Open a subgroup for writing. Returns `None` when that subgroup already exists (the
    /// publisher opened a second stream for it; the first one wins).
    pub fn create_subgroup(
        &self,
        group: u64,
        subgroup: u64,
        priority: u8,
        end_of_group: bool,
        has_properties: bool,
    ) -> Option<Arc<Subgroup>> {
        let created = {
            let mut state = self.state();
            let group_arc = match state.groups.iter().position(|g| g.id >= group) {
                Some(i) if state.groups[i].id == group => state.groups[i].clone(),
                Some(i) => {
                    // A group older than a cached one (streams can arrive out of order).
                    let g = Arc::new(Group::new(group));
                    state.groups.insert(i, g.clone());
                    g
                }
                None => {
                    let g = Arc::new(Group::new(group));
                    state.groups.push_back(g.clone());
                    g
                }
            };
            if group_arc.find(subgroup).is_some() {
                // A second stream for the same subgroup: keep the first one.
                return None;
            }
            let sg = Arc::new(Subgroup::new(
                group,
                subgroup,
                priority,
                end_of_group,
                has_properties,
            ));
            group_arc
                .subgroups
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(sg.clone());
            sg
        };
        let _ = self.events.send(TrackEvent::Subgroup(created.clone()));
        Some(created)
    }

    /// The subgroup `(group, subgroup)`, created if it does not exist yet. Used where two
    /// sources legitimately fill one subgroup: a joining FETCH writes a group's earlier objects
    /// and the subscription's stream for that group appends the rest.
    pub fn join_subgroup(
        &self,
        group: u64,
        subgroup: u64,
        priority: u8,
        end_of_group: bool,
        has_properties: bool,
    ) -> Arc<Subgroup> {
        if let Some(existing) = self.group(group).and_then(|g| g.find(subgroup)) {
            return existing;
        }
        match self.create_subgroup(group, subgroup, priority, end_of_group, has_properties) {
            Some(sg) => sg,
            // Lost a race with another writer: it created the subgroup in between.
            None => self
                .group(group)
                .and_then(|g| g.find(subgroup))
                .unwrap_or_else(|| {
                    Arc::new(Subgroup::new(
                        group,
                        subgroup,
                        priority,
                        end_of_group,
                        has_properties,
                    ))
                }),
        }
    }

    /// How many subscribers are following the track right now (each holds an event receiver).
    pub fn watchers(&self) -> usize {
        self.events.receiver_count()
    }

    /// Append an object to a subgroup of this track, updating the largest location and
    /// evicting old groups past the cache's limits.
    pub fn push_object(&self, subgroup: &Subgroup, object: Object) {
        let loc = Location::new(subgroup.group, object.id);
        let now = object.received;
        let cost = subgroup.push(object);
        if cost == 0 {
            return;
        }
        let mut state = self.state();
        if state.largest.is_none_or(|l| loc > l) {
            state.largest = Some(loc);
        }
        state.bytes += cost;
        self.evict(&mut state, now);
    }

    /// Whether the oldest cached group is past the limits: over the byte budget, or followed by
    /// a group that began more than the window before `now`. The newest group always stays.
    fn oldest_expired(&self, state: &State, now: Instant) -> bool {
        match state.groups.get(1) {
            None => false,
            Some(next) => {
                state.bytes > self.cache.bytes
                    || now.saturating_duration_since(next.created) > self.cache.window
            }
        }
    }

    fn evict(&self, state: &mut State, now: Instant) {
        while self.oldest_expired(state, now) {
            if let Some(old) = state.groups.pop_front() {
                let mut freed = 0;
                for sg in old.subgroups() {
                    freed += sg.objects().iter().map(Object::cost).sum::<usize>();
                    sg.end(SubgroupEnd::Reset(crate::RESET_CANCELLED));
                }
                state.bytes = state.bytes.saturating_sub(freed);
            }
        }
    }

    /// The datagram lane of a group (created on first use), where datagram objects are kept.
    pub fn datagram_lane(&self, group: u64, priority: u8) -> Arc<Subgroup> {
        let (lane, created) = {
            let mut state = self.state();
            let group_arc = match state.groups.iter().position(|g| g.id >= group) {
                Some(i) if state.groups[i].id == group => state.groups[i].clone(),
                Some(i) => {
                    let g = Arc::new(Group::new(group));
                    state.groups.insert(i, g.clone());
                    g
                }
                None => {
                    let g = Arc::new(Group::new(group));
                    state.groups.push_back(g.clone());
                    g
                }
            };
            let mut subgroups = group_arc
                .subgroups
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match subgroups.iter().find(|s| s.datagram) {
                Some(l) => (l.clone(), false),
                None => {
                    let mut sg = Subgroup::new(group, u64::MAX, priority, false, true);
                    sg.datagram = true;
                    let sg = Arc::new(sg);
                    subgroups.push(sg.clone());
                    (sg, true)
                }
            }
        };
        if created {
            let _ = self.events.send(TrackEvent::Subgroup(lane.clone()));
        }
        lane
    }

    /// Mark a subgroup finished or reset.
    pub fn end_subgroup(&self, subgroup: &Subgroup, end: SubgroupEnd) {
        subgroup.end(end);
    }

    /// The publisher is gone for good: tell every subscriber.
    pub fn end(&self, end: TrackEnd) {
        {
            let mut state = self.state();
            if state.ended.is_some() {
                return;
            }
            state.ended = Some(end.clone());
            for g in &state.groups {
                for sg in g.subgroups() {
                    sg.end(SubgroupEnd::Reset(crate::RESET_CANCELLED));
                }
            }
        }
        let _ = self.events.send(TrackEvent::Ended(end));
    }

    /// Drop all cached groups (a new publisher restarted its group numbering).
    pub fn clear_cache(&self) {
        let mut state = self.state();
        for g in state.groups.drain(..) {
            for sg in g.subgroups() {
                sg.end(SubgroupEnd::Reset(crate::RESET_CANCELLED));
            }
        }
        state.bytes = 0;
        state.largest = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(id: u64, size: usize) -> Object {
        obj_at(id, size, Instant::now())
    }

    fn obj_at(id: u64, size: usize, received: Instant) -> Object {
        Object {
            id,
            status: Default::default(),
            properties: Default::default(),
            payload: Bytes::from(vec![0u8; size]),
            received,
        }
    }

    /// A byte budget only (a window no test reaches).
    fn bytes(bytes: usize) -> CacheLimits {
        CacheLimits {
            bytes,
            window: Duration::from_secs(3600),
        }
    }

    #[test]
    fn cache_evicts_oldest_groups_by_bytes_but_keeps_newest() {
        let track = Track::new(TrackName::from_strs(&["a"], "t"), bytes(10_000));
        for g in 0..10 {
            let sg = track
                .create_subgroup(g, 0, 128, true, false)
                .expect("subgroup");
            for o in 0..4 {
                track.push_object(&sg, obj(o, 1000));
            }
            track.end_subgroup(&sg, SubgroupEnd::Finished);
        }
        let groups = track.groups();
        assert!(
            track.cached_bytes() <= 10_000,
            "cache {} over budget",
            track.cached_bytes()
        );
        assert_eq!(groups.last().map(|g| g.id), Some(9));
        assert!(
            groups.first().map(|g| g.id).unwrap_or(0) > 0,
            "oldest group evicted"
        );
        assert_eq!(track.largest(), Some(Location::new(9, 3)));
    }

    #[test]
    fn cache_keeps_the_window_then_evicts_by_age() {
        let track = Track::new(
            TrackName::from_strs(&["a"], "t"),
            CacheLimits {
                bytes: 1 << 30,
                window: Duration::from_millis(50),
            },
        );
        let push_group = |g: u64| {
            let sg = track
                .create_subgroup(g, 0, 128, true, false)
                .expect("subgroup");
            track.push_object(&sg, obj(0, 100));
            sg
        };
        // Group 0 is left open: its readers must hear that it was dropped.
        let first = push_group(0);
        for g in 1..3 {
            track.end_subgroup(&push_group(g), SubgroupEnd::Finished);
        }
        // All three are within the window: nothing is evicted, however small the objects.
        assert_eq!(track.groups().len(), 3);
        std::thread::sleep(Duration::from_millis(80));
        // Group 3 starts after the window: groups 0 and 1 were followed by groups that began
        // more than 50 ms ago, so they go; group 2 is followed by group 3 (just begun) and stays.
        let sg = track
            .create_subgroup(3, 0, 128, true, false)
            .expect("subgroup");
        track.push_object(&sg, obj(0, 100));
        let ids: Vec<u64> = track.groups().iter().map(|g| g.id).collect();
        assert_eq!(ids, vec![2, 3]);
        assert_eq!(track.cached_bytes(), 2 * (100 + 64));
        assert_eq!(
            first.progress().end,
            SubgroupEnd::Reset(crate::RESET_CANCELLED),
            "readers of an evicted open subgroup are told it is gone"
        );
        // However old, the newest group stays.
        std::thread::sleep(Duration::from_millis(80));
        track.push_object(&sg, obj_at(1, 100, Instant::now()));
        let ids: Vec<u64> = track.groups().iter().map(|g| g.id).collect();
        assert_eq!(ids, vec![3]);
    }

    #[test]
    fn unwatched_subgroup_still_reports_its_length() {
        let track = Track::new(TrackName::from_strs(&["a"], "t"), bytes(1 << 20));
        let sg = track
            .create_subgroup(0, 0, 128, true, false)
            .expect("subgroup");
        // No reader yet: appends are stored without a notification...
        track.push_object(&sg, obj(0, 10));
        track.push_object(&sg, obj(1, 10));
        // ...and a reader that arrives later sees them, then is woken for the next one.
        let mut w = sg.watch();
        assert_eq!(w.borrow_and_update().len, 2);
        track.push_object(&sg, obj(2, 10));
        assert!(w.has_changed().expect("sender alive"));
        assert_eq!(w.borrow_and_update().len, 3);
    }

    #[test]
    fn generation_counts_publishers() {
        let track = Track::new(TrackName::from_strs(&["a"], "t"), bytes(1 << 20));
        assert_eq!(track.generation(), 0);
        assert_eq!(track.begin_publisher(TrackInfo::default()), 1);
        assert_eq!(track.begin_publisher(TrackInfo::default()), 2);
        assert_eq!(track.generation(), 2);
    }

    #[test]
    fn single_huge_group_is_kept() {
        let track = Track::new(TrackName::from_strs(&["a"], "t"), bytes(100));
        let sg = track
            .create_subgroup(5, 0, 128, true, false)
            .expect("subgroup");
        track.push_object(&sg, obj(0, 10_000));
        assert_eq!(track.groups().len(), 1);
        assert_eq!(sg.progress().len, 1);
    }

    #[tokio::test]
    async fn readers_see_appends_and_end() {
        let track = Track::new(TrackName::from_strs(&["a"], "t"), bytes(1 << 20));
        let mut events = track.events();
        let sg = track
            .create_subgroup(0, 0, 128, true, false)
            .expect("subgroup");
        let TrackEvent::Subgroup(seen) = events.recv().await.expect("event") else {
            panic!("expected subgroup")
        };
        let mut w = seen.watch();
        track.push_object(&sg, obj(0, 10));
        w.changed().await.expect("changed");
        assert_eq!(w.borrow().len, 1);
        track.end_subgroup(&sg, SubgroupEnd::Finished);
        w.changed().await.expect("changed");
        assert_eq!(w.borrow().end, SubgroupEnd::Finished);
        track.end(TrackEnd {
            code: 2,
            reason: "bye".into(),
        });
        assert!(matches!(events.recv().await, Ok(TrackEvent::Ended(_))));
    }

    #[test]
    fn objects_after_end_are_ignored() {
        let track = Track::new(TrackName::from_strs(&["a"], "t"), bytes(1 << 20));
        let sg = track
            .create_subgroup(0, 0, 128, true, false)
            .expect("subgroup");
        track.end_subgroup(&sg, SubgroupEnd::Finished);
        track.push_object(&sg, obj(0, 10));
        assert_eq!(sg.progress().len, 0);
    }
}
