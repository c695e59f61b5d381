//! Choosing a record's partition (SPEC §1.1): an explicit partition, else a custom
//! [`Partitioner`], else murmur2 of the key — byte-compatible with the Java client's default
//! partitioner and librdkafka's `murmur2_random` — else round robin for keyless records.

use std::sync::atomic::{AtomicU32, Ordering};

/// Picks a partition for a record whose caller named none.
pub trait Partitioner: Send + Sync + std::fmt::Debug {
    /// A partition in `0..partitions` for a record of `topic` with `key` (serialized).
    /// `available` lists the partitions that have a leader now (never empty when called).
    fn partition(&self, topic: &str, key: Option<&[u8]>, partitions: i32, available: &[i32])
        -> i32;
}

/// Kafka's default: `toPositive(murmur2(key)) % partitions` for keyed records (over all
/// partitions, available or not, so a key always maps to the same one), round robin over
/// the available partitions for keyless ones.
#[derive(Debug, Default)]
pub struct DefaultPartitioner {
    counter: AtomicU32,
}

impl Partitioner for DefaultPartitioner {
    fn partition(
        &self,
        _topic: &str,
        key: Option<&[u8]>,
        partitions: i32,
        available: &[i32],
    ) -> i32 {
        match key {
            Some(key) => key_partition(key, partitions),
            None => {
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                if available.is_empty() {
                    (n % partitions.max(1) as u32) as i32
                } else {
                    available[n as usize % available.len()]
                }
            }
        }
    }
}

/// The partition of `key` among `partitions`: Java's `Utils.toPositive(Utils.murmur2(key))
/// % numPartitions`.
pub fn key_partition(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as i32) % partitions.max(1)
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`): 32-bit MurmurHash2 with
/// seed `0x9747b28c`, little-endian 4-byte blocks.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from the Java client's own test (`UtilsTest.testMurmur2`), as signed ints.
    #[test]
    fn murmur2_matches_kafka_utils() {
        let cases: [(&[u8], i32); 4] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input) as i32,
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }

    #[test]
    fn keyless_records_go_round_robin_over_available_partitions() {
        let p = DefaultPartitioner::default();
        let picks: Vec<i32> = (0..6).map(|_| p.partition("t", None, 4, &[1, 3])).collect();
        assert_eq!(picks, [1, 3, 1, 3, 1, 3]);
        // Keyed records ignore availability.
        assert_eq!(
            p.partition("t", Some(b"foobar"), 4, &[1]),
            key_partition(b"foobar", 4)
        );
    }
}
