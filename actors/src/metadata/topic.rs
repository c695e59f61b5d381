//! Kafka's rules for topic names (`org.apache.kafka.common.internals.Topic`).

use crate::{Error, Result};

/// The longest legal topic name (Kafka: 249, so that a partition directory name
/// `<topic>-<partition>` and its suffixes fit in 255 bytes).
pub const MAX_NAME_LENGTH: usize = 249;

/// Checks a topic name as Kafka does: not empty, not `.` or `..`, at most
/// [`MAX_NAME_LENGTH`] characters, only ASCII alphanumerics, `.`, `_` and `-`. A valid
/// name is also a valid coordination path segment.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidTopic(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(Error::InvalidTopic(
            "Topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(Error::InvalidTopic(format!(
            "Topic name is illegal, it can't be longer than {MAX_NAME_LENGTH} characters, \
             topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(Error::InvalidTopic(format!(
            "Topic name {name:?} is illegal, it contains a character other than ASCII \
             alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// The name with `.` replaced by `_`: two topics whose names agree this way would share
/// metric names in Kafka, so Kafka refuses to create the second one.
pub fn unify_collision_chars(name: &str) -> String {
    name.replace('.', "_")
}

/// Whether `a` and `b` are different names that collide (see [`unify_collision_chars`]).
pub fn collide(a: &str, b: &str) -> bool {
    a != b && unify_collision_chars(a) == unify_collision_chars(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafkas_rules() {
        for ok in ["a", "A.b_c-9", "__consumer_offsets", &"x".repeat(249)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "ü", &"x".repeat(250)] {
            assert!(
                matches!(validate_name(bad), Err(Error::InvalidTopic(_))),
                "{bad}"
            );
        }
        assert!(collide("a.b", "a_b"));
        assert!(!collide("a.b", "a.b"));
        assert!(!collide("a.b", "a-b"));
    }
}
