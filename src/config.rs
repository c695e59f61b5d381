//! The broker node's configuration file: parsed, validated and typed in one place.
//!
//! The file is TOML (the format is a contract, see `SPEC.md` → Interfaces):
//!
//! ```toml
//! broker_id = 1
//! listen = "127.0.0.1:9092"          # the Kafka listener
//! advertised = "127.0.0.1:9092"      # optional: what clients are told (default: listen)
//! data_dir = "/var/lib/sluice/1"     # segment files, sled, checkpoints
//! log_level = "info"                 # optional; RUST_LOG overrides it
//!
//! [coordination]
//! backend = "zookeeper"              # "embedded", "zookeeper" or "etcd"
//! endpoints = ["127.0.0.1:2181"]     # required unless embedded
//! root = "/sluice"                   # chroot / key prefix (default "/sluice")
//! session_timeout_ms = 18000         # optional (Kafka's zookeeper.session.timeout.ms)
//! connect_timeout_ms = 18000         # optional (default: the session timeout)
//!
//! [config]                           # Kafka broker configs, Kafka's names and meanings
//! "num.partitions" = 3
//! "log.retention.hours" = 24
//! ```
//!
//! Keys under `[config]` are Kafka's broker config names with Kafka's defaults and
//! precedence. Values may be TOML strings, integers, floats or booleans; they are
//! converted to Kafka's string form and validated as Kafka validates them. Unquoted
//! dotted keys (`log.retention.hours = 24`) mean the same as quoted ones. The broker keys
//! that are synonyms of topic configs go through [`LogConfig::from_broker_props`], which
//! owns their precedence (`log.retention.ms` over `.minutes` over `.hours`); the others
//! are in [`BrokerSettings`].
//!
//! Nothing is silently ignored: an unknown key anywhere, a value of the wrong type or out
//! of range, or a `[config]` key that duplicates a top-level setting (`broker.id`,
//! `listeners`, `log.dirs`, `zookeeper.connect`, …) is a [`ConfigError`] naming the file
//! and the key.

mod error;
mod kafka;
mod settings;
mod suggest;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use sluice_actors::log::config::{broker_synonyms, LogConfig};
use sluice_coordination::{Backend, CoordinationConfig};

pub use error::{ConfigError, Section};
pub use kafka::known_broker_keys;
pub use settings::BrokerSettings;

/// `[coordination] root` when the file does not set it.
pub const DEFAULT_ROOT: &str = "/sluice";
/// `[coordination] session_timeout_ms` when the file does not set it: Kafka's
/// `zookeeper.session.timeout.ms` default.
pub const DEFAULT_SESSION_TIMEOUT_MS: u64 = 18_000;

/// The top-level keys of the file.
const TOP_LEVEL_KEYS: &[&str] = &[
    "broker_id",
    "listen",
    "advertised",
    "data_dir",
    "log_level",
    "coordination",
    "config",
];

/// The keys of `[coordination]`.
const COORDINATION_KEYS: &[&str] = &[
    "backend",
    "endpoints",
    "root",
    "session_timeout_ms",
    "connect_timeout_ms",
];

/// A broker node's configuration, as read from its file.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `broker_id`: this broker's id in the cluster (Kafka's `broker.id`), >= 0.
    pub broker_id: i32,
    /// `listen`: the address the Kafka listener binds (Kafka's `listeners`). Port 0
    /// binds an ephemeral port.
    pub listen: SocketAddr,
    /// `advertised`: the address clients are told to connect to (Kafka's
    /// `advertised.listeners`); `listen` when the file does not set it. Port 0 stands
    /// for the port `listen` was bound to: see [`BrokerConfig::advertised_with_port`].
    pub advertised: HostPort,
    /// `data_dir`: segment files, sled and checkpoints (Kafka's `log.dirs`), absolute
    /// (a relative path in the file is resolved against the current directory).
    pub data_dir: PathBuf,
    /// `log_level`: a tracing level (`info`) or directives (`info,sluice=debug`);
    /// `RUST_LOG` overrides it. See [`crate::logging::init`].
    pub log_level: Option<String>,
    /// `[coordination]`. For the embedded backend its `data_dir` is this broker's
    /// `data_dir` (the store keeps its files in the `coordination` directory below it).
    pub coordination: CoordinationConfig,
    /// `[config]`: the broker's own settings.
    pub broker: BrokerSettings,
    /// `[config]`: the broker-level defaults of every topic's log config (from the broker
    /// keys that are synonyms of topic configs, e.g. `log.retention.hours`).
    pub log_defaults: LogConfig,
    /// `[config]` as given in the file (keys as written, values in Kafka's string form):
    /// what DescribeConfigs reports as `STATIC_BROKER_CONFIG`.
    pub overrides: BTreeMap<String, String>,
}

/// A `host:port` pair as clients are told it; IPv6 hosts print in brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// Parses `host:port` or `[ipv6]:port`. No scheme, no path.
    pub fn parse(text: &str) -> Result<HostPort, String> {
        let example = "expected host:port, e.g. 127.0.0.1:9092";
        if text.contains("://") {
            return Err(format!("{text:?} has a scheme; {example}"));
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, port) = rest
                .split_once("]:")
                .ok_or_else(|| format!("{text:?} is not [ipv6]:port"))?;
            host.parse::<Ipv6Addr>()
                .map_err(|_| format!("{host:?} in {text:?} is not an IPv6 address"))?;
            (host, port)
        } else {
            let (host, port) = text
                .rsplit_once(':')
                .ok_or_else(|| format!("{text:?} has no port; {example}"))?;
            if host.contains(':') {
                return Err(format!(
                    "{text:?}: an IPv6 address must be in brackets, e.g. [::1]:9092"
                ));
            }
            let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
            if host.is_empty() || !host.chars().all(valid) {
                return Err(format!(
                    "{host:?} in {text:?} is not a host name; {example}"
                ));
            }
            (host, port)
        };
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("port {port:?} in {text:?} is not a number in [0, 65535]"))?;
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }

    /// Whether the host is the wildcard address (`0.0.0.0`, `::`), which clients cannot
    /// connect to.
    fn is_wildcard(&self) -> bool {
        self.host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
    }
}

impl From<SocketAddr> for HostPort {
    fn from(addr: SocketAddr) -> HostPort {
        HostPort {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// Reads and parses the config file at `path`; errors name the path.
pub fn load(path: &Path) -> Result<BrokerConfig> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses a config file's text; `origin` (usually the path) names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<BrokerConfig> {
    let table: toml::Table = text
        .parse()
        .map_err(|err: toml::de::Error| ConfigError::Syntax {
            origin: origin.to_string(),
            message: err.to_string().trim_end().to_string(),
        })?;
    let mut top = Fields::new(origin, Section::Top, table);
    top.reject_unknown(TOP_LEVEL_KEYS, suggest::top_level_hint)?;

    let broker_id = top.required("broker_id", "the broker's id, e.g. broker_id = 1")?;
    let broker_id = top.integer("broker_id", &broker_id, 0, i64::from(i32::MAX))?;
    let broker_id =
        i32::try_from(broker_id).map_err(|_| top.invalid("broker_id", "out of range"))?;

    let listen = top.required(
        "listen",
        "the Kafka listener, e.g. listen = \"127.0.0.1:9092\"",
    )?;
    let listen = top.string("listen", &listen)?;
    let (listen, listen_as_written) =
        parse_listen(&listen).map_err(|reason| top.invalid("listen", reason))?;

    let advertised = match top.take("advertised") {
        Some(value) => {
            let text = top.string("advertised", &value)?;
            let advertised =
                HostPort::parse(&text).map_err(|reason| top.invalid("advertised", reason))?;
            if advertised.is_wildcard() {
                return Err(top.invalid(
                    "advertised",
                    format!("{text:?} is the wildcard address, which clients cannot connect to"),
                ));
            }
            advertised
        }
        None if listen.ip().is_unspecified() => {
            return Err(top.missing(
                "advertised",
                format!(
                    "listen binds the wildcard address {}, which clients cannot connect to; \
                     set advertised to the host:port clients should use",
                    listen.ip()
                ),
            ))
        }
        None => listen_as_written,
    };

    let data_dir = top.required(
        "data_dir",
        "where the broker keeps its data, e.g. data_dir = \"/var/lib/sluice\"",
    )?;
    let data_dir = top.string("data_dir", &data_dir)?;
    let data_dir = resolve_dir(&data_dir).map_err(|reason| top.invalid("data_dir", reason))?;

    let log_level = match top.take("log_level") {
        Some(value) => {
            let level = top.string("log_level", &value)?;
            crate::logging::parse_filter(&level, false)
                .map_err(|reason| top.invalid("log_level", reason))?;
            Some(level)
        }
        None => None,
    };

    let coordination = top.required(
        "coordination",
        "add a [coordination] section with backend = \"embedded\", \"zookeeper\" or \"etcd\"",
    )?;
    let coordination = top.table("coordination", coordination)?;
    let coordination = parse_coordination(origin, coordination, &data_dir)?;

    let kafka = match top.take("config") {
        Some(value) => top.table("config", value)?,
        None => toml::Table::new(),
    };
    let (broker, log_defaults, overrides) = kafka::parse_kafka_section(origin, kafka)?;

    Ok(BrokerConfig {
        broker_id,
        listen,
        advertised,
        data_dir,
        log_level,
        coordination,
        broker,
        log_defaults,
        overrides,
    })
}

impl BrokerConfig {
    /// The address to advertise once `listen` is bound to `bound_port`: `advertised`,
    /// with a port of 0 (from `listen = "…:0"`) replaced by the bound port, as Kafka does.
    pub fn advertised_with_port(&self, bound_port: u16) -> HostPort {
        let mut advertised = self.advertised.clone();
        if advertised.port == 0 {
            advertised.port = bound_port;
        }
        advertised
    }

    /// Every broker-level `[config]` key Sluice knows with its effective value in Kafka's
    /// string form: the [`BrokerSettings`], and for each topic config the
    /// highest-precedence broker synonym (`log.retention.ms`, not `.hours`). For
    /// DescribeConfigs; a key in [`BrokerConfig::overrides`] is a static broker config,
    /// any other a default.
    pub fn effective_props(&self) -> BTreeMap<String, String> {
        let mut props = self.broker.to_props();
        for (topic_key, value) in self.log_defaults.to_props() {
            if let Some(synonym) = broker_synonyms(&topic_key).first() {
                props.insert(synonym.name.to_string(), value);
            }
        }
        props
    }

    /// The `[config]` lines of [`Display`](fmt::Display): key, TOML literal (`None` for
    /// null), and a provenance comment.
    fn config_lines(&self) -> Vec<(String, Option<String>, Option<String>)> {
        let from = |key: &str| {
            self.overrides
                .get(key)
                .map(|value| format!("from {key} = {}", value.escape_debug()))
        };
        let mut lines: Vec<_> = self
            .broker
            .toml_literals()
            .into_iter()
            .map(|(key, literal)| (key.to_string(), literal, from(key)))
            .collect();
        for (topic_key, value) in self.log_defaults.to_props() {
            let synonyms = broker_synonyms(&topic_key);
            let Some(primary) = synonyms.first() else {
                continue;
            };
            let source = synonyms.iter().find_map(|synonym| from(synonym.name));
            lines.push((primary.name.to_string(), Some(literal_for(&value)), source));
        }
        lines.sort_by(|a, b| a.0.cmp(&b.0));
        lines
    }
}

impl fmt::Display for BrokerConfig {
    /// The effective configuration, one key per line, as a config file that parses back
    /// to the same settings. `[config]` lists every broker key Sluice knows; a comment
    /// says which file key a value came from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use settings::toml_string;
        writeln!(f, "broker_id = {}", self.broker_id)?;
        writeln!(f, "listen = {}", toml_string(&self.listen.to_string()))?;
        writeln!(
            f,
            "advertised = {}",
            toml_string(&self.advertised.to_string())
        )?;
        writeln!(
            f,
            "data_dir = {}",
            toml_string(&self.data_dir.display().to_string())
        )?;
        match &self.log_level {
            Some(level) => writeln!(f, "log_level = {}", toml_string(level))?,
            None => writeln!(
                f,
                "# log_level is not set: RUST_LOG, else \"{}\"",
                crate::logging::DEFAULT_LEVEL
            )?,
        }
        let c = &self.coordination;
        writeln!(f, "\n[coordination]")?;
        writeln!(f, "backend = {}", toml_string(c.backend.name()))?;
        let endpoints: Vec<String> = c.endpoints.iter().map(|e| toml_string(e)).collect();
        writeln!(f, "endpoints = [{}]", endpoints.join(", "))?;
        writeln!(f, "root = {}", toml_string(&c.root))?;
        writeln!(f, "session_timeout_ms = {}", c.session_timeout.as_millis())?;
        writeln!(f, "connect_timeout_ms = {}", c.connect_timeout.as_millis())?;
        writeln!(f, "\n[config]")?;
        for (key, literal, source) in self.config_lines() {
            let key = toml_string(&key);
            match (literal, source) {
                (Some(literal), Some(source)) => writeln!(f, "{key} = {literal}  # {source}")?,
                (Some(literal), None) => writeln!(f, "{key} = {literal}")?,
                (None, _) => writeln!(f, "# {key} is not set")?,
            }
        }
        Ok(())
    }
}

/// A Kafka string value as a TOML literal that converts back to the same string:
/// canonical numbers and booleans bare, anything else quoted.
fn literal_for(value: &str) -> String {
    let numeric = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'));
    let canonical_int = value.parse::<i64>().is_ok_and(|v| v.to_string() == value);
    let canonical_float = value
        .parse::<f64>()
        .is_ok_and(|v| v.is_finite() && format!("{v:?}") == value);
    if value == "true" || value == "false" || (numeric && (canonical_int || canonical_float)) {
        value.to_string()
    } else {
        settings::toml_string(value)
    }
}

/// The keys of one table of the file, taken one by one; errors name the file, the
/// section and the key.
struct Fields<'a> {
    origin: &'a str,
    section: Section,
    table: toml::Table,
}

impl<'a> Fields<'a> {
    fn new(origin: &'a str, section: Section, table: toml::Table) -> Fields<'a> {
        Fields {
            origin,
            section,
            table,
        }
    }

    /// Fails on the first key not in `known`, with `hint(key)` appended.
    fn reject_unknown(&self, known: &[&str], hint: fn(&str) -> String) -> Result<()> {
        match self.table.keys().find(|key| !known.contains(&key.as_str())) {
            Some(key) => Err(ConfigError::UnknownKey {
                origin: self.origin.to_string(),
                section: self.section,
                key: key.clone(),
                hint: hint(key),
            }),
            None => Ok(()),
        }
    }

    fn take(&mut self, key: &str) -> Option<toml::Value> {
        self.table.remove(key)
    }

    fn required(&mut self, key: &str, hint: &str) -> Result<toml::Value> {
        self.take(key).ok_or_else(|| self.missing(key, hint))
    }

    fn missing(&self, key: &str, hint: impl Into<String>) -> ConfigError {
        ConfigError::Missing {
            origin: self.origin.to_string(),
            section: self.section,
            key: key.to_string(),
            hint: hint.into(),
        }
    }

    fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        invalid(self.origin, self.section, key, reason)
    }

    fn integer(&self, key: &str, value: &toml::Value, min: i64, max: i64) -> Result<i64> {
        let expected = if max == i64::MAX {
            format!("an integer >= {min}")
        } else {
            format!("an integer in [{min}, {max}]")
        };
        match value {
            toml::Value::Integer(v) if (min..=max).contains(v) => Ok(*v),
            toml::Value::Integer(v) => {
                Err(self.invalid(key, format!("{v} is out of range; expected {expected}")))
            }
            other => Err(self.invalid(
                key,
                format!("expected {expected}, found {}", describe(other)),
            )),
        }
    }

    fn string(&self, key: &str, value: &toml::Value) -> Result<String> {
        match value {
            toml::Value::String(s) => Ok(s.clone()),
            other => {
                Err(self.invalid(key, format!("expected a string, found {}", describe(other))))
            }
        }
    }

    fn table(&self, key: &str, value: toml::Value) -> Result<toml::Table> {
        match value {
            toml::Value::Table(table) => Ok(table),
            other => Err(self.invalid(
                key,
                format!("expected a [{key}] section, found {}", describe(&other)),
            )),
        }
    }
}

fn invalid(origin: &str, section: Section, key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_string(),
        section,
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// A TOML value's type and, for scalars, the value itself, for messages.
fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Integer(i) => format!("the integer {i}"),
        toml::Value::Float(x) => format!("the float {x:?}"),
        toml::Value::Boolean(b) => format!("the boolean {b}"),
        toml::Value::Datetime(d) => format!("the date-time {d}"),
        toml::Value::Array(_) => "an array".to_string(),
        toml::Value::Table(_) => "a table".to_string(),
    }
}

/// `listen`: an IP:port, or a host name:port resolved to its first address (IPv4
/// first, as clients of a name that resolves both ways usually try IPv4). Also returns
/// the address as written, which is what `advertised` defaults to: a host name stays a
/// name, as Kafka's `advertised.listeners` defaults to `listeners` verbatim.
fn parse_listen(text: &str) -> Result<(SocketAddr, HostPort), String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok((addr, HostPort::from(addr)));
    }
    let written = HostPort::parse(text)?;
    let addrs: Vec<SocketAddr> = (written.host.as_str(), written.port)
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {text:?}: {err}"))?
        .collect();
    let addr = addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("{text:?} resolves to no address"))?;
    Ok((addr, written))
}

/// `data_dir`: absolute, `.` components dropped. `~` is not the shell's and is refused.
fn resolve_dir(text: &str) -> Result<PathBuf, String> {
    if text.trim().is_empty() {
        return Err("the path is empty".to_string());
    }
    if text == "~" || text.starts_with("~/") {
        return Err(format!(
            "{text:?}: `~` is not expanded; write the full path"
        ));
    }
    let path = Path::new(text);
    let mut resolved = if path.is_absolute() {
        PathBuf::new()
    } else {
        std::env::current_dir()
            .map_err(|err| format!("cannot resolve {text:?}: no current directory: {err}"))?
    };
    for component in path.components() {
        if component != Component::CurDir {
            resolved.push(component);
        }
    }
    Ok(resolved)
}

fn parse_coordination(
    origin: &str,
    table: toml::Table,
    data_dir: &Path,
) -> Result<CoordinationConfig> {
    let mut fields = Fields::new(origin, Section::Coordination, table);
    fields.reject_unknown(COORDINATION_KEYS, suggest::coordination_hint)?;

    let backend = fields.required("backend", "one of \"embedded\", \"zookeeper\", \"etcd\"")?;
    let backend = fields.string("backend", &backend)?;
    let backend = Backend::from_name(backend.trim()).map_err(|_| {
        fields.invalid(
            "backend",
            format!("{backend:?} is not one of \"embedded\", \"zookeeper\", \"etcd\""),
        )
    })?;

    let endpoints = match fields.take("endpoints") {
        Some(value) => parse_endpoints(&fields, backend, &value)?,
        None => Vec::new(),
    };
    if endpoints.is_empty() && backend != Backend::Embedded {
        return Err(fields.missing(
            "endpoints",
            format!(
                "the {} backend needs at least one host:port, e.g. endpoints = [\"127.0.0.1:{}\"]",
                backend.name(),
                if backend == Backend::Etcd { 2379 } else { 2181 }
            ),
        ));
    }

    let root = match fields.take("root") {
        Some(value) => fields.string("root", &value)?,
        None => DEFAULT_ROOT.to_string(),
    };
    sluice_coordination::keys::validate(&root).map_err(|_| {
        fields.invalid(
            "root",
            format!("{root:?} is not an absolute path like \"/sluice\" (no trailing `/`, no empty, `.` or `..` parts)"),
        )
    })?;

    let max_ms = i64::from(i32::MAX);
    let session_ms = match fields.take("session_timeout_ms") {
        Some(value) => fields
            .integer("session_timeout_ms", &value, 1, max_ms)?
            .unsigned_abs(),
        None => DEFAULT_SESSION_TIMEOUT_MS,
    };
    let connect_ms = match fields.take("connect_timeout_ms") {
        Some(value) => fields
            .integer("connect_timeout_ms", &value, 1, max_ms)?
            .unsigned_abs(),
        None => session_ms,
    };

    let mut config = CoordinationConfig::new(backend);
    config.endpoints = endpoints.iter().map(ToString::to_string).collect();
    config.root = root;
    config.session_timeout = Duration::from_millis(session_ms);
    config.connect_timeout = Duration::from_millis(connect_ms);
    // The embedded store appends its own `coordination` directory to this.
    config.data_dir = (backend == Backend::Embedded).then(|| data_dir.to_path_buf());
    config
        .validate()
        .map_err(|err| fields.invalid("backend", err.to_string()))?;
    Ok(config)
}

/// `endpoints`: an array of `host:port` strings, or one comma-separated string (as in
/// Kafka's `zookeeper.connect`).
fn parse_endpoints(
    fields: &Fields<'_>,
    backend: Backend,
    value: &toml::Value,
) -> Result<Vec<HostPort>> {
    let key = "endpoints";
    let items: Vec<String> = match value {
        toml::Value::String(list) => list
            .split(',')
            .map(|item| item.trim().to_string())
            .filter(|item| !item.is_empty())
            .collect(),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| fields.string(key, item).map(|s| s.trim().to_string()))
            .collect::<Result<_>>()?,
        other => {
            return Err(fields.invalid(
                key,
                format!(
                    "expected an array of \"host:port\" strings, found {}",
                    describe(other)
                ),
            ))
        }
    };
    items
        .iter()
        .map(|item| {
            if backend == Backend::ZooKeeper && item.contains('/') && !item.contains("://") {
                return Err(fields.invalid(
                    key,
                    format!("{item:?} carries a chroot; give the path as `root` instead"),
                ));
            }
            let endpoint = HostPort::parse(item).map_err(|reason| fields.invalid(key, reason))?;
            if endpoint.port == 0 {
                return Err(fields.invalid(key, format!("{item:?}: port 0 is not a server's port")));
            }
            Ok(endpoint)
        })
        .collect()
}

#[cfg(test)]
mod tests;
