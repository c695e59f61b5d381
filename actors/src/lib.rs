//! Sluice's actors — partition replicas, group coordinators, the controller — and the
//! log engine they own.
//!
//! The log engine ([`log`]) is plain synchronous Rust with no actix in it: a partition
//! replica actor owns one [`log::Log`] and is its only writer.

pub mod broker;
pub mod controller;
mod error;
pub mod group;
pub mod log;
pub mod metadata;
pub mod replica;

pub use error::{Error, Result};
