//! Partition leader election and ISR maintenance as brokers come and go (Kafka's
//! `PartitionLeaderElectionAlgorithms` and the controller's offline-replica handling).
//! Pure functions: the controller reads states, calls these, and writes the results with
//! a compare-and-set.
//!
//! - A leader that is alive stays; dead replicas leave the ISR (no epoch bump: the
//!   leader did not change).
//! - A dead or missing leader is replaced by the first replica in assignment order that
//!   is alive and in the ISR (clean election). Only if there is none and
//!   `unclean.leader.election.enable` is set does the first live replica outside the ISR
//!   take over, with itself as the only ISR member (data loss possible). Otherwise the
//!   partition goes offline (leader -1).
//! - Every leader change bumps the leader epoch.
//! - The ISR never becomes empty: when its last live member dies, the ISR keeps the last
//!   leader (as Kafka does), so that broker can come back as a clean leader.

use std::collections::BTreeSet;

use crate::metadata::records::{PartitionState, NO_LEADER};

/// How a new state came about, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// The leader stayed; dead replicas left the ISR.
    IsrShrink,
    /// A new leader from the ISR.
    Clean,
    /// A new leader from outside the ISR: records may be lost.
    Unclean,
    /// No replica can lead: the partition is offline.
    Offline,
}

/// The partition's next state given the live brokers, or `None` if nothing changes.
/// `controller_epoch` is written into a changed state.
pub fn next_state(
    current: &PartitionState,
    replicas: &[i32],
    live: &BTreeSet<i32>,
    unclean_allowed: bool,
    controller_epoch: i64,
) -> Option<(PartitionState, Election)> {
    let alive = |b: &i32| live.contains(b);
    let live_isr: Vec<i32> = current.isr.iter().copied().filter(alive).collect();
    let leader_alive = current.leader != NO_LEADER && alive(&current.leader);
    let with = |leader: i32, leader_epoch: i32, isr: Vec<i32>| PartitionState {
        leader,
        leader_epoch,
        isr,
        controller_epoch,
    };
    if leader_alive {
        if live_isr == current.isr || live_isr.is_empty() {
            return None;
        }
        let next = with(current.leader, current.leader_epoch, live_isr);
        return Some((next, Election::IsrShrink));
    }
    let bumped = current.leader_epoch.saturating_add(1);
    if let Some(leader) = replicas
        .iter()
        .copied()
        .find(|r| alive(r) && current.isr.contains(r))
    {
        return Some((with(leader, bumped, live_isr), Election::Clean));
    }
    if unclean_allowed {
        if let Some(leader) = replicas.iter().copied().find(alive) {
            return Some((with(leader, bumped, vec![leader]), Election::Unclean));
        }
    }
    // Offline. Keep one ISR member — the last leader if it was one — for a clean return.
    let isr = if current.leader != NO_LEADER && current.isr.contains(&current.leader) {
        vec![current.leader]
    } else {
        current.isr.clone()
    };
    if current.leader == NO_LEADER && isr == current.isr {
        return None;
    }
    let epoch = if current.leader == NO_LEADER {
        current.leader_epoch
    } else {
        bumped
    };
    Some((with(NO_LEADER, epoch, isr), Election::Offline))
}

/// The first state of a new partition: the live replicas are the ISR, the first of them
/// leads. If none is alive the partition starts offline with every replica in the ISR
/// (all are equally empty), so the first to come back leads cleanly.
pub fn initial_state(
    replicas: &[i32],
    live: &BTreeSet<i32>,
    controller_epoch: i64,
) -> PartitionState {
    let isr: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|r| live.contains(r))
        .collect();
    match isr.first() {
        Some(&leader) => PartitionState {
            leader,
            leader_epoch: 0,
            isr,
            controller_epoch,
        },
        None => PartitionState {
            leader: NO_LEADER,
            leader_epoch: 0,
            isr: replicas.to_vec(),
            controller_epoch,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(leader: i32, epoch: i32, isr: &[i32]) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch: epoch,
            isr: isr.to_vec(),
            controller_epoch: 1,
        }
    }

    fn live(ids: &[i32]) -> BTreeSet<i32> {
        ids.iter().copied().collect()
    }

    #[test]
    fn dead_leader_is_replaced_from_the_isr_in_assignment_order() {
        let s = state(1, 4, &[1, 3, 2]);
        let (next, how) = next_state(&s, &[1, 2, 3], &live(&[2, 3]), false, 9).unwrap();
        assert_eq!(how, Election::Clean);
        // Replica 2 comes before 3 in the assignment, whatever the ISR's order.
        assert_eq!(next, state_with_epoch(2, 5, &[3, 2], 9));
    }

    fn state_with_epoch(leader: i32, epoch: i32, isr: &[i32], ce: i64) -> PartitionState {
        PartitionState {
            controller_epoch: ce,
            ..state(leader, epoch, isr)
        }
    }

    #[test]
    fn a_live_leader_stays_and_dead_followers_leave_the_isr() {
        let s = state(1, 4, &[1, 2, 3]);
        let (next, how) = next_state(&s, &[1, 2, 3], &live(&[1, 3]), false, 9).unwrap();
        assert_eq!(how, Election::IsrShrink);
        assert_eq!(next, state_with_epoch(1, 4, &[1, 3], 9));
        assert_eq!(
            next_state(&s, &[1, 2, 3], &live(&[1, 2, 3]), false, 9),
            None
        );
    }

    #[test]
    fn out_of_sync_replicas_lead_only_when_unclean_election_is_enabled() {
        // The ISR is {1}; 1 dies; 2 is alive but out of sync.
        let s = state(1, 4, &[1]);
        let (offline, how) = next_state(&s, &[1, 2], &live(&[2]), false, 9).unwrap();
        assert_eq!(how, Election::Offline);
        assert_eq!(offline, state_with_epoch(NO_LEADER, 5, &[1], 9));
        // Already offline: nothing more to write until something changes.
        assert_eq!(next_state(&offline, &[1, 2], &live(&[2]), false, 9), None);
        // 1 comes back: it leads again, cleanly.
        let (back, how) = next_state(&offline, &[1, 2], &live(&[1, 2]), false, 9).unwrap();
        assert_eq!(how, Election::Clean);
        assert_eq!(back, state_with_epoch(1, 6, &[1], 9));

        let (unclean, how) = next_state(&s, &[1, 2], &live(&[2]), true, 9).unwrap();
        assert_eq!(how, Election::Unclean);
        assert_eq!(unclean, state_with_epoch(2, 5, &[2], 9));
    }

    #[test]
    fn new_partitions_start_with_the_live_replicas() {
        assert_eq!(
            initial_state(&[3, 1, 2], &live(&[1, 2, 3]), 7),
            state_with_epoch(3, 0, &[3, 1, 2], 7)
        );
        assert_eq!(
            initial_state(&[3, 1], &live(&[1]), 7),
            state_with_epoch(1, 0, &[1], 7)
        );
        assert_eq!(
            initial_state(&[3, 1], &live(&[]), 7),
            state_with_epoch(NO_LEADER, 0, &[3, 1], 7)
        );
    }
}
