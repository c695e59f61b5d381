//! Unit tests of the config file: the SPEC example, defaults, precedence, and an error
//! naming the key for every kind of bad input.

use sluice_actors::log::config::topic_config_for_broker_config;

use super::suggest::{did_you_mean, edit_distance};
use super::*;

/// The example from SPEC.md → Interfaces, verbatim.
const SPEC_EXAMPLE: &str = r#"
broker_id = 1
listen = "127.0.0.1:9092"          # Kafka listener; port 0 is not required
advertised = "127.0.0.1:9092"      # optional: the address clients are told (default: listen)
data_dir = "/path/to/broker-1"     # segment files, sled, checkpoints
log_level = "info"                 # optional; RUST_LOG overrides it

[coordination]
backend = "embedded"               # or "zookeeper" or "etcd"
endpoints = ["127.0.0.1:2181"]     # ignored by embedded
root = "/sluice"                   # chroot / key prefix, so clusters can share one ZK or etcd

[config]                           # broker-level defaults, Kafka's own names and meanings
"num.partitions" = 1
"default.replication.factor" = 1
"min.insync.replicas" = 1
"auto.create.topics.enable" = true
"log.segment.bytes" = 1073741824
"log.retention.ms" = 604800000
"#;

const MINIMAL: &str = r#"
broker_id = 0
listen = "127.0.0.1:9092"
data_dir = "/data"
[coordination]
backend = "embedded"
"#;

/// `MINIMAL` with `extra` lines appended under `[config]`.
fn with_config(extra: &str) -> String {
    format!("{MINIMAL}[config]\n{extra}\n")
}

fn parse_ok(text: &str) -> BrokerConfig {
    match parse(text, "test.toml") {
        Ok(config) => config,
        Err(err) => panic!("{err}\n--- in:\n{text}"),
    }
}

/// Asserts `text` fails naming `key`, and returns the message.
fn parse_err(text: &str, key: &str) -> String {
    match parse(text, "test.toml") {
        Ok(_) => panic!("expected an error naming {key} in:\n{text}"),
        Err(err) => {
            let message = err.to_string();
            assert_eq!(err.key(), Some(key), "{message}");
            assert!(message.contains(key), "{message}");
            assert!(message.starts_with("test.toml: "), "{message}");
            message
        }
    }
}

#[test]
fn spec_example_parses() {
    let c = parse_ok(SPEC_EXAMPLE);
    assert_eq!(c.broker_id, 1);
    assert_eq!(
        c.listen,
        "127.0.0.1:9092".parse::<SocketAddr>().ok().unwrap()
    );
    assert_eq!(c.advertised.to_string(), "127.0.0.1:9092");
    assert_eq!(c.data_dir, PathBuf::from("/path/to/broker-1"));
    assert_eq!(c.log_level.as_deref(), Some("info"));
    assert_eq!(c.coordination.backend, Backend::Embedded);
    assert_eq!(c.coordination.endpoints, ["127.0.0.1:2181"]);
    assert_eq!(c.coordination.root, "/sluice");
    assert_eq!(
        c.coordination.data_dir,
        Some(PathBuf::from("/path/to/broker-1"))
    );
    assert_eq!(c.broker.num_partitions, 1);
    assert_eq!(c.broker.default_replication_factor, 1);
    assert!(c.broker.auto_create_topics_enable);
    assert_eq!(c.log_defaults.min_insync_replicas, 1);
    assert_eq!(c.log_defaults.segment_bytes, 1_073_741_824);
    assert_eq!(c.log_defaults.retention_ms, 604_800_000);
    assert_eq!(c.overrides.len(), 6);
    assert_eq!(
        c.overrides
            .get("auto.create.topics.enable")
            .map(String::as_str),
        Some("true")
    );
}

#[test]
fn defaults_are_kafkas() {
    let c = parse_ok(MINIMAL);
    assert_eq!(c.broker, BrokerSettings::default());
    assert_eq!(c.log_defaults, LogConfig::default());
    assert!(c.overrides.is_empty());
    assert_eq!(c.log_level, None);
    assert_eq!(c.coordination.root, DEFAULT_ROOT);
    assert_eq!(
        c.coordination.session_timeout,
        Duration::from_millis(18_000)
    );
    assert_eq!(
        c.coordination.connect_timeout,
        Duration::from_millis(18_000)
    );
    assert!(c.coordination.endpoints.is_empty());
    let p = c.effective_props();
    let expect = [
        ("num.partitions", "1"),
        ("default.replication.factor", "1"),
        ("min.insync.replicas", "1"),
        ("auto.create.topics.enable", "true"),
        ("delete.topic.enable", "true"),
        ("message.max.bytes", "1048588"),
        ("socket.request.max.bytes", "104857600"),
        ("offsets.topic.num.partitions", "50"),
        ("offsets.topic.replication.factor", "3"),
        ("group.initial.rebalance.delay.ms", "3000"),
        ("log.retention.check.interval.ms", "300000"),
        ("log.cleaner.enable", "true"),
        ("log.cleaner.dedupe.buffer.size", "134217728"),
        ("log.flush.interval.messages", "9223372036854775807"),
        ("log.flush.interval.ms", "9223372036854775807"),
        ("replica.lag.time.max.ms", "30000"),
        ("unclean.leader.election.enable", "false"),
        ("producer.id.expiration.ms", "86400000"),
        ("transactional.id.expiration.ms", "604800000"),
        ("log.retention.ms", "604800000"),
        ("log.segment.bytes", "1073741824"),
        (
            "log.cleaner.io.max.bytes.per.second",
            "1.7976931348623157E308",
        ),
        ("log.cleaner.io.buffer.load.factor", "0.9"),
        ("log.cleanup.policy", "delete"),
    ];
    for (key, value) in expect {
        assert_eq!(p.get(key).map(String::as_str), Some(value), "{key}");
    }
    assert!(!p.contains_key("broker.rack"));
    assert!(
        !p.contains_key("log.retention.hours"),
        "only the primary synonym"
    );
}

#[test]
fn connect_timeout_defaults_to_session_timeout() {
    let text = MINIMAL.replace(
        "backend = \"embedded\"",
        "backend = \"embedded\"\nsession_timeout_ms = 6000",
    );
    let c = parse_ok(&text);
    assert_eq!(c.coordination.session_timeout, Duration::from_millis(6000));
    assert_eq!(c.coordination.connect_timeout, Duration::from_millis(6000));
    let text = text.replace("6000", "6000\nconnect_timeout_ms = 500");
    let c = parse_ok(&text);
    assert_eq!(c.coordination.connect_timeout, Duration::from_millis(500));
}

#[test]
fn retention_and_roll_precedence() {
    let c = parse_ok(&with_config(
        "\"log.retention.hours\" = 1\n\"log.retention.minutes\" = 30\n\"log.retention.ms\" = 1000",
    ));
    assert_eq!(c.log_defaults.retention_ms, 1000);
    let c = parse_ok(&with_config(
        "\"log.retention.hours\" = 1\n\"log.retention.minutes\" = 30",
    ));
    assert_eq!(c.log_defaults.retention_ms, 30 * 60_000);
    let c = parse_ok(&with_config("\"log.retention.hours\" = 2"));
    assert_eq!(c.log_defaults.retention_ms, 2 * 3_600_000);
    assert_eq!(
        c.effective_props()
            .get("log.retention.ms")
            .map(String::as_str),
        Some("7200000")
    );
    let c = parse_ok(&with_config("\"log.retention.hours\" = -1"));
    assert_eq!(c.log_defaults.retention_ms, -1);
    let c = parse_ok(&with_config(
        "\"log.roll.hours\" = 1\n\"log.roll.ms\" = 5000",
    ));
    assert_eq!(c.log_defaults.segment_ms, 5000);
    // message.max.bytes is the broker name of max.message.bytes.
    let c = parse_ok(&with_config("\"message.max.bytes\" = 2000000"));
    assert_eq!(c.log_defaults.max_message_bytes, 2_000_000);
    // log.flush.scheduler.interval.ms is a broker setting and flush.ms's fallback.
    let c = parse_ok(&with_config("\"log.flush.scheduler.interval.ms\" = 3000"));
    assert_eq!(c.broker.log_flush_scheduler_interval_ms, 3000);
    assert_eq!(c.log_defaults.flush_ms, 3000);
}

#[test]
fn values_of_every_toml_type() {
    let c = parse_ok(&with_config(
        "\"num.partitions\" = \"4\"\n\
         \"auto.create.topics.enable\" = \"FALSE\"\n\
         \"delete.topic.enable\" = false\n\
         \"log.cleaner.min.cleanable.ratio\" = 0.25\n\
         \"log.cleaner.io.buffer.load.factor\" = \"0.5\"\n\
         \"log.cleanup.policy\" = [\"compact\", \"delete\"]\n\
         \"compression.type\" = \"zstd\"\n\
         \"broker.rack\" = \"rack-a\"",
    ));
    assert_eq!(c.broker.num_partitions, 4);
    assert!(!c.broker.auto_create_topics_enable);
    assert!(!c.broker.delete_topic_enable);
    assert_eq!(c.log_defaults.min_cleanable_dirty_ratio, 0.25);
    assert_eq!(c.broker.log_cleaner_io_buffer_load_factor, 0.5);
    assert!(c.log_defaults.cleanup_policy.compact && c.log_defaults.cleanup_policy.delete);
    assert_eq!(
        c.overrides.get("log.cleanup.policy").map(String::as_str),
        Some("compact,delete")
    );
    assert_eq!(c.broker.broker_rack.as_deref(), Some("rack-a"));
}

#[test]
fn dotted_keys_mean_quoted_keys() {
    let c = parse_ok(&with_config("num.partitions = 6\nlog.retention.hours = 5"));
    assert_eq!(c.broker.num_partitions, 6);
    assert_eq!(c.log_defaults.retention_ms, 5 * 3_600_000);
    assert!(c.overrides.contains_key("num.partitions"));
    let message = parse_err(
        &with_config("\"num.partitions\" = 6\nnum.partitions = 7"),
        "num.partitions",
    );
    assert!(message.contains("more than once"), "{message}");
}

#[test]
fn unknown_keys_are_errors_at_every_level() {
    let m = parse_err(&format!("brokerid = 1\n{MINIMAL}"), "brokerid");
    assert!(
        m.contains("at the top level") && m.contains("did you mean `broker_id`"),
        "{m}"
    );
    let m = parse_err(
        &format!("\"num.partitions\" = 1\n{MINIMAL}"),
        "num.partitions",
    );
    assert!(m.contains("go under [config]"), "{m}");
    let m = parse_err(&format!("{MINIMAL}endpoint = [\"a:1\"]\n"), "endpoint");
    assert!(
        m.contains("in [coordination]") && m.contains("did you mean `endpoints`"),
        "{m}"
    );
    let m = parse_err(&with_config("\"num.partition\" = 1"), "num.partition");
    assert!(
        m.contains("in [config]") && m.contains("did you mean `num.partitions`"),
        "{m}"
    );
    let m = parse_err(&with_config("\"retention.ms\" = 1"), "retention.ms");
    assert!(
        m.contains("topic-level") && m.contains("log.retention.ms"),
        "{m}"
    );
    let m = parse_err(
        &with_config("\"ssl.keystore.location\" = \"/x\""),
        "ssl.keystore.location",
    );
    assert!(
        m.contains("not a Kafka broker config Sluice supports"),
        "{m}"
    );
    parse_err(&format!("{MINIMAL}[coordination.extra]\nx = 1\n"), "extra");
    parse_err(&format!("{MINIMAL}[other]\nx = 1\n"), "other");
}

#[test]
fn bad_values_name_the_key() {
    let top = |from: &str, to: &str| MINIMAL.replace(from, to);
    parse_err(&top("broker_id = 0", "broker_id = -1"), "broker_id");
    parse_err(&top("broker_id = 0", "broker_id = \"1\""), "broker_id");
    parse_err(&top("broker_id = 0", "broker_id = 2147483648"), "broker_id");
    parse_err(&top("\"127.0.0.1:9092\"", "\"127.0.0.1\""), "listen");
    parse_err(&top("\"127.0.0.1:9092\"", "9092"), "listen");
    parse_err(&top("\"127.0.0.1:9092\"", "\"127.0.0.1:99999\""), "listen");
    parse_err(&top("data_dir = \"/data\"", "data_dir = \"\""), "data_dir");
    parse_err(
        &top("data_dir = \"/data\"", "data_dir = \"~/data\""),
        "data_dir",
    );
    parse_err(&format!("log_level = \"loud\"\n{MINIMAL}"), "log_level");
    parse_err(&format!("advertised = \"host\"\n{MINIMAL}"), "advertised");
    parse_err(
        &format!("advertised = \"http://host:9092\"\n{MINIMAL}"),
        "advertised",
    );
    parse_err(
        &format!("advertised = \"0.0.0.0:9092\"\n{MINIMAL}"),
        "advertised",
    );
    parse_err(&top("\"embedded\"", "\"consul\""), "backend");
    parse_err(&top("\"embedded\"", "1"), "backend");
    parse_err(&format!("{MINIMAL}root = \"sluice\"\n"), "root");
    parse_err(&format!("{MINIMAL}root = \"/sluice/\"\n"), "root");
    parse_err(
        &format!("{MINIMAL}session_timeout_ms = 0\n"),
        "session_timeout_ms",
    );
    parse_err(
        &format!("{MINIMAL}connect_timeout_ms = \"1s\"\n"),
        "connect_timeout_ms",
    );
    parse_err(&format!("{MINIMAL}endpoints = [\"nohost\"]\n"), "endpoints");
    parse_err(&format!("{MINIMAL}endpoints = [2181]\n"), "endpoints");
    parse_err(&format!("config = 1\n{MINIMAL}"), "config");
    let config_cases: &[(&str, &str)] = &[
        ("\"num.partitions\" = 0", "num.partitions"),
        ("\"num.partitions\" = \"many\"", "num.partitions"),
        ("\"num.partitions\" = 2.0", "num.partitions"),
        ("\"num.partitions\" = true", "num.partitions"),
        ("\"num.partitions\" = [1]", "num.partitions"),
        ("\"num.partitions\" = 1979-05-27", "num.partitions"),
        (
            "\"auto.create.topics.enable\" = 1",
            "auto.create.topics.enable",
        ),
        (
            "\"offsets.topic.replication.factor\" = 40000",
            "offsets.topic.replication.factor",
        ),
        (
            "\"socket.request.max.bytes\" = 0",
            "socket.request.max.bytes",
        ),
        ("\"message.max.bytes\" = -1", "message.max.bytes"),
        ("\"min.insync.replicas\" = 0", "min.insync.replicas"),
        ("\"log.segment.bytes\" = 10", "log.segment.bytes"),
        (
            "\"log.retention.hours\" = \"forever\"",
            "log.retention.hours",
        ),
        ("\"log.retention.ms\" = 0", "log.retention.ms"),
        ("\"log.retention.minutes\" = 0", "log.retention.minutes"),
        (
            "\"log.cleanup.policy\" = [\"archive\"]",
            "log.cleanup.policy",
        ),
        ("\"log.cleanup.policy\" = [1]", "log.cleanup.policy"),
        ("\"compression.type\" = \"lzma\"", "compression.type"),
        (
            "\"log.cleaner.min.cleanable.ratio\" = nan",
            "log.cleaner.min.cleanable.ratio",
        ),
        (
            "\"log.cleaner.io.buffer.load.factor\" = inf",
            "log.cleaner.io.buffer.load.factor",
        ),
        (
            "\"log.cleaner.dedupe.buffer.size\" = 1048576",
            "log.cleaner.dedupe.buffer.size",
        ),
        (
            "\"replica.fetch.wait.max.ms\" = 40000",
            "replica.fetch.wait.max.ms",
        ),
        (
            "\"replica.lag.time.max.ms\" = 100\n\"replica.fetch.wait.max.ms\" = 200",
            "replica.fetch.wait.max.ms",
        ),
    ];
    for &(line, key) in config_cases {
        parse_err(&with_config(line), key);
    }
}

#[test]
fn keys_duplicating_top_level_ones_are_refused() {
    let cases: &[(&str, &str)] = &[
        ("broker.id", "broker_id"),
        ("listeners", "listen"),
        ("advertised.listeners", "advertised"),
        ("log.dirs", "data_dir"),
        ("log.dir", "data_dir"),
        ("zookeeper.connect", "endpoints"),
        ("zookeeper.session.timeout.ms", "session_timeout_ms"),
    ];
    for &(key, pointer) in cases {
        let m = parse_err(&with_config(&format!("\"{key}\" = \"x\"")), key);
        assert!(
            m.contains("not allowed") && m.contains(&format!("`{pointer}`")),
            "{m}"
        );
    }
    // Also as dotted keys, and at the top level.
    parse_err(&with_config("broker.id = 2"), "broker.id");
    let m = parse_err(&format!("\"broker.id\" = 1\n{MINIMAL}"), "broker.id");
    assert!(m.contains("`broker_id`"), "{m}");
}

#[test]
fn missing_keys() {
    let without = |line: &str| MINIMAL.replace(line, "");
    parse_err(&without("broker_id = 0"), "broker_id");
    parse_err(&without("listen = \"127.0.0.1:9092\""), "listen");
    parse_err(&without("data_dir = \"/data\""), "data_dir");
    parse_err(
        &without("[coordination]\nbackend = \"embedded\""),
        "coordination",
    );
    parse_err(&without("backend = \"embedded\""), "backend");
}

#[test]
fn remote_backends_need_endpoints() {
    for (backend, port) in [("zookeeper", "2181"), ("etcd", "2379")] {
        let text = MINIMAL.replace("\"embedded\"", &format!("\"{backend}\""));
        let m = parse_err(&text, "endpoints");
        assert!(m.contains(backend) && m.contains(port), "{m}");
        parse_err(&format!("{text}endpoints = []\n"), "endpoints");
        let c = parse_ok(&format!(
            "{text}endpoints = [\"zk1:{port}\", \"[::1]:{port}\"]\n"
        ));
        assert_eq!(
            c.coordination.endpoints,
            [format!("zk1:{port}"), format!("[::1]:{port}")]
        );
        assert_eq!(c.coordination.data_dir, None);
        // One comma-separated string, as in Kafka's zookeeper.connect.
        let c = parse_ok(&format!("{text}endpoints = \"a:{port}, b:{port}\"\n"));
        assert_eq!(
            c.coordination.endpoints,
            [format!("a:{port}"), format!("b:{port}")]
        );
    }
    let zk = MINIMAL.replace("\"embedded\"", "\"zookeeper\"");
    let m = parse_err(
        &format!("{zk}endpoints = [\"zk:2181/kafka\"]\n"),
        "endpoints",
    );
    assert!(m.contains("`root`"), "{m}");
    // Embedded ignores them, but needs none.
    assert!(parse_ok(MINIMAL).coordination.validate().is_ok());
}

#[test]
fn advertised_defaults_to_listen() {
    let c = parse_ok(MINIMAL);
    assert_eq!(
        c.advertised,
        HostPort {
            host: "127.0.0.1".into(),
            port: 9092
        }
    );
    let c = parse_ok(&format!(
        "advertised = \"kafka.example.com:19092\"\n{MINIMAL}"
    ));
    assert_eq!(c.advertised.to_string(), "kafka.example.com:19092");
    let v6 = MINIMAL.replace("\"127.0.0.1:9092\"", "\"[::1]:9092\"");
    assert_eq!(parse_ok(&v6).advertised.to_string(), "[::1]:9092");
    // A host name is resolved for binding, and advertised as written.
    let named = MINIMAL.replace("\"127.0.0.1:9092\"", "\"localhost:9092\"");
    let c = parse_ok(&named);
    assert!(c.listen.ip().is_loopback(), "{}", c.listen);
    assert_eq!(c.advertised.to_string(), "localhost:9092");
    // Port 0: the advertised port is the one bound.
    let c = parse_ok(&MINIMAL.replace(":9092", ":0"));
    assert_eq!(c.advertised_with_port(40123).to_string(), "127.0.0.1:40123");
    assert_eq!(parse_ok(MINIMAL).advertised_with_port(1).port, 9092);
    // A wildcard listener needs an explicit advertised address, as in Kafka.
    let wildcard = MINIMAL.replace("127.0.0.1", "0.0.0.0");
    let m = parse_err(&wildcard, "advertised");
    assert!(m.contains("0.0.0.0"), "{m}");
    let c = parse_ok(&format!("advertised = \"broker1:9092\"\n{wildcard}"));
    assert_eq!(c.listen.to_string(), "0.0.0.0:9092");
}

#[test]
fn relative_data_dir_is_resolved_against_the_cwd() -> std::io::Result<()> {
    let cwd = std::env::current_dir()?;
    let c = parse_ok(&MINIMAL.replace("\"/data\"", "\"./target/broker-1\""));
    assert_eq!(c.data_dir, cwd.join("target").join("broker-1"));
    assert!(c.data_dir.is_absolute());
    assert_eq!(
        c.coordination.data_dir.as_deref(),
        Some(c.data_dir.as_path())
    );
    Ok(())
}

#[test]
fn syntax_errors_name_the_file_and_line() {
    let err = parse("broker_id = \n", "bad.toml")
        .err()
        .map(|e| e.to_string());
    let err = err.unwrap_or_default();
    assert!(
        err.starts_with("bad.toml: not valid TOML") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn load_names_the_path() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("nope.toml");
    let err = load(&missing)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("nope.toml") && err.contains("cannot read"),
        "{err}"
    );
    let path = dir.path().join("broker.toml");
    std::fs::write(&path, with_config("\"num.partitions\" = -3"))?;
    let err = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.starts_with(&path.display().to_string()) && err.contains("num.partitions"),
        "{err}"
    );
    std::fs::write(&path, SPEC_EXAMPLE)?;
    assert!(load(&path).is_ok());
    Ok(())
}

#[test]
fn display_prints_every_key_and_parses_back() {
    let original = parse_ok(&format!(
        "{}\"log.retention.hours\" = 5\n\"log.cleaner.io.buffer.load.factor\" = 0.75\n\
         \"broker.rack\" = \"r \\\"1\\\"\"\n\"log.cleanup.policy\" = \"compact\"\n",
        SPEC_EXAMPLE.replace("\"log.retention.ms\" = 604800000\n", "")
    ));
    let printed = original.to_string();
    for key in known_broker_keys() {
        let primary_or_broker = BrokerSettings::KEYS.contains(&key)
            || topic_config_for_broker_config(key)
                .and_then(|topic| broker_synonyms(topic).first())
                .is_some_and(|synonym| synonym.name == key);
        if primary_or_broker {
            assert!(
                printed.contains(&format!("\"{key}\" = ")),
                "{key} missing:\n{printed}"
            );
        }
    }
    assert!(
        printed.contains("\"log.retention.ms\" = 18000000  # from log.retention.hours = 5"),
        "{printed}"
    );
    assert!(
        printed.contains("\"num.partitions\" = 1  # from num.partitions = 1"),
        "{printed}"
    );
    assert!(
        printed.contains("\"delete.topic.enable\" = true\n"),
        "{printed}"
    );
    assert!(printed.contains("backend = \"embedded\""), "{printed}");
    let reparsed = parse_ok(&printed);
    assert_eq!(reparsed.broker_id, original.broker_id);
    assert_eq!(reparsed.listen, original.listen);
    assert_eq!(reparsed.advertised, original.advertised);
    assert_eq!(reparsed.data_dir, original.data_dir);
    assert_eq!(reparsed.log_level, original.log_level);
    assert_eq!(reparsed.coordination.backend, original.coordination.backend);
    assert_eq!(
        reparsed.coordination.endpoints,
        original.coordination.endpoints
    );
    assert_eq!(reparsed.coordination.root, original.coordination.root);
    assert_eq!(
        reparsed.coordination.session_timeout,
        original.coordination.session_timeout
    );
    assert_eq!(
        reparsed.coordination.connect_timeout,
        original.coordination.connect_timeout
    );
    assert_eq!(reparsed.broker, original.broker);
    assert_eq!(reparsed.log_defaults, original.log_defaults);
    assert_eq!(reparsed.effective_props(), original.effective_props());
    // Defaults print and parse back too (no log_level, no rack: comments).
    let minimal = parse_ok(MINIMAL);
    let printed = minimal.to_string();
    assert!(printed.contains("# log_level is not set"), "{printed}");
    assert!(
        printed.contains("# \"broker.rack\" is not set"),
        "{printed}"
    );
    let reparsed = parse_ok(&printed);
    assert_eq!(reparsed.broker, minimal.broker);
    assert_eq!(reparsed.log_defaults, minimal.log_defaults);
}

#[test]
fn repository_examples_parse() -> Result<(), ConfigError> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let expected = [
        ("single-node.toml", Backend::Embedded, 0),
        ("zookeeper-node.toml", Backend::ZooKeeper, 1),
        ("etcd-node.toml", Backend::Etcd, 1),
    ];
    for (file, backend, endpoints) in expected {
        let c = load(&dir.join(file))?;
        assert_eq!(c.coordination.backend, backend, "{file}");
        assert_eq!(c.coordination.endpoints.len(), endpoints, "{file}");
        assert_eq!(c.listen.to_string(), "127.0.0.1:9092", "{file}");
        assert_eq!(c.broker_id, 1, "{file}");
        assert!(c.coordination.validate().is_ok(), "{file}");
    }
    Ok(())
}

#[test]
fn host_port_parsing() {
    let ok = |text: &str| HostPort::parse(text).map(|hp| hp.to_string());
    assert_eq!(ok("localhost:9092").as_deref(), Ok("localhost:9092"));
    assert_eq!(ok("[::1]:9092").as_deref(), Ok("[::1]:9092"));
    for bad in [
        "",
        "host",
        ":9092",
        "::1:9092",
        "[::1]9092",
        "[zz]:1",
        "h:-1",
        "h st:1",
        "http://h:1",
    ] {
        assert!(HostPort::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn suggestions() {
    assert_eq!(
        did_you_mean("num_partitions", known_broker_keys().into_iter()),
        "; did you mean `num.partitions`?"
    );
    assert_eq!(did_you_mean("zzzzzz", TOP_LEVEL_KEYS.iter().copied()), "");
    assert_eq!(edit_distance(&['a', 'b'], &['b']), 1);
}
