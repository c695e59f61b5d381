//! The log engine: Kafka-format partition logs on disk.
//!
//! A partition directory `<topic>-<partition>` holds segments — `<20-digit base
//! offset>.log` (v2 record batches exactly as produced, offsets assigned), `.index`
//! (sparse offset index) and `.timeindex` (sparse time index) — plus
//! `leader-epoch-checkpoint` and `partition.metadata`. The data directory holds the
//! checkpoints shared by all partitions (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `cleaner-offset-checkpoint`) and the clean-shutdown
//! marker.
//!
//! Everything here is synchronous and single-owner: a [`Log`] is owned by its partition
//! replica, which is the only writer.

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod compression;
pub mod config;
mod error;
pub mod files;
pub mod index;
pub mod leader_epoch;
#[allow(clippy::module_inception)]
pub mod log;
pub mod manager;
mod mmap;
pub mod segment;

pub use error::{LogError, Result};
pub use log::Log;
