//! Kafka's small text checkpoint files, byte-compatible with Kafka's own.
//!
//! Two formats live here:
//!
//! * The **offset checkpoint** format ([`OffsetCheckpointFile`]) of the per-data-dir files
//!   `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
//!   `cleaner-offset-checkpoint` (and later `replication-offset-checkpoint`). The same
//!   framing (version line, count line, one entry per line) is shared with the
//!   per-partition `leader-epoch-checkpoint` (see [`crate::log::leader_epoch`]), whose
//!   entries are `<epoch> <start offset>`.
//! * The **partition metadata** format ([`PartitionMetadataFile`]) of `partition.metadata`.
//!
//! # Crash behaviour
//!
//! Every write goes through [`write_atomically`]: the new contents are written to a
//! temporary file beside the target, fsynced, renamed over the target, and the directory
//! is fsynced. A crash at any point therefore leaves either the complete old file or the
//! complete new file (plus, possibly, a stale `*.tmp` that the next write overwrites) —
//! never a mix. Readers still validate the framing strictly, so a file damaged by other
//! means (a disk error, a hand edit, a truncating copy) is reported as
//! [`LogError::CorruptFile`] rather than silently misread.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::log::files::write_atomically;
use crate::log::{LogError, Result};

/// The only version of the checkpoint-file framing (line 1 of every such file).
pub const CHECKPOINT_VERSION: i32 = 0;

/// The version `partition.metadata` is written with.
pub const PARTITION_METADATA_VERSION: i32 = 0;

/// A topic partition: the key of the per-data-dir checkpoint files.
///
/// Ordered by topic, then partition, so a `BTreeMap` keyed by it writes files in a
/// stable order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    /// A topic partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    /// `<topic>-<partition>`, as Kafka prints it (and as partition directories are named).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A per-data-dir offset checkpoint file (`recovery-point-offset-checkpoint`,
/// `log-start-offset-checkpoint`, `cleaner-offset-checkpoint`,
/// `replication-offset-checkpoint`).
///
/// # Format
///
/// UTF-8 text, every line terminated by a single `\n` (0x0A), exactly as Kafka's
/// `OffsetCheckpointFile` writes it:
///
/// ```text
/// 0\n                      line 1: the version, ASCII decimal, always `0`
/// 2\n                      line 2: the number of entry lines that follow, ASCII decimal
/// my-topic 0 1234\n        one line per entry: <topic> SP <partition> SP <offset>
/// my-topic 1 99\n
/// ```
///
/// `<partition>` is a decimal `i32` and `<offset>` a decimal `i64` (a leading `-` for
/// negative values, no padding); the fields are separated by one space (0x20). Entries are
/// written in [`TopicPartition`] order. An empty map is written as `0\n0\n`.
///
/// # Reading
///
/// Like Kafka, entry fields may be separated by any run of ASCII whitespace, a `\r`
/// before a `\n` is tolerated, and a zero-byte file (Kafka creates these before its first
/// write) reads as empty. If the same partition appears twice the later line wins. Every
/// other deviation is [`LogError::CorruptFile`] naming the file and the line: a version
/// other than `0`, a missing or negative count, a count that differs from the number of
/// entry lines, a line that is not three fields or whose numbers do not parse, invalid
/// UTF-8, and a last line without its terminating `\n` (a truncated file — Kafka always
/// terminates the last line, so this is never a Kafka-written file).
///
/// # Crash behaviour
///
/// [`write`](Self::write) replaces the file atomically (temp file, fsync, rename,
/// directory fsync): after a crash the file holds the old checkpoint or the new one.
#[derive(Debug, Clone)]
pub struct OffsetCheckpointFile {
    path: PathBuf,
}

impl OffsetCheckpointFile {
    /// A handle on the checkpoint file at `path`; nothing is read or created yet.
    pub fn new(path: PathBuf) -> Self {
        OffsetCheckpointFile { path }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every entry. A missing (or zero-byte) file is an empty map; any malformed
    /// content is [`LogError::CorruptFile`].
    pub fn read(&self) -> Result<BTreeMap<TopicPartition, i64>> {
        let Some(text) = read_if_exists(&self.path)? else {
            return Ok(BTreeMap::new());
        };
        let entries = parse_checkpoint(&self.path, &text, parse_offset_entry)?;
        Ok(entries.into_iter().collect())
    }

    /// Replaces the file's contents with `entries`, atomically.
    ///
    /// A topic name that is empty or contains whitespace or control characters cannot be
    /// represented in this format; such an entry fails the whole write with an
    /// [`LogError::Io`] of kind [`io::ErrorKind::InvalidInput`] and leaves the file as it
    /// was. (Kafka topic names are restricted to `[a-zA-Z0-9._-]`, so this never happens
    /// for a validated topic.)
    pub fn write(&self, entries: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        for tp in entries.keys() {
            if !is_token(&tp.topic) {
                return Err(invalid_input(
                    &self.path,
                    format!(
                        "topic name {:?} cannot be written to a checkpoint file",
                        tp.topic
                    ),
                ));
            }
        }
        let text = encode_checkpoint(
            entries.len(),
            entries
                .iter()
                .map(|(tp, offset)| format!("{} {} {}", tp.topic, tp.partition, offset)),
        );
        write_atomically(&self.path, text.as_bytes())
    }
}

fn parse_offset_entry(line: &str) -> Option<(TopicPartition, i64)> {
    let mut fields = line.split_ascii_whitespace();
    let topic = fields.next()?;
    let partition: i32 = fields.next()?.parse().ok()?;
    let offset: i64 = fields.next()?.parse().ok()?;
    if fields.next().is_some() || line.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    Some((TopicPartition::new(topic, partition), offset))
}

/// The per-partition `partition.metadata` file: the topic id the partition directory
/// belongs to.
///
/// # Format
///
/// UTF-8 text, exactly as Kafka's `PartitionMetadataFile` writes it — two lines, the
/// second **without** a terminating newline:
///
/// ```text
/// version: 0\n
/// topic_id: <topic id>
/// ```
///
/// i.e. the bytes `version: 0`, 0x0A, `topic_id: `, then the topic id. Kafka writes the
/// id as the 22-character URL-safe base64 of its UUID; this type treats it as an opaque
/// token (non-empty, no whitespace or control characters) and leaves the encoding to the
/// broker.
///
/// # Reading
///
/// As in Kafka: each line is `<key>:` followed by at least one whitespace character and
/// the value; the keys must be `version` and `topic_id` in that order; the version must
/// be a non-negative integer (Kafka accepts versions above its own for downgrade
/// compatibility, and so do we); a trailing `\n`, a `\r` before a `\n`, and anything after
/// the second line are ignored. A missing file reads as `None`; anything else malformed
/// (including an empty file) is [`LogError::CorruptFile`] naming the file and the line.
///
/// # Crash behaviour
///
/// [`write`](Self::write) replaces the file atomically (temp file, fsync, rename,
/// directory fsync): after a crash the file holds the old contents or the new.
#[derive(Debug, Clone)]
pub struct PartitionMetadataFile {
    path: PathBuf,
}

impl PartitionMetadataFile {
    /// A handle on the metadata file at `path`; nothing is read or created yet.
    pub fn new(path: PathBuf) -> Self {
        PartitionMetadataFile { path }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored topic id, or `None` if the file does not exist.
    pub fn read(&self) -> Result<Option<String>> {
        let Some(text) = read_if_exists(&self.path)? else {
            return Ok(None);
        };
        let mut lines = text.split('\n').map(strip_cr);

        let version_line = lines.next().unwrap_or_default();
        let version = parse_key_value(version_line, "version")
            .and_then(|v| v.parse::<i32>().ok())
            .ok_or_else(|| corrupt_line(&self.path, 1, "malformed version line", version_line))?;
        if version < 0 {
            return Err(corrupt(
                &self.path,
                format!("line 1: unrecognized version {version}"),
            ));
        }

        let Some(id_line) = lines.next() else {
            return Err(corrupt(
                &self.path,
                "line 2: missing topic_id line (file truncated)".to_string(),
            ));
        };
        let topic_id = parse_key_value(id_line, "topic_id")
            .filter(|v| is_token(v))
            .ok_or_else(|| corrupt_line(&self.path, 2, "malformed topic_id line", id_line))?;
        Ok(Some(topic_id.to_string()))
    }

    /// Replaces the file with `version: 0` and `topic_id`, atomically.
    ///
    /// A topic id that is empty or contains whitespace or control characters would not
    /// read back; it fails with an [`LogError::Io`] of kind
    /// [`io::ErrorKind::InvalidInput`] and leaves the file as it was.
    pub fn write(&self, topic_id: &str) -> Result<()> {
        if !is_token(topic_id) {
            return Err(invalid_input(
                &self.path,
                format!("topic id {topic_id:?} cannot be written to partition.metadata"),
            ));
        }
        let text = format!("version: {PARTITION_METADATA_VERSION}\ntopic_id: {topic_id}");
        write_atomically(&self.path, text.as_bytes())
    }
}

/// `key:<whitespace+>value` → `value`, if the key matches.
fn parse_key_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(key)?.strip_prefix(':')?;
    let value = rest.trim_start();
    (value.len() < rest.len() && !value.is_empty()).then_some(value)
}

// ---- shared framing of `<version>\n<count>\n<entry>\n...` files ----

/// Reads `path` as UTF-8; `None` if it does not exist.
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<String>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io("read", path)(e)),
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Some(text)),
        Err(e) => Err(corrupt(
            path,
            format!("not valid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        )),
    }
}

/// Parses the checkpoint framing shared by the offset checkpoints and
/// `leader-epoch-checkpoint`: line 1 [`CHECKPOINT_VERSION`], line 2 the entry count,
/// then one entry per line, each parsed by `parse_entry` (`None` = malformed). Every line
/// must end with `\n` (an optional `\r` before it is dropped). A zero-byte file is empty.
/// Errors are [`LogError::CorruptFile`] naming `path` and the offending line.
pub(crate) fn parse_checkpoint<T>(
    path: &Path,
    text: &str,
    parse_entry: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let lines: Vec<&str> = text.split_terminator('\n').map(strip_cr).collect();
    if !text.ends_with('\n') {
        return Err(corrupt(
            path,
            format!(
                "line {}: no terminating newline (file truncated)",
                lines.len()
            ),
        ));
    }

    let version_line = lines.first().copied().unwrap_or_default();
    let version: i32 = version_line
        .parse()
        .map_err(|_| corrupt_line(path, 1, "malformed version", version_line))?;
    if version != CHECKPOINT_VERSION {
        return Err(corrupt(
            path,
            format!("line 1: unrecognized version {version}, expected {CHECKPOINT_VERSION}"),
        ));
    }

    let Some(&count_line) = lines.get(1) else {
        return Err(corrupt(
            path,
            "line 2: missing entry count (file truncated)".to_string(),
        ));
    };
    let count = count_line
        .parse::<i32>()
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| corrupt_line(path, 2, "malformed entry count", count_line))?;

    let body = lines.get(2..).unwrap_or_default();
    let mut entries = Vec::with_capacity(body.len());
    for (i, line) in body.iter().enumerate() {
        match parse_entry(line) {
            Some(entry) => entries.push(entry),
            None => return Err(corrupt_line(path, i + 3, "malformed entry", line)),
        }
    }
    if entries.len() != count {
        return Err(corrupt(
            path,
            format!(
                "line 2: entry count is {count} but the file holds {} entries",
                entries.len()
            ),
        ));
    }
    Ok(entries)
}

/// The checkpoint framing: `0\n<count>\n` then each entry followed by `\n`.
pub(crate) fn encode_checkpoint(count: usize, entries: impl Iterator<Item = String>) -> String {
    let mut text = format!("{CHECKPOINT_VERSION}\n{count}\n");
    for entry in entries {
        text.push_str(&entry);
        text.push('\n');
    }
    text
}

/// `CorruptFile` for `path` with `reason`.
pub(crate) fn corrupt(path: &Path, reason: String) -> LogError {
    LogError::CorruptFile {
        path: path.to_path_buf(),
        reason,
    }
}

/// `CorruptFile` quoting the offending (1-based) line, shortened if long.
fn corrupt_line(path: &Path, line_no: usize, what: &str, line: &str) -> LogError {
    const MAX: usize = 80;
    let shown: String = line.chars().take(MAX).collect();
    let ellipsis = if shown.len() < line.len() { "..." } else { "" };
    corrupt(path, format!("line {line_no}: {what}: {shown:?}{ellipsis}"))
}

fn invalid_input(path: &Path, msg: String) -> LogError {
    LogError::Io {
        op: "write",
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, msg),
    }
}

/// Non-empty and free of whitespace and control characters: survives a
/// whitespace-separated line.
fn is_token(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn strip_cr(line: &str) -> &str {
    line.strip_suffix('\r').unwrap_or(line)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::fs;

    fn assert_corrupt(result: Result<impl fmt::Debug>, path: &Path, needle: &str) {
        match result {
            Err(LogError::CorruptFile { path: p, reason }) => {
                assert_eq!(p, path);
                assert!(
                    reason.contains(needle),
                    "reason {reason:?} does not mention {needle:?}"
                );
            }
            other => panic!("expected CorruptFile, got {other:?}"),
        }
    }

    fn sample() -> BTreeMap<TopicPartition, i64> {
        let mut m = BTreeMap::new();
        m.insert(TopicPartition::new("orders", 1), 99);
        m.insert(TopicPartition::new("orders", 0), 1234);
        m.insert(TopicPartition::new("a-topic.x_y", 7), 0);
        m.insert(TopicPartition::new("neg", 2), -1);
        m
    }

    #[test]
    fn topic_partition_display_and_order() {
        assert_eq!(TopicPartition::new("my-topic", 3).to_string(), "my-topic-3");
        assert!(TopicPartition::new("a", 9) < TopicPartition::new("b", 0));
        assert!(TopicPartition::new("a", 1) < TopicPartition::new("a", 2));
    }

    #[test]
    fn offset_checkpoint_round_trip_and_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        let file = OffsetCheckpointFile::new(path.clone());
        file.write(&sample()).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "0\n4\na-topic.x_y 7 0\nneg 2 -1\norders 0 1234\norders 1 99\n"
        );
        assert_eq!(file.read().unwrap(), sample());
        assert!(!path.with_extension("tmp").exists());

        // Overwrite with fewer entries, then with none.
        let mut one = BTreeMap::new();
        one.insert(TopicPartition::new("t", 0), 5);
        file.write(&one).unwrap();
        assert_eq!(file.read().unwrap(), one);
        file.write(&BTreeMap::new()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n0\n");
        assert!(file.read().unwrap().is_empty());
    }

    #[test]
    fn offset_checkpoint_missing_or_zero_byte_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log-start-offset-checkpoint");
        let file = OffsetCheckpointFile::new(path.clone());
        assert!(file.read().unwrap().is_empty());
        fs::write(&path, "").unwrap();
        assert!(file.read().unwrap().is_empty());
    }

    #[test]
    fn offset_checkpoint_reads_kafka_variants() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cleaner-offset-checkpoint");
        let file = OffsetCheckpointFile::new(path.clone());
        // Runs of whitespace, CRLF, duplicate key (last wins).
        fs::write(&path, "0\r\n3\r\nt  0\t5\r\nt 1 6\r\nt 0 7\r\n").unwrap();
        let got = file.read().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[&TopicPartition::new("t", 0)], 7);
        assert_eq!(got[&TopicPartition::new("t", 1)], 6);
    }

    #[test]
    fn offset_checkpoint_corruptions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        let file = OffsetCheckpointFile::new(path.clone());
        let cases: &[(&str, &str)] = &[
            ("1\n0\n", "line 1: unrecognized version 1"),
            ("x\n0\n", "line 1: malformed version"),
            (
                "0\n2\nt 0 5\n",
                "line 2: entry count is 2 but the file holds 1",
            ),
            (
                "0\n1\nt 0 5\nt 1 6\n",
                "line 2: entry count is 1 but the file holds 2",
            ),
            ("0\n-1\n", "line 2: malformed entry count"),
            ("0\nmany\n", "line 2: malformed entry count"),
            ("0\n", "line 2: missing entry count"),
            ("0\n2\nt 0 5\ngarbage\n", "line 4: malformed entry"),
            ("0\n1\nt 0\n", "line 3: malformed entry"),
            ("0\n1\nt 0 5 9\n", "line 3: malformed entry"),
            ("0\n1\nt x 5\n", "line 3: malformed entry"),
            ("0\n1\nt 0 5x\n", "line 3: malformed entry"),
            (
                "0\n1\nt 0 99999999999999999999\n",
                "line 3: malformed entry",
            ),
            ("0\n2\nt 0 5\n\nt 1 6\n", "line 4: malformed entry"),
            ("0\n1\nt 0 12", "line 3: no terminating newline"),
            ("0\n1", "line 2: no terminating newline"),
        ];
        for (content, needle) in cases {
            fs::write(&path, content).unwrap();
            assert_corrupt(file.read(), &path, needle);
        }
        fs::write(&path, b"0\n1\n\xff 0 5\n").unwrap();
        assert_corrupt(file.read(), &path, "UTF-8");
    }

    #[test]
    fn offset_checkpoint_refuses_unrepresentable_topic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        let file = OffsetCheckpointFile::new(path.clone());
        file.write(&sample()).unwrap();
        for bad in ["", "has space", "new\nline"] {
            let mut m = sample();
            m.insert(TopicPartition::new(bad, 0), 1);
            match file.write(&m) {
                Err(LogError::Io { source, .. }) => {
                    assert_eq!(source.kind(), io::ErrorKind::InvalidInput)
                }
                other => panic!("expected InvalidInput, got {other:?}"),
            }
        }
        assert_eq!(file.read().unwrap(), sample());
    }

    #[test]
    fn partition_metadata_round_trip_and_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partition.metadata");
        let file = PartitionMetadataFile::new(path.clone());
        assert_eq!(file.read().unwrap(), None);
        file.write("q-8MVZ1_SWmD3eW7fz3hxA").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "version: 0\ntopic_id: q-8MVZ1_SWmD3eW7fz3hxA"
        );
        assert_eq!(
            file.read().unwrap().as_deref(),
            Some("q-8MVZ1_SWmD3eW7fz3hxA")
        );
        file.write("other").unwrap();
        assert_eq!(file.read().unwrap().as_deref(), Some("other"));
    }

    #[test]
    fn partition_metadata_reads_kafka_variants() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partition.metadata");
        let file = PartitionMetadataFile::new(path.clone());
        for content in [
            "version: 0\ntopic_id: abc\n",
            "version:  0\r\ntopic_id:\tabc\r\n",
            "version: 1\ntopic_id: abc\nfuture: stuff\n",
        ] {
            fs::write(&path, content).unwrap();
            assert_eq!(file.read().unwrap().as_deref(), Some("abc"), "{content:?}");
        }
    }

    #[test]
    fn partition_metadata_corruptions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partition.metadata");
        let file = PartitionMetadataFile::new(path.clone());
        let cases: &[(&str, &str)] = &[
            ("", "line 1: malformed version line"),
            ("version: 0", "line 2: missing topic_id"),
            (
                "version: -1\ntopic_id: abc",
                "line 1: unrecognized version -1",
            ),
            (
                "version: x\ntopic_id: abc",
                "line 1: malformed version line",
            ),
            ("version:0\ntopic_id: abc", "line 1: malformed version line"),
            ("vers: 0\ntopic_id: abc", "line 1: malformed version line"),
            ("version: 0\ntopic: abc", "line 2: malformed topic_id line"),
            ("version: 0\ntopic_id: ", "line 2: malformed topic_id line"),
            (
                "version: 0\ntopic_id: a b",
                "line 2: malformed topic_id line",
            ),
            ("version: 0\n\n", "line 2: malformed topic_id line"),
        ];
        for (content, needle) in cases {
            fs::write(&path, content).unwrap();
            assert_corrupt(file.read(), &path, needle);
        }
    }

    #[test]
    fn partition_metadata_refuses_unrepresentable_id() {
        let dir = tempfile::tempdir().unwrap();
        let file = PartitionMetadataFile::new(dir.path().join("partition.metadata"));
        for bad in ["", "a b", "a\nb"] {
            assert!(matches!(file.write(bad), Err(LogError::Io { .. })));
        }
        assert_eq!(file.read().unwrap(), None);
    }
}
