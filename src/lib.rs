//! Sluice: a Kafka-compatible, replicated, partitioned log broker.
//!
//! The network listener, the Kafka API handlers, configuration loading and the client
//! live in this crate; the actors and the log engine are in [`sluice_actors`], cluster
//! coordination in [`sluice_coordination`].

pub mod cli;
pub mod config;
pub mod connection;
pub mod handlers;
pub mod logging;
pub mod protocol;
pub mod server;

pub use sluice_actors as actors;
pub use sluice_coordination as coordination;
