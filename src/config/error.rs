//! [`ConfigError`]: why a configuration could not be loaded, naming the file and the key.

use std::fmt;
use std::path::PathBuf;

/// Where in the file a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Top,
    Coordination,
    Config,
}

impl fmt::Display for Section {
    /// ` at the top level`, ` in [coordination]`, ` in [config]`: a suffix for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Top => " at the top level",
            Section::Coordination => " in [coordination]",
            Section::Config => " in [config]",
        })
    }
}

/// Why a configuration could not be loaded. Every message names the file (its path, or
/// the origin given to [`parse`](super::parse)) and, where there is one, the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML. The message carries the line and column.
    #[error("{origin}: not valid TOML: {message}")]
    Syntax { origin: String, message: String },
    /// A key no section knows.
    #[error("{origin}: unknown key `{key}`{section}{hint}")]
    UnknownKey {
        origin: String,
        section: Section,
        key: String,
        /// Empty, or `; ` and a suggestion.
        hint: String,
    },
    /// A required key is absent.
    #[error("{origin}: missing key `{key}`{section}: {hint}")]
    Missing {
        origin: String,
        section: Section,
        key: String,
        hint: String,
    },
    /// A value of the wrong type, out of range, or inconsistent with another.
    #[error("{origin}: invalid value for `{key}`{section}: {reason}")]
    Invalid {
        origin: String,
        section: Section,
        key: String,
        reason: String,
    },
    /// A `[config]` key that duplicates a top-level setting.
    #[error("{origin}: `{key}`{section} is not allowed: {pointer}")]
    Refused {
        origin: String,
        section: Section,
        key: String,
        pointer: String,
    },
    /// `log_level` or `RUST_LOG` is not a valid level or filter.
    #[error("invalid {variable} {value:?}: {reason}")]
    LogFilter {
        /// `log_level` or `RUST_LOG`.
        variable: &'static str,
        value: String,
        reason: String,
    },
    /// The log subscriber could not be installed (one is already installed).
    #[error("cannot install the log subscriber: {0}")]
    Logging(String),
}

impl ConfigError {
    /// The key the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. }
            | ConfigError::Missing { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::Refused { key, .. } => Some(key),
            ConfigError::LogFilter { variable, .. } => Some(variable),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } | ConfigError::Logging(_) => None,
        }
    }
}
