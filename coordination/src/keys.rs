//! Key paths: validation, parents, and splitting large writes into guarded chunks.

use crate::{Error, Limits, Op, Result};

/// A key is an absolute path: `/` alone, or `/seg(/seg)*` with non-empty segments that are
/// not `.` or `..`, no NUL, at most 4 KiB.
pub fn validate(key: &str) -> Result<()> {
    let bad = || Error::InvalidKey(key.to_owned());
    if key == "/" {
        return Ok(());
    }
    if !key.starts_with('/') || key.ends_with('/') || key.len() > 4096 || key.contains('\0') {
        return Err(bad());
    }
    if key[1..]
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(bad());
    }
    Ok(())
}

/// The parent of a key (`/a/b` → `/a`, `/a` → `/`); `None` for the root.
pub fn parent(key: &str) -> Option<&str> {
    if key == "/" {
        return None;
    }
    match key.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&key[..i]),
        None => None,
    }
}

/// Every proper ancestor of `key` except `/`, outermost first (`/a/b/c` → `/a`, `/a/b`).
pub fn ancestors(key: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut cur = parent(key);
    while let Some(p) = cur {
        if p == "/" {
            break;
        }
        out.push(p);
        cur = parent(p);
    }
    out.reverse();
    out
}

/// The last segment of a key.
pub fn name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// `parent` + `/` + `child`.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Whether `key` is `base` or below it.
pub fn is_at_or_below(key: &str, base: &str) -> bool {
    base == "/"
        || key == base
        || (key.starts_with(base) && key.as_bytes().get(base.len()) == Some(&b'/'))
}

/// Splits `ops` into transactions that each fit `limits`, with `guard` (e.g. a check on
/// the controller epoch) first in every chunk, so a large set of writes (a 10,000-partition
/// topic) is applied in resumable, individually fenced steps. A single operation that
/// cannot fit even alone is an error.
pub fn chunk(ops: Vec<Op>, guard: Option<&Op>, limits: &Limits) -> Result<Vec<Vec<Op>>> {
    let guard_size = guard.map_or(0, Op::size);
    let guard_ops = usize::from(guard.is_some());
    let max_ops = limits.max_ops_per_txn.saturating_sub(guard_ops).max(1);
    let max_bytes = limits.max_txn_bytes.saturating_sub(guard_size);
    let mut chunks = Vec::new();
    let mut current: Vec<Op> = Vec::new();
    let mut bytes = 0;
    for op in ops {
        let size = op.size();
        if size > max_bytes || size > limits.max_value_bytes + op.key().len() {
            return Err(Error::TooLarge {
                what: "operation",
                size,
                limit: max_bytes.min(limits.max_value_bytes),
            });
        }
        if !current.is_empty() && (current.len() >= max_ops || bytes + size > max_bytes) {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(op);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    Ok(chunks
        .into_iter()
        .map(|c| guard.cloned().into_iter().chain(c).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        for ok in ["/", "/a", "/a/b", "/brokers/ids/1"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "/a/", "//a", "/a//b", "/a/./b", "/a/..", "/a\0"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parents_and_names() {
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(ancestors("/a/b/c"), vec!["/a", "/a/b"]);
        assert_eq!(name("/a/b"), "b");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert!(is_at_or_below("/a/b", "/a"));
        assert!(is_at_or_below("/a", "/a"));
        assert!(!is_at_or_below("/ab", "/a"));
    }

    #[test]
    fn chunks_respect_limits_and_carry_the_guard() {
        let limits = Limits {
            max_ops_per_txn: 4,
            max_txn_bytes: 1000,
            max_value_bytes: 500,
        };
        let guard = Op::Check {
            key: "/controller_epoch".into(),
            version: 7,
        };
        let ops: Vec<Op> = (0..10)
            .map(|i| Op::Create {
                key: format!("/t/{i}"),
                value: vec![0; 10],
                ephemeral: false,
            })
            .collect();
        let chunks = chunk(ops.clone(), Some(&guard), &limits).expect("fits");
        assert_eq!(chunks.len(), 4, "3 writes + the guard per chunk");
        assert!(chunks.iter().all(|c| c[0] == guard && c.len() <= 4));
        let flat: Vec<Op> = chunks
            .into_iter()
            .flat_map(|c| c.into_iter().skip(1))
            .collect();
        assert_eq!(flat, ops);

        let big = vec![Op::Create {
            key: "/x".into(),
            value: vec![0; 2000],
            ephemeral: false,
        }];
        assert!(matches!(
            chunk(big, None, &limits),
            Err(Error::TooLarge { .. })
        ));
    }
}
