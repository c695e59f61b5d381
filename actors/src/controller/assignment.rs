//! Replica assignment: Kafka's rack-unaware algorithm
//! (`AdminUtils.assignReplicasToBrokersRackUnaware`), and the checks on a manual one.
//!
//! Over the brokers sorted by id, partition `p`'s first replica (its preferred leader) is
//! broker `(start_index + p) mod n`, so preferred leaders go round the brokers evenly. The
//! other replicas follow at distinct shifts `1 + (shift + j) mod (n - 1)` from the first,
//! `j = 0 .. rf - 1`, so a partition's replicas sit on distinct brokers; the shift grows by
//! one after every `n` partitions, so followers spread too. A new topic starts at a random
//! index with a random shift; added partitions continue from partition 0's first replica.

use std::collections::BTreeSet;

use crate::{Error, Result};

/// Where an assignment starts (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssignmentStart {
    /// Index (in the sorted broker list) of partition `first_partition`'s first replica
    /// minus `first_partition`.
    pub start_index: usize,
    /// The initial follower shift.
    pub replica_shift: usize,
    /// The first partition id to assign (0 for a new topic; the current count when adding
    /// partitions).
    pub first_partition: i32,
}

/// Assigns `partitions` partitions of `replication_factor` replicas over `brokers`
/// (deduplicated and sorted here). Returns the replica lists of partitions
/// `start.first_partition ..`.
pub fn assign_replicas(
    brokers: &[i32],
    partitions: i32,
    replication_factor: i16,
    start: AssignmentStart,
) -> Result<Vec<Vec<i32>>> {
    let brokers: Vec<i32> = brokers
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if partitions <= 0 {
        return Err(Error::InvalidRequest(
            "Number of partitions must be larger than 0.".into(),
        ));
    }
    if replication_factor <= 0 {
        return Err(Error::InvalidRequest(
            "Replication factor must be larger than 0.".into(),
        ));
    }
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    if rf > brokers.len() {
        return Err(Error::InvalidReplicationFactor {
            requested: i32::from(replication_factor),
            available: brokers.len(),
        });
    }
    let n = brokers.len();
    let mut shift = start.replica_shift;
    let mut out = Vec::with_capacity(usize::try_from(partitions).unwrap_or(0));
    for partition in start.first_partition..start.first_partition.saturating_add(partitions) {
        let p = usize::try_from(partition).unwrap_or(0);
        if p > 0 && p % n == 0 {
            shift += 1;
        }
        let first = (p + start.start_index) % n;
        let mut replicas = Vec::with_capacity(rf);
        replicas.push(brokers[first]);
        for j in 0..rf - 1 {
            // n >= rf >= 2 here, so n - 1 >= 1.
            let follower_shift = 1 + (shift + j) % (n - 1);
            replicas.push(brokers[(first + follower_shift) % n]);
        }
        out.push(replicas);
    }
    Ok(out)
}

/// Checks a manual assignment (partition `i`'s replicas at index `i`): at least one
/// partition, every partition with the same non-zero number of distinct replicas (equal
/// to `replication_factor` if given), every replica a live broker. Returns the
/// replication factor.
pub fn validate_manual(
    assignment: &[Vec<i32>],
    replication_factor: Option<usize>,
    live: &BTreeSet<i32>,
) -> Result<usize> {
    let invalid = |reason: String| Err(Error::InvalidRequest(reason));
    let Some(first) = assignment.first() else {
        return invalid("the replica assignment lists no partition".into());
    };
    let rf = replication_factor.unwrap_or(first.len());
    for (p, replicas) in assignment.iter().enumerate() {
        if replicas.is_empty() {
            return invalid(format!("partition {p} has an empty replica list"));
        }
        if replicas.len() != rf {
            return invalid(format!(
                "Inconsistent replication factor between partitions: partition {p} has {} \
                 replicas, expected {rf}",
                replicas.len()
            ));
        }
        if replicas.iter().collect::<BTreeSet<_>>().len() != replicas.len() {
            return invalid(format!(
                "Duplicate brokers in the replica assignment of partition {p}: {replicas:?}"
            ));
        }
        let unknown: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|b| !live.contains(b))
            .collect();
        if !unknown.is_empty() {
            return invalid(format!(
                "Unknown broker(s) {unknown:?} in the replica assignment of partition {p}"
            ));
        }
    }
    Ok(rf)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn start(start_index: usize, replica_shift: usize) -> AssignmentStart {
        AssignmentStart {
            start_index,
            replica_shift,
            first_partition: 0,
        }
    }

    #[test]
    fn matches_kafkas_rack_unaware_assignment() {
        // Kafka's AdminRackAwareTest / the algorithm's javadoc: 5 brokers, 10 partitions,
        // rf 3, fixed start index 0.
        let brokers = [0, 1, 2, 3, 4];
        let got = assign_replicas(&brokers, 10, 3, start(0, 0)).unwrap();
        let expected: Vec<Vec<i32>> = vec![
            vec![0, 1, 2],
            vec![1, 2, 3],
            vec![2, 3, 4],
            vec![3, 4, 0],
            vec![4, 0, 1],
            vec![0, 2, 3],
            vec![1, 3, 4],
            vec![2, 4, 0],
            vec![3, 0, 1],
            vec![4, 1, 2],
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn leaders_spread_and_replicas_are_distinct() {
        for n in 1..=7usize {
            let brokers: Vec<i32> = (0..n).map(|b| b as i32 * 10 + 1).collect();
            for rf in 1..=n {
                for s in 0..n {
                    let partitions = 3 * n as i32 + 1;
                    let got =
                        assign_replicas(&brokers, partitions, rf as i16, start(s, s)).unwrap();
                    let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
                    for replicas in &got {
                        assert_eq!(replicas.len(), rf);
                        let distinct: BTreeSet<_> = replicas.iter().collect();
                        assert_eq!(distinct.len(), rf, "{replicas:?}");
                        *leaders.entry(replicas[0]).or_default() += 1;
                    }
                    let (min, max) = (
                        leaders.values().min().copied().unwrap_or(0),
                        leaders.values().max().copied().unwrap_or(0),
                    );
                    assert_eq!(leaders.len(), n);
                    assert!(max - min <= 1, "{leaders:?}");
                }
            }
        }
    }

    #[test]
    fn bad_requests_are_refused() {
        assert!(matches!(
            assign_replicas(&[1, 2], 3, 3, start(0, 0)),
            Err(Error::InvalidReplicationFactor {
                requested: 3,
                available: 2
            })
        ));
        assert!(matches!(
            assign_replicas(&[1, 2], 0, 1, start(0, 0)),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            assign_replicas(&[1, 2], 1, 0, start(0, 0)),
            Err(Error::InvalidRequest(_))
        ));
        let live: BTreeSet<i32> = [1, 2, 3].into();
        assert_eq!(
            validate_manual(&[vec![1, 2], vec![3, 1]], None, &live).unwrap(),
            2
        );
        for bad in [
            vec![],
            vec![vec![1, 2], vec![3]],
            vec![vec![1, 1]],
            vec![vec![1, 9]],
            vec![vec![]],
        ] {
            assert!(validate_manual(&bad, None, &live).is_err(), "{bad:?}");
        }
        assert!(validate_manual(&[vec![1]], Some(2), &live).is_err());
    }
}
