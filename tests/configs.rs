//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs against the broker binary, in
//! raw Kafka protocol over TCP (the shared raw client of `tests/support/kafka.rs`).
//! The broker's file sets `log.retention.hours = 48`, so `retention.ms` is a static
//! broker config and the other topic configs are defaults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest,
    AlterConfigsResponse, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice::actors::log::batch;
use sluice::actors::log::compression::Compression;
use support::kafka::Client;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DYNAMIC_BROKER_CONFIG: i8 = 2;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_CONFIG: i16 = 40;

/// One broker process, killed on drop.
struct Broker {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Broker {
    fn start() -> Broker {
        Broker::start_in(tempfile::tempdir().unwrap())
    }

    /// Starts a broker on `dir` (a fresh port, the same data).
    fn start_in(dir: tempfile::TempDir) -> Broker {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("broker.toml");
        std::fs::write(
            &config,
            format!(
                "broker_id = 1\n\
                 listen = \"127.0.0.1:{port}\"\n\
                 data_dir = \"{data}\"\n\
                 log_level = \"info\"\n\
                 [coordination]\n\
                 backend = \"embedded\"\n\
                 [config]\n\
                 \"num.partitions\" = 1\n\
                 \"default.replication.factor\" = 1\n\
                 \"log.retention.hours\" = 48\n",
                data = dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("broker.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut broker = Broker { child, port, dir };
        broker.wait_ready();
        broker
    }

    /// Ready = a TCP connection answers ApiVersions.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the broker exited with {status}");
            }
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut c = Client::new(stream);
                c.send(&ApiVersionsRequest::default(), 0, 1);
                if c.try_recv().is_some() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the broker did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn client(&self) -> Client {
        Client::new(TcpStream::connect(("127.0.0.1", self.port)).unwrap())
    }

    /// SIGTERM, wait for a clean exit, start again on the same data.
    fn restart(mut self) -> Broker {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let exit = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the broker did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(exit.success(), "{exit}");
        let dir = tempfile::tempdir().unwrap();
        let dir = std::mem::replace(&mut self.dir, dir);
        drop(self);
        Broker::start_in(dir)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The requests these tests repeat, on the shared raw client.
trait ConfigRequests {
    fn describe(
        &mut self,
        resource_type: i8,
        name: &str,
        keys: Option<&[&str]>,
    ) -> DescribeConfigsResult;
    fn alter(
        &mut self,
        topic: &str,
        configs: &[(&str, &str)],
        validate_only: bool,
    ) -> (i16, Option<String>);
    fn incremental(
        &mut self,
        resource_type: i8,
        name: &str,
        ops: &[(&str, i8, Option<&str>)],
        validate_only: bool,
    ) -> (i16, Option<String>);
}

impl ConfigRequests for Client {
    /// Describes one resource (all keys, or `keys`), with synonyms and documentation.
    fn describe(
        &mut self,
        resource_type: i8,
        name: &str,
        keys: Option<&[&str]>,
    ) -> DescribeConfigsResult {
        let request = DescribeConfigsRequest::default()
            .with_include_synonyms(true)
            .with_include_documentation(true)
            .with_resources(vec![DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(s(name))
                .with_configuration_keys(
                    keys.map(|k| k.iter().map(|k| s(k)).collect()),
                )]);
        let mut response: DescribeConfigsResponse = self.call(request, 4);
        assert_eq!(response.results.len(), 1);
        response.results.remove(0)
    }

    /// AlterConfigs of one topic: its whole set of overrides.
    fn alter(
        &mut self,
        topic: &str,
        configs: &[(&str, &str)],
        validate_only: bool,
    ) -> (i16, Option<String>) {
        let request = AlterConfigsRequest::default()
            .with_validate_only(validate_only)
            .with_resources(vec![alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(s(topic))
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            alter_configs_request::AlterableConfig::default()
                                .with_name(s(k))
                                .with_value(Some(s(v)))
                        })
                        .collect(),
                )]);
        let response: AlterConfigsResponse = self.call(request, 2);
        let r = &response.responses[0];
        (
            r.error_code,
            r.error_message.as_ref().map(ToString::to_string),
        )
    }

    /// IncrementalAlterConfigs of one resource.
    fn incremental(
        &mut self,
        resource_type: i8,
        name: &str,
        ops: &[(&str, i8, Option<&str>)],
        validate_only: bool,
    ) -> (i16, Option<String>) {
        let request = IncrementalAlterConfigsRequest::default()
            .with_validate_only(validate_only)
            .with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(s(name))
                    .with_configs(
                        ops.iter()
                            .map(|(k, op, v)| {
                                incremental_alter_configs_request::AlterableConfig::default()
                                    .with_name(s(k))
                                    .with_config_operation(*op)
                                    .with_value(v.map(s))
                            })
                            .collect(),
                    ),
            ]);
        let response: IncrementalAlterConfigsResponse = self.call(request, 1);
        let r = &response.responses[0];
        (
            r.error_code,
            r.error_message.as_ref().map(ToString::to_string),
        )
    }
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Creates `topic` through CreateTopics, retrying while no controller is elected.
fn create_topic(c: &mut Client, topic: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let request = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(s(topic)))
                .with_num_partitions(1)
                .with_replication_factor(1)])
            .with_timeout_ms(10_000);
        let response: CreateTopicsResponse = c.call(request, 4);
        let code = response.topics[0].error_code;
        if code == 0 {
            return;
        }
        assert!(code == 41 && Instant::now() < deadline, "{response:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The entry named `name` of a described resource.
fn entry<'a>(result: &'a DescribeConfigsResult, name: &str) -> &'a DescribeConfigsResourceResult {
    result
        .configs
        .iter()
        .find(|c| c.name.as_str() == name)
        .unwrap_or_else(|| panic!("{name} is not described: {result:?}"))
}

fn value(e: &DescribeConfigsResourceResult) -> &str {
    e.value.as_ref().map_or("", |v| v.as_str())
}

/// An entry's synonyms as `(name, value, source)`.
fn synonyms(e: &DescribeConfigsResourceResult) -> Vec<(String, String, i8)> {
    e.synonyms
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                s.value.as_ref().map_or(String::new(), ToString::to_string),
                s.source,
            )
        })
        .collect()
}

#[test]
fn advertised_and_described_with_sources() {
    let broker = Broker::start();
    let mut c = broker.client();
    let versions: ApiVersionsResponse = c.call(ApiVersionsRequest::default(), 3);
    for key in [32, 33, 44] {
        assert!(
            versions.api_keys.iter().any(|a| a.api_key == key),
            "API {key} is not advertised"
        );
    }
    create_topic(&mut c, "plain");

    let topic = c.describe(TOPIC, "plain", None);
    assert_eq!(topic.error_code, 0, "{topic:?}");
    assert_eq!(topic.configs.len(), 23);
    let retention = entry(&topic, "retention.ms");
    assert_eq!(value(retention), "172800000");
    assert_eq!(retention.config_source, STATIC_BROKER_CONFIG);
    assert!(!retention.read_only && !retention.is_sensitive);
    assert_eq!(retention.config_type, 5); // LONG
    assert!(retention.documentation.is_some());
    assert_eq!(
        synonyms(retention),
        [
            (
                "log.retention.hours".into(),
                "48".into(),
                STATIC_BROKER_CONFIG
            ),
            ("log.retention.hours".into(), "168".into(), DEFAULT_CONFIG),
        ]
    );
    let segment = entry(&topic, "segment.bytes");
    assert_eq!(value(segment), "1073741824");
    assert_eq!(segment.config_source, DEFAULT_CONFIG);
    assert_eq!(segment.config_type, 3); // INT
    assert_eq!(
        synonyms(segment),
        [(
            "log.segment.bytes".into(),
            "1073741824".into(),
            DEFAULT_CONFIG
        )]
    );
    let cleanup = entry(&topic, "cleanup.policy");
    assert_eq!((value(cleanup), cleanup.config_type), ("delete", 7)); // LIST

    // A key list: unknown names are left out.
    let some = c.describe(TOPIC, "plain", Some(&["segment.ms", "no.such.config"]));
    assert_eq!(some.configs.len(), 1);
    assert_eq!(value(entry(&some, "segment.ms")), "604800000");

    let unknown = c.describe(TOPIC, "missing", None);
    assert_eq!(unknown.error_code, UNKNOWN_TOPIC_OR_PARTITION);

    // The broker's own configs.
    let b = c.describe(BROKER, "1", None);
    assert_eq!(b.error_code, 0, "{b:?}");
    let partitions = entry(&b, "num.partitions");
    assert_eq!(value(partitions), "1");
    assert_eq!(partitions.config_source, STATIC_BROKER_CONFIG);
    assert!(partitions.read_only);
    let hours = entry(&b, "log.retention.hours");
    assert_eq!(
        (value(hours), hours.config_source),
        ("48", STATIC_BROKER_CONFIG)
    );
    assert_eq!(
        synonyms(partitions),
        [
            ("num.partitions".into(), "1".into(), STATIC_BROKER_CONFIG),
            ("num.partitions".into(), "1".into(), DEFAULT_CONFIG),
        ]
    );
    // The primary synonym, set through `log.retention.hours`.
    let ms = entry(&b, "log.retention.ms");
    assert_eq!(
        (value(ms), ms.config_source),
        ("172800000", STATIC_BROKER_CONFIG)
    );
    assert_eq!(
        synonyms(ms),
        [
            (
                "log.retention.hours".into(),
                "48".into(),
                STATIC_BROKER_CONFIG
            ),
            ("log.retention.hours".into(), "168".into(), DEFAULT_CONFIG),
        ]
    );
    let segment = entry(&b, "log.segment.bytes");
    assert_eq!(segment.config_source, DEFAULT_CONFIG);
    assert!(!segment.read_only);
    // Another broker's id is refused.
    assert_ne!(c.describe(BROKER, "2", None).error_code, 0);
}

#[test]
fn alter_replaces_overrides_and_validates() {
    let broker = Broker::start();
    let mut c = broker.client();
    create_topic(&mut c, "altered");

    let (code, message) = c.alter(
        "altered",
        &[("retention.ms", "60000"), ("cleanup.policy", "compact")],
        false,
    );
    assert_eq!(code, 0, "{message:?}");
    let d = c.describe(TOPIC, "altered", None);
    let retention = entry(&d, "retention.ms");
    assert_eq!(
        (value(retention), retention.config_source),
        ("60000", DYNAMIC_TOPIC_CONFIG)
    );
    assert_eq!(
        synonyms(retention)[0],
        ("retention.ms".into(), "60000".into(), DYNAMIC_TOPIC_CONFIG)
    );
    assert_eq!(synonyms(retention)[1].2, STATIC_BROKER_CONFIG);
    let cleanup = entry(&d, "cleanup.policy");
    assert_eq!(
        (value(cleanup), cleanup.config_source),
        ("compact", DYNAMIC_TOPIC_CONFIG)
    );

    // A bad value: INVALID_CONFIG naming the key, nothing changed.
    let (code, message) = c.alter("altered", &[("retention.ms", "soon")], false);
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.unwrap().contains("retention.ms"));
    let (code, message) = c.alter("altered", &[("no.such.config", "1")], false);
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.unwrap().contains("no.such.config"));

    // validate_only: valid, but nothing changes.
    let (code, _) = c.alter("altered", &[("segment.bytes", "2048")], true);
    assert_eq!(code, 0);
    let d = c.describe(TOPIC, "altered", None);
    assert_eq!(entry(&d, "segment.bytes").config_source, DEFAULT_CONFIG);
    assert_eq!(value(entry(&d, "retention.ms")), "60000");

    // AlterConfigs replaces the whole set.
    let (code, _) = c.alter("altered", &[("segment.bytes", "2048")], false);
    assert_eq!(code, 0);
    let d = c.describe(TOPIC, "altered", None);
    assert_eq!(
        entry(&d, "segment.bytes").config_source,
        DYNAMIC_TOPIC_CONFIG
    );
    let retention = entry(&d, "retention.ms");
    assert_eq!(
        (value(retention), retention.config_source),
        ("172800000", STATIC_BROKER_CONFIG)
    );
    assert_eq!(value(entry(&d, "cleanup.policy")), "delete");

    let (code, _) = c.alter("missing", &[("retention.ms", "1")], false);
    assert_eq!(code, UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn incremental_set_delete_append_subtract() {
    let broker = Broker::start();
    let mut c = broker.client();
    create_topic(&mut c, "inc");

    let ops = [
        ("retention.ms", SET, Some("5000")),
        ("cleanup.policy", APPEND, Some("compact")),
    ];
    assert_eq!(c.incremental(TOPIC, "inc", &ops, false).0, 0);
    let d = c.describe(TOPIC, "inc", Some(&["retention.ms", "cleanup.policy"]));
    assert_eq!(value(entry(&d, "retention.ms")), "5000");
    assert_eq!(value(entry(&d, "cleanup.policy")), "delete,compact");

    let ops = [
        ("retention.ms", DELETE, None),
        ("cleanup.policy", SUBTRACT, Some("delete")),
    ];
    assert_eq!(c.incremental(TOPIC, "inc", &ops, false).0, 0);
    let d = c.describe(TOPIC, "inc", Some(&["retention.ms", "cleanup.policy"]));
    let retention = entry(&d, "retention.ms");
    assert_eq!(
        (value(retention), retention.config_source),
        ("172800000", STATIC_BROKER_CONFIG)
    );
    let cleanup = entry(&d, "cleanup.policy");
    assert_eq!(
        (value(cleanup), cleanup.config_source),
        ("compact", DYNAMIC_TOPIC_CONFIG)
    );

    // APPEND is for list configs only; bad values are INVALID_CONFIG naming the key.
    let (code, _) = c.incremental(TOPIC, "inc", &[("retention.ms", APPEND, Some("1"))], false);
    assert_eq!(code, INVALID_CONFIG);
    let (code, message) = c.incremental(TOPIC, "inc", &[("segment.bytes", SET, Some("-5"))], false);
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.unwrap().contains("segment.bytes"));

    // validate_only changes nothing.
    let (code, _) = c.incremental(TOPIC, "inc", &[("retention.ms", SET, Some("7000"))], true);
    assert_eq!(code, 0);
    let d = c.describe(TOPIC, "inc", Some(&["retention.ms"]));
    assert_eq!(value(entry(&d, "retention.ms")), "172800000");

    // Broker resource: a dynamic default for every topic without an override.
    let (code, message) = c.incremental(
        BROKER,
        "1",
        &[("log.retention.ms", SET, Some("90000"))],
        false,
    );
    assert_eq!(code, 0, "{message:?}");
    let d = c.describe(TOPIC, "inc", Some(&["retention.ms"]));
    let retention = entry(&d, "retention.ms");
    assert_eq!(
        (value(retention), retention.config_source),
        ("90000", DYNAMIC_BROKER_CONFIG)
    );
    let b = c.describe(BROKER, "1", Some(&["log.retention.ms"]));
    assert_eq!(
        entry(&b, "log.retention.ms").config_source,
        DYNAMIC_BROKER_CONFIG
    );
    // A key that does not apply at runtime is refused.
    let (code, _) = c.incremental(BROKER, "1", &[("num.partitions", SET, Some("3"))], false);
    assert_eq!(code, INVALID_CONFIG);
}

/// The `.log` segment files of partition 0 of `topic`.
fn segment_count(data: &Path, topic: &str) -> usize {
    std::fs::read_dir(data.join(format!("{topic}-0")))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count()
}

#[test]
fn changes_reach_running_replicas_and_survive_a_restart() {
    let broker = Broker::start();
    let mut c = broker.client();
    create_topic(&mut c, "kept");
    let ops = [("segment.bytes", SET, Some("200"))];
    assert_eq!(c.incremental(TOPIC, "kept", &ops, false).0, 0);
    let ops = [("log.retention.ms", SET, Some("123456"))];
    assert_eq!(c.incremental(BROKER, "1", &ops, false).0, 0);

    // The running replica rolls at the new segment size.
    let payload = [b'x'; 150];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut i = 0;
    while segment_count(&broker.dir.path().join("data"), "kept") < 3 {
        assert!(Instant::now() < deadline, "segment.bytes was not applied");
        let records =
            batch::simple_batch(Compression::None, now(), &[(None, Some(&payload[..]))]).unwrap();
        let request = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(s("kept")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records.into()))])]);
        let p: ProduceResponse = c.call(request, 9);
        assert_eq!(p.responses[0].partition_responses[0].error_code, 0);
        i += 1;
        assert!(i < 100);
    }

    drop(c);
    let broker = broker.restart();
    let mut c = broker.client();
    let d = c.describe(TOPIC, "kept", Some(&["segment.bytes", "retention.ms"]));
    let segment = entry(&d, "segment.bytes");
    assert_eq!(
        (value(segment), segment.config_source),
        ("200", DYNAMIC_TOPIC_CONFIG)
    );
    let retention = entry(&d, "retention.ms");
    assert_eq!(
        (value(retention), retention.config_source),
        ("123456", DYNAMIC_BROKER_CONFIG)
    );
}
