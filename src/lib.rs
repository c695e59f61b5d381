//! Sluice: a Kafka-compatible, replicated, partitioned log broker.
//!
//! The network listener, the Kafka API handlers, configuration loading and the client
//! live in this crate; the actors and the log engine are in [`sluice_actors`], cluster
//! coordination in [`sluice_coordination`].

//!
//! Features: `broker` (default) builds everything; `client` alone builds the client and
//! the wire codec without actix, sled or a coordination service.

#[cfg(feature = "broker")]
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "broker")]
pub mod config;
#[cfg(feature = "broker")]
pub mod connection;
#[cfg(feature = "broker")]
pub mod handlers;
#[cfg(feature = "broker")]
pub mod logging;
#[cfg(feature = "broker")]
pub mod node;
pub mod protocol;
#[cfg(feature = "broker")]
pub mod server;
#[cfg(feature = "broker")]
pub mod tools;

pub use sluice_actors as actors;
#[cfg(feature = "broker")]
pub use sluice_coordination as coordination;
