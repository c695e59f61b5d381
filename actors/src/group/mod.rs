//! Consumer groups: a [`GroupCoordinator`] actor per `__consumer_offsets` partition this
//! broker leads, owning its groups' state machines, members, generations, heartbeat
//! deadlines and committed offsets; [`Groups`], the shared handle the network handlers use
//! to find a group's coordinator.
//!
//! Where offsets live: every commit and every group-metadata change is appended to the
//! group's `__consumer_offsets` partition (Kafka's record formats, see `records.rs`) — the
//! replicated, compacted source of truth — and answered once that append is acknowledged
//! as an acks=all produce would be. sled (`<data_dir>/sled`) holds the materialised view
//! and the log offset it has applied; a coordinator starting up loads from sled and catches
//! up from the log after that offset.

mod config;
mod coordinator;
mod error;
mod manager;
pub mod messages;
pub mod records;
mod state;

pub use config::{GroupConfig, DEFAULT_GROUP_MAX_SIZE, OFFSETS_TOPIC};
pub use coordinator::GroupCoordinator;
pub use error::{GroupError, StorageError};
pub use manager::Groups;
pub use state::GroupState;

/// Kafka's `Utils.abs(groupId.hashCode()) % partitions`: Java's `String.hashCode` over the
/// UTF-16 code units, and `Utils.abs`, which maps `i32::MIN` to 0 (Rust's `abs` would
/// overflow). `partitions` must be positive.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_group_partition_arithmetic() {
        // Java: "polygenelubricants".hashCode() == Integer.MIN_VALUE → Utils.abs → 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // Java: "my-group".hashCode() == -1_906_497_762 → abs → 1906497762 % 50 == 12.
        assert_eq!(partition_for("my-group", 50), 12);
        // Java: "test-group-1".hashCode() == 2_060_176_936 → % 50 == 36.
        assert_eq!(partition_for("test-group-1", 50), 36);
        // Characters outside the BMP count as two UTF-16 units, as in Java.
        assert_eq!(partition_for("\u{1F600}", 1_000_000), {
            let h = (0xD83Di32).wrapping_mul(31).wrapping_add(0xDE00);
            h % 1_000_000
        });
        assert_eq!(partition_for("", 50), 0);
    }
}
