//! Process-wide logging: `tracing` events formatted to stderr.
//!
//! The filter comes from `RUST_LOG` when it is set (and not blank), else from the config
//! file's `log_level`, else [`DEFAULT_LEVEL`]. `log_level` is a level (`info`, `WARN`,
//! …) or a comma-separated list of directives each of which is a level or
//! `target=level` (`info,sluice::protocol=debug`); `RUST_LOG` takes tracing-subscriber's
//! full `EnvFilter` syntax. Either one, if invalid, is a start-up error naming it —
//! never a silently different filter.

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};

use crate::config::ConfigError;

/// The level when neither `RUST_LOG` nor `log_level` is set.
pub const DEFAULT_LEVEL: &str = "info";

/// Installs the global subscriber: fmt to stderr (colours only on a terminal), filtered
/// by `RUST_LOG`, else `level` (the config's `log_level`), else [`DEFAULT_LEVEL`].
///
/// Fails if the chosen filter is invalid, or if a global subscriber is already
/// installed (an embedding service that installs its own should not call this).
pub fn init(level: Option<&str>) -> Result<(), ConfigError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = choose_filter(level, rust_log.as_deref())?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|err| ConfigError::Logging(err.to_string()))?;
    log_panics();
    Ok(())
}

/// Routes panics into the log: a panic is a bug, and the one task it unwinds (a request
/// handler, a connection, an actor) is contained by tokio/actix while the broker keeps
/// serving everyone else — so it must be an error line with the thread and location in
/// the broker's log, not only text on stderr.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "<non-string panic payload>".to_string());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        tracing::error!(
            thread = thread.name().unwrap_or("<unnamed>"),
            %location,
            "panic (contained to its task): {message}"
        );
    }));
}

/// The filter [`init`] installs, given `log_level` and the value of `RUST_LOG`.
pub fn choose_filter(
    level: Option<&str>,
    rust_log: Option<&str>,
) -> Result<EnvFilter, ConfigError> {
    match rust_log.filter(|value| !value.trim().is_empty()) {
        Some(value) => parse_filter(value, true).map_err(|reason| ConfigError::LogFilter {
            variable: "RUST_LOG",
            value: value.to_string(),
            reason,
        }),
        None => {
            let level = level.unwrap_or(DEFAULT_LEVEL);
            parse_filter(level, false).map_err(|reason| ConfigError::LogFilter {
                variable: "log_level",
                value: level.to_string(),
                reason,
            })
        }
    }
}

/// Parses a filter. With `allow_targets` false (the config file's `log_level`), a
/// directive without `=` must be a level: `log_level = "verbose"` is a typo, not a filter
/// for a target named `verbose` (which is what `EnvFilter` would make of it).
pub fn parse_filter(text: &str, allow_targets: bool) -> Result<EnvFilter, String> {
    let expected = "expected a level (off, error, warn, info, debug, trace) or directives \
                    such as \"info,sluice=debug\"";
    if text.trim().is_empty() {
        return Err(format!("empty; {expected}"));
    }
    if !allow_targets {
        for directive in text.split(',').map(str::trim) {
            let level = match directive.rsplit_once('=') {
                Some((_, level)) => level,
                None => directive,
            };
            if LevelFilter::from_str(level.trim()).is_err() {
                return Err(format!("{directive:?} is not a level; {expected}"));
            }
        }
    }
    EnvFilter::builder()
        .with_regex(false)
        .parse(text)
        .map_err(|err| format!("{err}; {expected}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives() {
        for ok in [
            "info",
            "WARN",
            "debug",
            "off",
            "info,sluice=debug",
            "sluice::protocol=trace",
        ] {
            assert!(parse_filter(ok, false).is_ok(), "{ok}");
        }
        for bad in ["", "verbose", "info,loud", "sluice=loud", "warning"] {
            assert!(parse_filter(bad, false).is_err(), "{bad}");
        }
        // RUST_LOG may name bare targets, as EnvFilter allows.
        assert!(parse_filter("sluice", true).is_ok());
        assert!(parse_filter("sluice=loud", true).is_err());
    }

    #[test]
    fn rust_log_overrides_log_level() {
        let filter = choose_filter(Some("info"), Some("debug"));
        assert_eq!(filter.map(|f| f.to_string()).ok().as_deref(), Some("debug"));
        let filter = choose_filter(Some("warn"), Some("  "));
        assert_eq!(filter.map(|f| f.to_string()).ok().as_deref(), Some("warn"));
        let filter = choose_filter(None, None);
        assert_eq!(filter.map(|f| f.to_string()).ok().as_deref(), Some("info"));
    }

    #[test]
    fn errors_name_the_source() {
        let err = choose_filter(Some("loud"), None)
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("log_level")),
            "{err:?}"
        );
        let err = choose_filter(Some("info"), Some("x=loud"))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("RUST_LOG")),
            "{err:?}"
        );
    }
}
