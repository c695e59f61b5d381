//! Compaction: latest value per key, tombstones and their delete horizon, compressed
//! batches, producer state, crash safety of the segment swap, and the cleaner switch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use sluice_actors::log::batch::{self, AppendOrigin, BatchSpec, ValidationOptions};
use sluice_actors::log::cleaner::{self, CleanerConfig};
use sluice_actors::log::compression::Compression;
use sluice_actors::log::config::{CleanupPolicy, LogConfig};
use sluice_actors::log::log::LogOpenOptions;
use sluice_actors::log::Log;

const T0: i64 = 1_700_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: i64,
}

fn compact_config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        segment_bytes: 600,
        delete_retention_ms: 10_000,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(
        dir,
        config,
        LogOpenOptions {
            now_ms: T0,
            ..Default::default()
        },
    )
    .unwrap()
}

fn append(log: &mut Log, codec: Compression, records: &[(&str, Option<&str>)]) -> i64 {
    let recs: Vec<batch::KeyValue<'_>> = records
        .iter()
        .map(|(k, v)| (Some(k.as_bytes()), v.map(str::as_bytes)))
        .collect();
    let b = batch::simple_batch(codec, T0, &recs).unwrap();
    log.append_as_leader(&b, 0, T0).unwrap().first_offset
}

/// Every record the log serves, with the codec of its batch, read through `Log::read`.
fn records_with_codecs(log: &Log) -> Vec<(Rec, Compression)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let opts = ValidationOptions {
        origin: AppendOrigin::Replication,
        max_batch_bytes: usize::MAX,
        require_keys: false,
        max_decompressed_bytes: 1 << 26,
    };
    while offset < log.log_end_offset() {
        let info = log.read(offset, 1 << 30, None, true).unwrap();
        let Some(slice) = info.slice else { break };
        let bytes = slice.read_to_vec().unwrap();
        for b in batch::validate_batches(&bytes, &opts).unwrap() {
            let h = b.header;
            let raw = &bytes[b.position..b.position + h.size()];
            let payload = batch::records_payload(raw, &h, 1 << 26).unwrap();
            let mut it = batch::RecordIter::new(&payload, h.record_count);
            while let Some(r) = it.next_record().unwrap() {
                let rec = Rec {
                    offset: h.base_offset + r.offset_delta as i64,
                    key: r.key.map(<[u8]>::to_vec),
                    value: r.value.map(<[u8]>::to_vec),
                    timestamp: h.base_timestamp + r.timestamp_delta,
                };
                if rec.offset >= offset {
                    out.push((rec, h.compression().unwrap()));
                }
            }
            offset = h.next_offset();
        }
    }
    out
}

fn records(log: &Log) -> Vec<Rec> {
    records_with_codecs(log)
        .into_iter()
        .map(|(r, _)| r)
        .collect()
}

/// Writes `rounds` values for each of `keys` keys, one record per batch, then rolls so
/// that everything is in non-active segments.
fn fill(
    log: &mut Log,
    codec: Compression,
    keys: usize,
    rounds: usize,
) -> BTreeMap<String, (i64, String)> {
    let mut latest = BTreeMap::new();
    for round in 0..rounds {
        for k in 0..keys {
            let (key, value) = (format!("k{k}"), format!("v{round}-{k}"));
            let offset = append(log, codec, &[(&key, Some(&value))]);
            latest.insert(key, (offset, value));
        }
    }
    log.roll(T0).unwrap();
    latest
}

#[test]
fn keeps_the_latest_value_per_key_at_its_original_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config());
    let latest = fill(&mut log, Compression::None, 5, 6);
    // A duplicate in the active segment must survive cleaning untouched.
    let active_offset = append(&mut log, Compression::None, &[("k0", Some("active"))]);
    let before = records(&log);
    assert!(log.segment_count() > 3, "the test needs several segments");

    let result = clean_to_end(&mut log, &CleanerConfig::default(), 0, T0);
    assert!(result.stats.segments_cleaned > 0);
    assert!(result.stats.records_removed > 0);

    let after = records(&log);
    let cleaned: Vec<&Rec> = after.iter().filter(|r| r.offset < active_offset).collect();
    assert_eq!(
        cleaned.len(),
        latest.len(),
        "one record per key below the active segment"
    );
    for r in &cleaned {
        let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
        let (offset, value) = &latest[&key];
        assert_eq!(r.offset, *offset, "offsets are preserved");
        assert_eq!(r.value.as_deref(), Some(value.as_bytes()));
        // The record is exactly what was there before at that offset.
        assert!(before.contains(r));
    }
    let active: Vec<&Rec> = after.iter().filter(|r| r.offset >= active_offset).collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].value.as_deref(), Some(&b"active"[..]));
    assert_eq!(
        result.first_dirty_offset, active_offset,
        "cleaned up to the active segment"
    );

    // Offsets past the gaps still read; the log end is unchanged.
    assert_eq!(log.log_end_offset(), active_offset + 1);
    drop(log);
    let log = open(dir.path(), compact_config());
    assert_eq!(records(&log), after, "the cleaned log survives a reopen");
}

#[test]
fn tombstones_survive_delete_retention_then_go() {
    let dir = tempfile::tempdir().unwrap();
    let config = compact_config();
    let mut log = open(dir.path(), config.clone());
    fill(&mut log, Compression::None, 3, 2);
    let tomb = append(&mut log, Compression::None, &[("k1", None)]);
    log.roll(T0).unwrap();
    append(&mut log, Compression::None, &[("k2", Some("later"))]);

    let c = CleanerConfig::default();
    let first = clean_to_end(&mut log, &c, 0, T0);
    let after_first = records(&log);
    let k1: Vec<&Rec> = after_first
        .iter()
        .filter(|r| r.key.as_deref() == Some(&b"k1"[..]))
        .collect();
    assert_eq!(k1.len(), 1, "older values of a deleted key go at once");
    assert_eq!(k1[0].offset, tomb);
    assert_eq!(k1[0].value, None, "the tombstone itself stays");
    assert_eq!(
        k1[0].timestamp, T0,
        "rebasing onto the delete horizon keeps record timestamps"
    );

    let horizon = T0 + config.delete_retention_ms;
    let second = clean_to_end(&mut log, &c, first.first_dirty_offset, horizon - 1);
    assert_eq!(second.stats.tombstones_removed, 0);
    assert!(
        records(&log).iter().any(|r| r.offset == tomb),
        "kept before the horizon"
    );

    let third = clean_to_end(&mut log, &c, first.first_dirty_offset, horizon);
    assert_eq!(third.stats.tombstones_removed, 1);
    assert!(!records(&log)
        .iter()
        .any(|r| r.key.as_deref() == Some(&b"k1"[..])));
    // Other keys are untouched by the tombstone's removal.
    assert!(records(&log)
        .iter()
        .any(|r| r.key.as_deref() == Some(&b"k0"[..])));
}

#[test]
fn compressed_batches_are_cleaned_and_keep_their_codec() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(
            dir.path(),
            LogConfig {
                segment_bytes: 2_000,
                ..compact_config()
            },
        );
        // Batches of several records, some keys repeated inside a batch.
        for round in 0..4 {
            let v: Vec<String> = (0..4).map(|i| format!("r{round}-{i}")).collect();
            append(
                &mut log,
                codec,
                &[
                    ("a", Some(&v[0])),
                    ("b", Some(&v[1])),
                    ("a", Some(&v[2])),
                    ("c", Some(&v[3])),
                ],
            );
        }
        log.roll(T0).unwrap();
        append(&mut log, codec, &[("z", Some("active"))]);
        clean_to_end(&mut log, &CleanerConfig::default(), 0, T0);
        let after = records_with_codecs(&log);
        let values: Vec<(Vec<u8>, Vec<u8>)> = after
            .iter()
            .map(|(r, _)| (r.key.clone().unwrap(), r.value.clone().unwrap()))
            .collect();
        assert_eq!(
            values,
            vec![
                (b"b".to_vec(), b"r3-1".to_vec()),
                (b"a".to_vec(), b"r3-2".to_vec()),
                (b"c".to_vec(), b"r3-3".to_vec()),
                (b"z".to_vec(), b"active".to_vec()),
            ],
            "{codec:?}"
        );
        assert!(
            after.iter().all(|(_, c)| *c == codec),
            "{codec:?}: codec kept"
        );
    }
}

#[test]
fn the_last_batch_of_a_producer_is_kept_even_when_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config());
    let mut encoded = Vec::new();
    batch::encode_record(&mut encoded, 0, 0, Some(b"k"), Some(b"from-producer"));
    let spec = BatchSpec {
        base_offset: 0,
        partition_leader_epoch: -1,
        attributes: 0,
        last_offset_delta: 0,
        base_timestamp: T0,
        max_timestamp: T0,
        producer_id: 77,
        producer_epoch: 3,
        base_sequence: 41,
    };
    let b = batch::build_batch(&spec, &encoded, 1).unwrap();
    let producer_offset = log.append_as_leader(&b, 0, T0).unwrap().first_offset;
    append(&mut log, Compression::None, &[("k", Some("newer"))]);
    log.roll(T0).unwrap();
    append(&mut log, Compression::None, &[("x", Some("active"))]);
    clean_to_end(&mut log, &CleanerConfig::default(), 0, T0);

    // The record is gone, the batch header remains with the producer's state.
    assert!(!records(&log)
        .iter()
        .any(|r| r.value.as_deref() == Some(&b"from-producer"[..])));
    let info = log.read(0, 1 << 20, None, true).unwrap();
    let bytes = info.slice.unwrap().read_to_vec().unwrap();
    let first = batch::BatchHeader::parse(&bytes).unwrap();
    assert_eq!(first.base_offset, producer_offset);
    assert_eq!(first.record_count, 0);
    assert_eq!(
        (first.producer_id, first.producer_epoch, first.base_sequence),
        (77, 3, 41)
    );
}

#[test]
fn nothing_happens_when_the_cleaner_is_off_or_the_policy_is_delete() {
    for (enabled, policy) in [
        (
            false,
            CleanupPolicy {
                delete: false,
                compact: true,
            },
        ),
        (
            true,
            CleanupPolicy {
                delete: true,
                compact: false,
            },
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(
            dir.path(),
            LogConfig {
                cleanup_policy: policy,
                ..compact_config()
            },
        );
        fill(&mut log, Compression::None, 3, 3);
        let before = records(&log);
        let c = CleanerConfig {
            enabled,
            ..CleanerConfig::default()
        };
        let result = clean_to_end(&mut log, &c, 0, T0);
        assert_eq!(result.stats.segments_cleaned, 0);
        assert_eq!(result.first_dirty_offset, 0);
        assert_eq!(records(&log), before);
        assert!(maybe_clean_to_end(&mut log, &c, 0, T0).is_none());
    }
}

#[test]
fn retention_still_deletes_with_the_cleaner_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: true,
            compact: true,
        },
        retention_ms: 1_000,
        ..compact_config()
    };
    let mut log = open(dir.path(), config);
    fill(&mut log, Compression::None, 3, 3);
    let segments = log.segment_count();
    let c = CleanerConfig {
        enabled: false,
        ..CleanerConfig::default()
    };
    assert!(maybe_clean_to_end(&mut log, &c, 0, T0 + 5_000).is_none());
    let deleted = log
        .delete_old_segments(log.log_end_offset(), T0 + 5_000)
        .unwrap();
    assert_eq!(
        deleted,
        segments - 1,
        "every non-active segment is past retention.ms"
    );
}

#[test]
fn min_compaction_lag_and_dirty_ratio_hold_cleaning_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(
        dir.path(),
        LogConfig {
            min_compaction_lag_ms: 60_000,
            ..compact_config()
        },
    );
    fill(&mut log, Compression::None, 3, 3);
    let before = records(&log);
    let c = CleanerConfig::default();
    // Records are T0 old: too young at T0 + 1s, old enough at T0 + 61s.
    assert!(cleaner::cleanable_range(&log, 0, log.log_end_offset(), T0 + 1_000).is_none());
    assert!(maybe_clean_to_end(&mut log, &c, 0, T0 + 1_000).is_none());
    assert_eq!(records(&log), before);
    let range = cleaner::cleanable_range(&log, 0, log.log_end_offset(), T0 + 61_000).unwrap();
    assert!(
        (range.dirty_ratio - 1.0).abs() < 1e-9,
        "nothing cleaned yet: all dirty"
    );

    log.update_config(LogConfig {
        min_compaction_lag_ms: 0,
        min_cleanable_dirty_ratio: 0.99,
        ..compact_config()
    })
    .unwrap();
    let done = clean_to_end(&mut log, &c, 0, T0);
    // All clean now: the ratio is 0, below 0.99, so a second maybe_clean declines.
    assert!(maybe_clean_to_end(&mut log, &c, done.first_dirty_offset, T0).is_none());
}

#[test]
fn the_high_watermark_bounds_cleaning() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), compact_config());
    fill(&mut log, Compression::None, 3, 4);
    let before = records(&log);
    // An upper bound inside the first segment: no whole segment is below it.
    let result = cleaner::clean(&mut log, &CleanerConfig::default(), 0, 1, T0).unwrap();
    assert_eq!(result.stats.segments_cleaned, 0);
    assert_eq!(records(&log), before);
}

/// One pass with the log end offset as the high watermark.
fn clean_to_end(
    log: &mut Log,
    c: &CleanerConfig,
    first_dirty: i64,
    now_ms: i64,
) -> cleaner::CleanResult {
    let hw = log.log_end_offset();
    cleaner::clean(log, c, first_dirty, hw, now_ms).unwrap()
}

fn maybe_clean_to_end(
    log: &mut Log,
    c: &CleanerConfig,
    first_dirty: i64,
    now_ms: i64,
) -> Option<cleaner::CleanResult> {
    let hw = log.log_end_offset();
    cleaner::maybe_clean(log, c, first_dirty, hw, now_ms).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_committed_swap_is_completed_and_an_uncommitted_one_undone_on_open() {
    let base = tempfile::tempdir().unwrap();
    let (a, b) = (base.path().join("a"), base.path().join("b"));
    let mut log = open(&a, compact_config());
    fill(&mut log, Compression::None, 4, 4);
    append(&mut log, Compression::None, &[("k0", Some("active"))]);
    log.close(T0).unwrap();
    copy_dir(&a, &b);

    // The outcome to expect: the same log cleaned without interruption.
    let mut expected = open(&b, compact_config());
    clean_to_end(&mut expected, &CleanerConfig::default(), 0, T0);
    let expected_records = records(&expected);
    let first_segment = format!("{:020}", expected.segment_bases()[0]);
    drop(expected);

    // Crash after the commit point: the cleaned first segment sits as .swap files beside
    // the original (which was not deleted yet).
    let crashed = base.path().join("crashed");
    copy_dir(&a, &crashed);
    for ext in ["log", "index", "timeindex"] {
        std::fs::copy(
            b.join(format!("{first_segment}.{ext}")),
            crashed.join(format!("{first_segment}.{ext}.swap")),
        )
        .unwrap();
    }
    let reopened = open(&crashed, compact_config());
    let got = records(&reopened);
    let first_end = reopened.segment_bases()[1];
    assert_eq!(
        got.iter()
            .filter(|r| r.offset < first_end)
            .collect::<Vec<_>>(),
        expected_records
            .iter()
            .filter(|r| r.offset < first_end)
            .collect::<Vec<_>>(),
        "the swap was completed"
    );
    assert!(std::fs::read_dir(&crashed).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".swap")));

    // Crash before the commit point: .cleaned files and an index .swap without a
    // .log.swap. The original stays; the leftovers go.
    let early = base.path().join("early");
    copy_dir(&a, &early);
    let original = records(&open(&a, compact_config()));
    std::fs::copy(
        b.join(format!("{first_segment}.log")),
        early.join(format!("{first_segment}.log.cleaned")),
    )
    .unwrap();
    std::fs::copy(
        b.join(format!("{first_segment}.index")),
        early.join(format!("{first_segment}.index.swap")),
    )
    .unwrap();
    let reopened = open(&early, compact_config());
    assert_eq!(records(&reopened), original);
    let leftovers: Vec<String> = std::fs::read_dir(&early)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
