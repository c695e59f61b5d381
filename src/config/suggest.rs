//! Hints for unknown keys: where a key belongs instead, or the closest known key.

use sluice_actors::log::config::broker_synonyms;

use super::kafka::{is_known_broker_key, known_broker_keys};
use super::settings::{self};
use super::{COORDINATION_KEYS, TOP_LEVEL_KEYS};

pub(super) fn top_level_hint(key: &str) -> String {
    if let Some(pointer) = settings::refused(key) {
        return format!("; {pointer}");
    }
    if is_known_broker_key(key) {
        return format!("; Kafka broker configs go under [config]: \"{key}\" = …");
    }
    if COORDINATION_KEYS.contains(&key) {
        return "; it belongs under [coordination]".to_string();
    }
    did_you_mean(key, TOP_LEVEL_KEYS.iter().copied())
}

pub(super) fn coordination_hint(key: &str) -> String {
    if let Some(pointer) = settings::refused(key) {
        return format!("; {pointer}");
    }
    if TOP_LEVEL_KEYS.contains(&key) {
        return "; it is a top-level key (put it before any [section])".to_string();
    }
    if is_known_broker_key(key) {
        return "; Kafka broker configs go under [config]".to_string();
    }
    did_you_mean(key, COORDINATION_KEYS.iter().copied())
}

pub(super) fn config_hint(key: &str) -> String {
    if let Some(synonym) = broker_synonyms(key).first() {
        return format!(
            "; `{key}` is a topic-level config, the broker-wide default is `{}`",
            synonym.name
        );
    }
    if TOP_LEVEL_KEYS.contains(&key) {
        return "; it is a top-level key (put it before any [section])".to_string();
    }
    if COORDINATION_KEYS.contains(&key) {
        return "; it belongs under [coordination]".to_string();
    }
    let suggestion = did_you_mean(key, known_broker_keys().into_iter());
    if suggestion.is_empty() {
        "; not a Kafka broker config Sluice supports (`sluice --help` lists them)".to_string()
    } else {
        suggestion
    }
}

/// `; did you mean `x`?` for the closest candidate within a small edit distance
/// (ignoring case and `_`/`-`/`.` differences), else empty.
pub(super) fn did_you_mean<'k>(key: &str, candidates: impl Iterator<Item = &'k str>) -> String {
    let normalise = |s: &str| -> Vec<char> {
        s.chars()
            .map(|c| match c {
                '_' | '-' => '.',
                c => c.to_ascii_lowercase(),
            })
            .collect()
    };
    let wanted = normalise(key);
    let limit = 2 + wanted.len() / 12;
    candidates
        .map(|candidate| (edit_distance(&wanted, &normalise(candidate)), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| format!("; did you mean `{candidate}`?"))
        .unwrap_or_default()
}

/// Levenshtein distance.
pub(super) fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
