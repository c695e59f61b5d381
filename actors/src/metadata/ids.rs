//! Random ids as Kafka makes them: topic ids and the cluster id are random version-4
//! UUIDs, printed in URL-safe base64 without padding (Kafka's `Uuid.toString`).
//!
//! The randomness comes from the standard library's `RandomState` (SipHash with keys
//! seeded from the OS once per thread and varied per call) over the clock and a counter:
//! unpredictable enough for ids and start indexes, with no extra dependency. Nothing here
//! is a secret.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A random 64-bit number.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// A random index below `n` (`n` > 0; 0 for `n` = 0).
pub fn random_index(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    // `n` is a broker count: the modulo bias is far below anything that matters here.
    (random_u64() % n as u64) as usize
}

/// A random version-4 UUID that Kafka would accept as a topic id: not all zeros, not
/// Kafka's reserved metadata topic id (`0…01`), and not one whose string form starts with
/// `-` (Kafka re-draws those so that ids never look like command-line flags).
pub fn random_uuid() -> [u8; 16] {
    loop {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&random_u64().to_be_bytes());
        bytes[8..].copy_from_slice(&random_u64().to_be_bytes());
        bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
        bytes[8] = (bytes[8] & 0x3f) | 0x80; // IETF variant
        let reserved = bytes[..15].iter().all(|b| *b == 0) && bytes[15] <= 1;
        if !reserved && !uuid_string(&bytes).starts_with('-') {
            return bytes;
        }
    }
}

/// Kafka's string form of a UUID: URL-safe base64 without padding (22 characters).
pub fn uuid_string(uuid: &[u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in uuid.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        // 3 input bytes make 4 characters; a final partial chunk of k bytes makes k + 1.
        for s in sextets.iter().take(chunk.len() + 1) {
            out.push(char::from(ALPHABET[*s as usize]));
        }
    }
    out
}

/// A new cluster id (Kafka: `Uuid.randomUuid().toString`).
pub fn random_cluster_id() -> String {
    uuid_string(&random_uuid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_print_as_kafka_prints_them() {
        // Kafka: new Uuid(0x0123456789abcdefL, 0xfedcba9876543210L).toString()
        let uuid = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
            0x32, 0x10,
        ];
        assert_eq!(uuid_string(&uuid), "ASNFZ4mrze_-3LqYdlQyEA");
        assert_eq!(uuid_string(&[0xff; 16]), "_____________________w");
    }

    #[test]
    fn random_ids_are_v4_and_distinct() {
        let a = random_uuid();
        let b = random_uuid();
        assert_ne!(a, b);
        assert_eq!(a[6] >> 4, 4);
        assert_eq!(a[8] >> 6, 2);
        assert_eq!(random_cluster_id().len(), 22);
        assert!((0..100).all(|_| random_index(3) < 3));
        assert_eq!(random_index(0), 0);
    }
}
