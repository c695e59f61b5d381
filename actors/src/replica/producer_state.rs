//! [`ProducerStateManager`]: the idempotent-producer state of one partition — per
//! producer id, its epoch and the metadata of its last [`NUM_BATCHES_TO_RETAIN`] batches —
//! used to fence zombie producers, reject sequence gaps and answer a retried batch with the
//! offsets of its original append.
//!
//! # Rules (Kafka 3.x `ProducerStateManager` / `ProducerAppendInfo`, client appends)
//!
//! Checked per batch with a producer id (`producer_id >= 0`), in this order:
//! 1. **Duplicate**: a batch with the producer's current epoch whose first and last
//!    sequence equal those of one of its retained batches is a retry: the request appends
//!    nothing and answers with that batch's original base offset.
//! 2. **Epoch**: an epoch below the producer's current one → `InvalidProducerEpoch`
//!    (Kafka ≥ 2.7 answers INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED, on produce).
//! 3. **Sequence**: a higher epoch must start at sequence 0; the same epoch must continue
//!    at `last sequence + 1` (wrapping from `i32::MAX` to 0) → else `OutOfOrderSequence`.
//! 4. **Unknown producer**: no state (never seen, expired, or every batch of it removed by
//!    retention or DeleteRecords) accepts any sequence. This is Kafka's behaviour since
//!    KIP-360 (2.5): the broker no longer answers UNKNOWN_PRODUCER_ID on produce, because
//!    the producer could not tell a lost state from a real gap and would have to reset.
//!
//! A request may carry several batches; later batches are checked against the state the
//! earlier ones would leave. State changes only after the log accepted the append.
//! Producers idle for `producer.id.expiration.ms` are forgotten
//! ([`ProducerStateManager::remove_expired`]).
//!
//! Not thread-safe: owned by the partition replica.
//!
//! Crash behaviour: the partition writes the state to `<offset>.snapshot` files when a
//! segment rolls and at clean shutdown (format and lifecycle in [`super::snapshot`]).
//! [`ProducerStateManager::load`] starts from the latest readable snapshot at or below the
//! log end offset (deleting those above it) and replays the batch headers from its offset
//! on — one 61-byte read per batch, no record bytes; without a usable snapshot it scans
//! every segment — so a retry that arrives after a restart is still recognised.

use std::collections::{HashMap, VecDeque};

use crate::log::batch::BatchHeader;
use crate::log::{Log, LogError};
use crate::Error;

use super::snapshot;

/// Batches remembered per producer (Kafka's `NUM_BATCHES_TO_RETAIN`; the producer has at
/// most `max.in.flight.requests.per.connection` = 5 in flight when idempotent).
pub(crate) const NUM_BATCHES_TO_RETAIN: usize = 5;

/// What is remembered of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    /// The broker's clock for `LogAppendTime` topics, else -1 (returned to a retry).
    pub(crate) log_append_time: i64,
}

/// One producer id's state.
#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: i16,
    /// Oldest first; at most [`NUM_BATCHES_TO_RETAIN`], all of `epoch`.
    batches: VecDeque<BatchMetadata>,
    /// Broker clock of the last append (or of the load), for expiration.
    last_update_ms: i64,
}

impl ProducerEntry {
    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }
    fn last_offset(&self) -> Option<i64> {
        self.batches.back().map(|b| b.last_offset)
    }
    fn find_duplicate(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        if epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }
}

/// The idempotent-producer state of one partition. See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
}

/// `seq` advanced by `delta`, wrapping past `i32::MAX` to 0 as Kafka's
/// `DefaultRecordBatch.incrementSequence` does.
pub(crate) fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

/// Whether `next` directly follows `last`.
fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (next == 0 && last == i32::MAX)
}

/// The sequence of a batch's last record.
fn last_sequence(h: &BatchHeader) -> i32 {
    increment_sequence(h.base_sequence, h.last_offset_delta)
}

impl ProducerStateManager {
    /// Rebuilds the state of `log` from its batch headers (see the module's crash
    /// behaviour). Reads files: call it off the arbiter threads.
    pub(crate) fn load(log: &Log, now_ms: i64) -> Result<ProducerStateManager, LogError> {
        Ok(Self::load_counting(log, now_ms)?.0)
    }

    /// [`load`](Self::load), also returning how many batch headers it read.
    pub(crate) fn load_counting(
        log: &Log,
        now_ms: i64,
    ) -> Result<(ProducerStateManager, usize), LogError> {
        let dir = log.dir();
        let (log_start, log_end) = (log.log_start_offset(), log.log_end_offset());
        let removed = snapshot::delete_above(dir, log_end)?;
        if removed > 0 {
            tracing::info!(dir = %dir.display(), removed, log_end, "deleted producer-state snapshots above the log end offset");
        }
        let (mut state, from) = Self::latest_snapshot(log, now_ms)?;
        let mut headers_read = 0usize;
        let mut segments = log.segments().peekable();
        while let Some(segment) = segments.next() {
            // Segments wholly below the next one's base are skipped without being read
            // (their files stay closed).
            if segments
                .peek()
                .is_some_and(|next| next.base_offset() <= from)
            {
                continue;
            }
            // The snapshot's offset is a batch boundary: start at the batch holding it.
            let mut position = if from > segment.base_offset() {
                match segment.translate_offset(from)? {
                    Some((_, p)) => p,
                    // Nothing at or after `from` here.
                    None => continue,
                }
            } else {
                0
            };
            while let Some(h) = segment.read_header_at(position)? {
                position += h.size() as u64;
                headers_read += 1;
                if h.base_offset < from
                    || !h.has_producer_id()
                    || h.is_control()
                    || h.base_sequence < 0
                    || h.last_offset() < log_start
                {
                    continue;
                }
                let log_append_time = if h.is_log_append_time() {
                    h.max_timestamp
                } else {
                    -1
                };
                state.update(&h, log_append_time, now_ms);
            }
        }
        state.truncate_head(log_start);
        Ok((state, headers_read))
    }

    /// The latest readable snapshot at or below the log end offset with its offset, else
    /// an empty state from offset `i64::MIN` (scan everything).
    fn latest_snapshot(log: &Log, now_ms: i64) -> Result<(ProducerStateManager, i64), LogError> {
        let dir = log.dir();
        for offset in snapshot::list(dir)?.into_iter().rev() {
            if offset > log.log_end_offset() {
                continue;
            }
            let Some(bytes) = snapshot::read(dir, offset)? else {
                continue;
            };
            match Self::decode_snapshot(&bytes, now_ms) {
                Ok(state) => {
                    tracing::debug!(dir = %dir.display(), offset, producers = state.len(), "loaded producer-state snapshot");
                    return Ok((state, offset));
                }
                Err(reason) => {
                    tracing::warn!(dir = %dir.display(), offset, %reason, "ignoring unreadable producer-state snapshot")
                }
            }
        }
        Ok((ProducerStateManager::default(), i64::MIN))
    }

    /// The state as a snapshot file's bytes ([`super::snapshot`] describes the format).
    pub(crate) fn encode_snapshot(&self) -> Vec<u8> {
        let mut pids: Vec<i64> = self.producers.keys().copied().collect();
        pids.sort_unstable();
        let mut body = Vec::with_capacity(4 + pids.len() * (11 + 32 * NUM_BATCHES_TO_RETAIN));
        body.extend_from_slice(&(pids.len() as u32).to_be_bytes());
        for pid in pids {
            let Some(e) = self.producers.get(&pid) else {
                continue;
            };
            body.extend_from_slice(&pid.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.push(e.batches.len() as u8);
            for b in &e.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.base_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
                body.extend_from_slice(&b.log_append_time.to_be_bytes());
            }
        }
        snapshot::frame(&body)
    }

    /// Parses [`encode_snapshot`](Self::encode_snapshot)'s bytes; every producer's last
    /// update is `now_ms`. `Err`: why the snapshot cannot be used.
    pub(crate) fn decode_snapshot(
        bytes: &[u8],
        now_ms: i64,
    ) -> Result<ProducerStateManager, String> {
        let mut r = Reader(snapshot::unframe(bytes)?);
        let count = r.u32()?;
        let mut producers = HashMap::new();
        for _ in 0..count {
            let pid = r.i64()?;
            let epoch = r.i16()?;
            let n = usize::from(r.u8()?);
            if n == 0 || n > NUM_BATCHES_TO_RETAIN {
                return Err(format!("producer {pid} has {n} batches"));
            }
            let mut batches = VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN);
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    base_offset: r.i64()?,
                    last_offset: r.i64()?,
                    log_append_time: r.i64()?,
                });
            }
            let entry = ProducerEntry {
                epoch,
                batches,
                last_update_ms: now_ms,
            };
            if producers.insert(pid, entry).is_some() {
                return Err(format!("producer {pid} appears twice"));
            }
        }
        if !r.0.is_empty() {
            return Err(format!("{} trailing bytes", r.0.len()));
        }
        Ok(ProducerStateManager { producers })
    }

    /// Number of producers with state.
    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }

    /// Checks the batches of one produce request (headers as received) against the rules
    /// of the module documentation. `Ok(Some(batch))`: the request is a retry of `batch`
    /// and must not be appended.
    pub(crate) fn check_append(
        &self,
        batches: &[BatchHeader],
    ) -> Result<Option<BatchMetadata>, Error> {
        // (producer id, epoch, last sequence) of batches earlier in this request.
        let mut pending: Vec<(i64, i16, i32)> = Vec::new();
        for h in batches.iter().filter(|h| h.has_producer_id()) {
            let pid = h.producer_id;
            if h.base_sequence < 0 {
                return Err(LogError::InvalidRecord(format!(
                    "batch of producer {pid} has no sequence number ({})",
                    h.base_sequence
                ))
                .into());
            }
            let last_seq = last_sequence(h);
            let committed = self.producers.get(&pid);
            if let Some(dup) = committed
                .and_then(|e| e.find_duplicate(h.producer_epoch, h.base_sequence, last_seq))
            {
                return Ok(Some(dup));
            }
            let current = match pending.iter().rev().find(|p| p.0 == pid) {
                Some(&(_, epoch, seq)) => Some((epoch, Some(seq))),
                None => committed.map(|e| (e.epoch, e.last_seq())),
            };
            check_epoch_and_sequence(pid, h.producer_epoch, h.base_sequence, current)?;
            pending.push((pid, h.producer_epoch, last_seq));
        }
        Ok(None)
    }

    /// Records the batches of an accepted append (headers with their assigned offsets).
    pub(crate) fn on_appended(
        &mut self,
        batches: &[BatchHeader],
        log_append_time: i64,
        now_ms: i64,
    ) {
        for h in batches.iter().filter(|h| h.has_producer_id()) {
            self.update(h, log_append_time, now_ms);
        }
    }

    fn update(&mut self, h: &BatchHeader, log_append_time: i64, now_ms: i64) {
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::with_capacity(NUM_BATCHES_TO_RETAIN),
                last_update_ms: now_ms,
            });
        if entry.epoch != h.producer_epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: h.base_sequence,
            last_seq: last_sequence(h),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            log_append_time,
        });
        while entry.batches.len() > NUM_BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
        entry.last_update_ms = now_ms;
    }

    /// Forgets producers idle for at least `expiration_ms` (`producer.id.expiration.ms`).
    /// Returns how many went.
    pub(crate) fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_update_ms) < expiration_ms);
        before - self.producers.len()
    }

    /// The log start offset moved to `log_start_offset` (retention, DeleteRecords):
    /// forgets producers none of whose batches remain. Returns how many went.
    pub(crate) fn truncate_head(&mut self, log_start_offset: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| e.last_offset().is_some_and(|o| o >= log_start_offset));
        before - self.producers.len()
    }
}

/// Big-endian reads off the front of a snapshot body.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| "truncated snapshot body".to_string())?;
        self.0 = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take::<1>()?[0])
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.take()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.take()?))
    }
}

/// Rules 2–4 of the module documentation. `current`: the producer's epoch and last
/// sequence, `None` for an unknown producer.
fn check_epoch_and_sequence(
    producer_id: i64,
    epoch: i16,
    first_seq: i32,
    current: Option<(i16, Option<i32>)>,
) -> Result<(), Error> {
    let Some((current_epoch, last_seq)) = current else {
        return Ok(());
    };
    if epoch < current_epoch {
        return Err(Error::InvalidProducerEpoch {
            producer_id,
            epoch,
            current: current_epoch,
        });
    }
    if epoch > current_epoch {
        if first_seq != 0 {
            return Err(Error::OutOfOrderSequence {
                producer_id,
                expected: 0,
                got: first_seq,
            });
        }
        return Ok(());
    }
    match last_seq {
        Some(last) if !in_sequence(last, first_seq) => Err(Error::OutOfOrderSequence {
            producer_id,
            expected: increment_sequence(last, 1),
            got: first_seq,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: records,
        }
    }

    fn append(state: &mut ProducerStateManager, h: BatchHeader) -> Option<BatchMetadata> {
        let dup = state.check_append(&[h]).unwrap();
        if dup.is_none() {
            state.on_appended(&[h], -1, 0);
        }
        dup
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert!(in_sequence(i32::MAX, 0));
        assert!(!in_sequence(i32::MAX, 1));
    }

    #[test]
    fn unknown_producer_accepts_any_sequence() {
        let state = ProducerStateManager::default();
        assert!(state
            .check_append(&[header(7, 0, 42, 1, 0)])
            .unwrap()
            .is_none());
    }

    #[test]
    fn retries_of_the_last_five_batches_are_duplicates() {
        let mut state = ProducerStateManager::default();
        for i in 0..7 {
            assert!(append(&mut state, header(1, 0, i * 2, 2, i as i64 * 2)).is_none());
        }
        // Batches 2..=6 are retained; 0 and 1 have aged out.
        let dup = state
            .check_append(&[header(1, 0, 4, 2, 0)])
            .unwrap()
            .unwrap();
        assert_eq!((dup.base_offset, dup.last_offset), (4, 5));
        assert!(matches!(
            state.check_append(&[header(1, 0, 0, 2, 0)]),
            Err(Error::OutOfOrderSequence {
                expected: 14,
                got: 0,
                ..
            })
        ));
    }

    #[test]
    fn epochs_fence_and_restart_sequences() {
        let mut state = ProducerStateManager::default();
        append(&mut state, header(1, 3, 0, 1, 0));
        assert!(matches!(
            state.check_append(&[header(1, 2, 1, 1, 0)]),
            Err(Error::InvalidProducerEpoch {
                epoch: 2,
                current: 3,
                ..
            })
        ));
        assert!(matches!(
            state.check_append(&[header(1, 4, 5, 1, 0)]),
            Err(Error::OutOfOrderSequence { expected: 0, .. })
        ));
        assert!(append(&mut state, header(1, 4, 0, 1, 1)).is_none());
        // The old epoch's batch is no longer a duplicate, and is fenced.
        assert!(state.check_append(&[header(1, 3, 0, 1, 0)]).is_err());
    }

    #[test]
    fn later_batches_of_a_request_follow_earlier_ones() {
        let state = ProducerStateManager::default();
        let ok = [header(1, 0, 0, 2, 0), header(1, 0, 2, 1, 2)];
        assert!(state.check_append(&ok).unwrap().is_none());
        let gap = [header(1, 0, 0, 2, 0), header(1, 0, 3, 1, 2)];
        assert!(matches!(
            state.check_append(&gap),
            Err(Error::OutOfOrderSequence {
                expected: 2,
                got: 3,
                ..
            })
        ));
    }

    #[test]
    fn snapshots_round_trip_and_reject_corruption() {
        let mut state = ProducerStateManager::default();
        for i in 0..7 {
            append(&mut state, header(1, 2, i, 1, i as i64));
        }
        append(&mut state, header(9, 0, 40, 3, 7));
        let bytes = state.encode_snapshot();
        let loaded = ProducerStateManager::decode_snapshot(&bytes, 123).unwrap();
        assert_eq!(loaded.len(), 2);
        let e = &loaded.producers[&1];
        assert_eq!((e.epoch, e.batches.len(), e.last_update_ms), (2, 5, 123));
        assert_eq!(e.batches, state.producers[&1].batches);
        assert_eq!(loaded.producers[&9].batches, state.producers[&9].batches);
        assert_eq!(
            ProducerStateManager::default().encode_snapshot().len(),
            snapshot::HEADER_SIZE + 4
        );
        // Any flipped byte or a torn tail is detected.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(
                ProducerStateManager::decode_snapshot(&bad, 0).is_err(),
                "byte {i}"
            );
        }
        assert!(ProducerStateManager::decode_snapshot(&bytes[..bytes.len() - 8], 0).is_err());
    }

    /// A leader-appended batch of `records` records from producer `pid`.
    fn idempotent(pid: i64, seq: i32, records: i32) -> Vec<u8> {
        use crate::log::batch::{build_batch, encode_record, BatchSpec};
        let mut encoded = Vec::new();
        for i in 0..records {
            encode_record(&mut encoded, i, 0, Some(b"k"), Some(b"v"));
        }
        let spec = BatchSpec {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 1_000,
            max_timestamp: 1_000,
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: seq,
        };
        build_batch(&spec, &encoded, records).unwrap()
    }

    #[test]
    fn load_replays_only_the_batches_after_the_latest_good_snapshot() {
        use crate::log::config::LogConfig;
        use crate::log::log::LogOpenOptions;
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 200,
            segment_index_bytes: 4096,
            ..LogConfig::default()
        };
        let mut log = Log::open(dir.path(), config, LogOpenOptions::default()).unwrap();
        let mut state = ProducerStateManager::default();
        let mut snapshot_at = Vec::new();
        for seq in 0..12 {
            let segments = log.segment_count();
            let records = idempotent(5, seq, 1);
            let info = log.append_as_leader(&records, 0, 1_000).unwrap();
            if log.segment_count() > segments {
                let base = *log.segment_bases().last().unwrap();
                snapshot::write(dir.path(), base, &state.encode_snapshot()).unwrap();
                snapshot_at.push(base);
            }
            // `records` is written with its offset patched in, not rewritten.
            let mut h = BatchHeader::parse(&records).unwrap();
            h.base_offset = info.first_offset;
            state.on_appended(&[h], -1, 1_000);
        }
        assert!(snapshot_at.len() >= 3, "{snapshot_at:?}");
        let kept = snapshot::list(dir.path()).unwrap();
        assert_eq!(kept, snapshot_at[snapshot_at.len() - 2..]);
        let (latest, older) = (kept[1], kept[0]);
        let leo = log.log_end_offset();

        let (loaded, read) = ProducerStateManager::load_counting(&log, 0).unwrap();
        assert_eq!(loaded.producers[&5].batches, state.producers[&5].batches);
        assert_eq!(read as i64, leo - latest, "only the tail is read");

        // A corrupt latest snapshot: the older one is used.
        let path = snapshot::snapshot_path(dir.path(), latest);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (loaded, read) = ProducerStateManager::load_counting(&log, 0).unwrap();
        assert_eq!(loaded.producers[&5].batches, state.producers[&5].batches);
        assert_eq!(read as i64, leo - older);

        // Both unreadable: a full scan.
        std::fs::write(snapshot::snapshot_path(dir.path(), older), b"torn").unwrap();
        let (loaded, read) = ProducerStateManager::load_counting(&log, 0).unwrap();
        assert_eq!(loaded.producers[&5].batches, state.producers[&5].batches);
        assert_eq!(read as i64, leo);

        // Truncation below a snapshot deletes it at the next load.
        log.truncate_to(older, 1_000).unwrap();
        let (loaded, _) = ProducerStateManager::load_counting(&log, 0).unwrap();
        assert_eq!(snapshot::list(dir.path()).unwrap(), vec![older]);
        assert_eq!(
            loaded.producers[&5].last_offset(),
            Some(older - 1),
            "state ends at the new log end"
        );
    }

    #[test]
    fn expiry_and_head_truncation_forget_producers() {
        let mut state = ProducerStateManager::default();
        state.on_appended(&[header(1, 0, 0, 1, 0)], -1, 1_000);
        state.on_appended(&[header(2, 0, 0, 1, 10)], -1, 5_000);
        assert_eq!(state.remove_expired(6_000, 5_000), 1);
        assert_eq!(state.len(), 1);
        assert_eq!(state.truncate_head(11), 1);
        assert_eq!(state.len(), 0);
        // Forgotten: any sequence goes again.
        assert!(state
            .check_append(&[header(2, 0, 9, 1, 0)])
            .unwrap()
            .is_none());
    }
}
