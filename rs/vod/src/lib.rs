//! ClutchCall Streams VOD: the parts of "upload a file, play it by `pb_…`" that need no
//! database and no HTTP server.
//!
//! Owns:
//! * [`tus`]: strict parsing of tus 1.0.0 header values (offsets, lengths, metadata,
//!   checksums, versions) for the upload endpoint in `api`.
//! * [`storage`]: object storage through `object_store` (local directory by default,
//!   S3-compatible by URL; multipart with parts ≥ 5 MiB).
//! * [`staging`]: appending a PATCH body to an upload's staging file (gathered writes from
//!   the received frames, writeback while receiving, one `fdatasync` per commit).
//! * [`boxes`] and [`segment`]: a small ISO-BMFF reader and the splitter that turns ffmpeg's
//!   fragmented MP4 into CMAF init + media segments (whole GOPs, aligned across renditions).
//! * [`package`]: ffprobe → ffmpeg (stream copy for H.264/AAC, transcode otherwise, optional
//!   ladder) → segments + `catalog.json` (the live MSF shape plus VOD segment fields) in the
//!   store.
//!
//! Must not: touch the database, serve HTTP, know about orgs or tokens, or spawn tasks (its
//! only children are the ffprobe/ffmpeg processes of a `package` call, killed if that future
//! is dropped). Durable jobs, the upload endpoint and serving live in `api`.

#![forbid(unsafe_code)]

pub mod boxes;
pub mod package;
pub mod segment;
pub mod staging;
pub mod storage;
pub mod tus;

pub use package::{package, Catalog, Config, PackageError, Packaged, Probe, Rung};
pub use storage::{Storage, StoreError};
