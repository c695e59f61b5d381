//! Cluster coordination for Sluice: controller election, sessions and ephemeral
//! registrations, versioned keys and prefix watches, behind one trait with three
//! backends (embedded, ZooKeeper, etcd).
//!
//! This crate knows nothing about Kafka. The trait and its backends are the subject of
//! the coordination issue and are not built yet; nothing here is advertised as working.
