//! The MoQT relay: tracks, the group cache, fan-out to subscribers, priorities.
//!
//! Owns: which tracks exist, one upstream subscription per track, the bounded per-track cache
//! of recent groups, and scheduling objects to each subscriber. Does not own: wire encoding
//! (`moqt`), sockets/TLS (`net`), or what a credential means (`auth::Authorizer`, filled in by
//! the control plane).

pub mod auth;
