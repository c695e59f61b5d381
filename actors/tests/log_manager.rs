//! The data directory: checkpoints, the clean-shutdown marker, partition directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sluice_actors::log::batch;
use sluice_actors::log::checkpoint::TopicPartition;
use sluice_actors::log::compression::Compression;
use sluice_actors::log::config::LogConfig;
use sluice_actors::log::manager::{LogManager, LogOffsets};
use sluice_actors::log::{Log, LogError};

const NOW: i64 = 1_700_000_000_000;

fn append(log: &mut Log, n: usize) {
    for i in 0..n {
        let v = format!("value-{i}");
        let b = batch::simple_batch(Compression::None, NOW, &[(Some(b"k"), Some(v.as_bytes()))])
            .unwrap();
        log.append_as_leader(&b, 0, NOW).unwrap();
    }
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    }
}

#[test]
fn clean_shutdown_marker_is_written_last_and_consumed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("orders", 0);
    let manager = LogManager::open(dir.path()).unwrap();
    assert!(
        !manager.had_clean_shutdown(),
        "a new data dir was not shut down cleanly"
    );
    let mut log = manager
        .open_log(&tp, small_segments(), Some("id-1"), NOW)
        .unwrap();
    append(&mut log, 10);
    manager.shutdown([(tp.clone(), log)], NOW).unwrap();
    assert!(dir.path().join(".clean-shutdown").exists());

    let manager = LogManager::open(dir.path()).unwrap();
    assert!(manager.had_clean_shutdown());
    assert!(
        !dir.path().join(".clean-shutdown").exists(),
        "a crash from now on must count as unclean"
    );
    let log = manager
        .open_log(&tp, small_segments(), Some("id-1"), NOW)
        .unwrap();
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(
        log.recovery_point(),
        10,
        "the recovery point came back from the checkpoint"
    );
    drop(log);
    drop(manager);
    // No shutdown this time (a crash): the next open recovers.
    let manager = LogManager::open(dir.path()).unwrap();
    assert!(!manager.had_clean_shutdown());
    assert_eq!(
        manager
            .open_log(&tp, small_segments(), Some("id-1"), NOW)
            .unwrap()
            .log_end_offset(),
        10
    );
}

#[test]
fn log_start_offset_survives_a_restart_through_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("events", 3);
    let manager = LogManager::open(dir.path()).unwrap();
    let mut log = manager.open_log(&tp, small_segments(), None, NOW).unwrap();
    append(&mut log, 20);
    assert!(log
        .maybe_increment_log_start_offset(7, log.log_end_offset())
        .unwrap());
    manager.shutdown([(tp.clone(), log)], NOW).unwrap();

    let manager = LogManager::open(dir.path()).unwrap();
    let log = manager.open_log(&tp, small_segments(), None, NOW).unwrap();
    assert_eq!(log.log_start_offset(), 7);
    assert!(matches!(
        log.read(6, 1 << 20, None, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(log.read(7, 1 << 20, None, true).unwrap().slice.is_some());
    let text = std::fs::read_to_string(dir.path().join("log-start-offset-checkpoint")).unwrap();
    assert_eq!(text, "0\n1\nevents 3 7\n", "Kafka's checkpoint format");
}

#[test]
fn checkpoint_records_what_it_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let mut manager = LogManager::open(dir.path()).unwrap();
    let (a, b) = (TopicPartition::new("a", 0), TopicPartition::new("b", 1));
    manager
        .checkpoint([
            (
                a.clone(),
                LogOffsets {
                    recovery_point: 5,
                    log_start_offset: 1,
                },
            ),
            (
                b.clone(),
                LogOffsets {
                    recovery_point: 9,
                    log_start_offset: 0,
                },
            ),
        ])
        .unwrap();
    manager.set_cleaner_offset(&b, 4).unwrap();
    drop(manager);
    let manager = LogManager::open(dir.path()).unwrap();
    assert_eq!(manager.cleaner_offset(&b), 4);
    assert_eq!(manager.cleaner_offset(&a), 0);
    let text =
        std::fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert_eq!(text, "0\n2\na 0 5\nb 1 9\n");
}

#[test]
fn a_recreated_topic_is_never_served_the_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("reborn", 0);
    let manager = LogManager::open(dir.path()).unwrap();
    let mut log = manager
        .open_log(&tp, small_segments(), Some("old-id"), NOW)
        .unwrap();
    append(&mut log, 5);
    manager.shutdown([(tp.clone(), log)], NOW).unwrap();

    // The topic was deleted and created again while this broker was down.
    let manager = LogManager::open(dir.path()).unwrap();
    let log = manager
        .open_log(&tp, small_segments(), Some("new-id"), NOW)
        .unwrap();
    assert_eq!(log.log_end_offset(), 0, "the new incarnation starts empty");
    assert_eq!(log.log_start_offset(), 0);
    let meta = std::fs::read_to_string(dir.path().join("reborn-0/partition.metadata")).unwrap();
    assert!(meta.contains("new-id"));
    // Opening the directory directly with the wrong id is refused.
    drop(log);
    let direct = Log::open(
        &dir.path().join("reborn-0"),
        small_segments(),
        sluice_actors::log::log::LogOpenOptions {
            topic_id: Some("third".into()),
            ..Default::default()
        },
    );
    assert!(matches!(direct, Err(LogError::TopicIdMismatch { .. })));
}

#[test]
fn partitions_are_listed_and_deleted_crash_safely() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open(dir.path()).unwrap();
    let tps = [
        TopicPartition::new("my-topic", 0),
        TopicPartition::new("my-topic", 1),
        TopicPartition::new("x", 12),
    ];
    for tp in &tps {
        let mut log = manager.open_log(tp, small_segments(), None, NOW).unwrap();
        append(&mut log, 2);
    }
    // Not partitions: a file and a directory left by an interrupted deletion.
    std::fs::write(
        dir.path().join("recovery-point-offset-checkpoint"),
        "0\n0\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("gone-0.abc-delete")).unwrap();
    assert_eq!(
        manager.partitions_on_disk().unwrap(),
        tps.to_vec(),
        "neither a file nor a -delete dir is a partition"
    );
    drop(manager);
    let mut manager = LogManager::open(dir.path()).unwrap();
    assert!(
        !dir.path().join("gone-0.abc-delete").exists(),
        "an interrupted deletion is finished at open"
    );
    assert_eq!(manager.partitions_on_disk().unwrap(), tps.to_vec());

    manager.delete_partition(&tps[1], "tag").unwrap();
    assert_eq!(
        manager.partitions_on_disk().unwrap(),
        vec![tps[0].clone(), tps[2].clone()]
    );
    assert!(!manager.partition_dir(&tps[1]).exists());
}

/// A corrupt checkpoint file does not stop the data dir from opening: it is logged and
/// the safe default follows — a corrupt recovery-point checkpoint makes every log recover
/// as after a crash (even with the clean-shutdown marker), a corrupt cleaner checkpoint
/// restarts cleaning from the start. Every record is still served.
#[test]
fn corrupt_checkpoints_fall_back_to_safe_defaults() {
    for (file, garbage) in [
        ("recovery-point-offset-checkpoint", "0\n1\norders 0 zz\n"),
        ("recovery-point-offset-checkpoint", "\u{0}\u{1}garbage"),
        ("log-start-offset-checkpoint", "7\n"),
        ("cleaner-offset-checkpoint", "0\n5\norders 0 1\n"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let tp = TopicPartition::new("orders", 0);
        let mut manager = LogManager::open(dir.path()).unwrap();
        let mut log = manager
            .open_log(&tp, small_segments(), Some("id-1"), NOW)
            .unwrap();
        append(&mut log, 20);
        manager.set_cleaner_offset(&tp, 5).unwrap();
        manager.shutdown([(tp.clone(), log)], NOW).unwrap();
        std::fs::write(dir.path().join(file), garbage).unwrap();

        let manager = LogManager::open(dir.path())
            .unwrap_or_else(|e| panic!("{file} {garbage:?}: the data dir did not open: {e}"));
        if file.starts_with("recovery-point") {
            assert!(
                !manager.had_clean_shutdown(),
                "{file}: without recovery points the logs must be recovered"
            );
        }
        if file.starts_with("cleaner") {
            assert_eq!(manager.cleaner_offset(&tp), 0, "{file}");
        }
        let log = manager
            .open_log(&tp, small_segments(), Some("id-1"), NOW)
            .unwrap();
        assert_eq!(log.log_end_offset(), 20, "{file}");
        assert_eq!(log.log_start_offset(), 0, "{file}");
        for offset in 0..20 {
            let info = log.read(offset, 1, None, true).unwrap();
            assert!(info.slice.is_some(), "{file}: offset {offset}");
        }
    }
}
