//! Sluice's actors — partition replicas, group coordinators, the controller — and the
//! log engine they own.
//!
//! The log engine ([`log`]) is plain synchronous Rust with no actix in it: a partition
//! replica actor owns one [`log::Log`] and is its only writer.
//!
//! Feature `broker` (default): the actors. Without it only [`log`] is built (no actix, sled or
//! coordination service) — what the client uses for record batches and compression.

#[cfg(feature = "broker")]
pub mod broker;
#[cfg(feature = "broker")]
pub mod controller;
#[cfg(feature = "broker")]
mod error;
#[cfg(feature = "broker")]
pub mod group;
pub mod log;
#[cfg(feature = "broker")]
pub mod metadata;
#[cfg(feature = "broker")]
pub mod replica;

#[cfg(feature = "broker")]
pub use error::{Error, Result};
