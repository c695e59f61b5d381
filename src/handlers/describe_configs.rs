//! DescribeConfigs (key 32): a topic's configs (every topic config with its value and
//! where it comes from) or this broker's configs, as Kafka reports them.
//!
//! Sources, Kafka's: a topic override is `DYNAMIC_TOPIC_CONFIG`; otherwise a topic config
//! takes the source of its broker-level synonym — `DYNAMIC_BROKER_CONFIG` when
//! `/config/brokers/<id>` sets it, `STATIC_BROKER_CONFIG` when the file's `[config]` does,
//! `DEFAULT_CONFIG` else. Synonyms are listed in Kafka's order: the topic override, the
//! broker-level synonyms (dynamic before static, highest precedence first), then the
//! default. Unknown keys in the request's key list are left out, as Kafka does.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::log::config::{
    broker_synonyms, topic_config_for_broker_config, LogConfig, SynonymConversion,
    TOPIC_CONFIG_NAMES,
};

use super::{code, error_code, Context, Family};

/// Kafka's `ConfigResource.Type` codes.
pub mod resource {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
}

/// Kafka's `DescribeConfigsResponse.ConfigSource` codes.
pub mod source {
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// Kafka's `ConfigDef.Type` codes as DescribeConfigs v3+ reports them.
pub mod config_type {
    pub const UNKNOWN: i8 = 0;
    pub const BOOLEAN: i8 = 1;
    pub const STRING: i8 = 2;
    pub const INT: i8 = 3;
    pub const LONG: i8 = 5;
    pub const DOUBLE: i8 = 6;
    pub const LIST: i8 = 7;
}

/// A topic config's type and one-line documentation.
pub fn topic_config_info(name: &str) -> (i8, &'static str) {
    use config_type::{BOOLEAN, DOUBLE, INT, LIST, LONG, STRING, UNKNOWN};
    match name {
        "segment.bytes" => (INT, "The segment file size for the log."),
        "segment.ms" => (
            LONG,
            "The time after which the log rolls a new segment even if the active one is not full.",
        ),
        "segment.jitter.ms" => (
            LONG,
            "The maximum random jitter subtracted from segment.ms.",
        ),
        "segment.index.bytes" => (
            INT,
            "The size of the index that maps offsets to file positions.",
        ),
        "index.interval.bytes" => (
            INT,
            "How often (in bytes of log) an entry is added to the offset index.",
        ),
        "retention.ms" => (
            LONG,
            "The maximum time a log segment is kept before it is deleted; -1 means no limit.",
        ),
        "retention.bytes" => (
            LONG,
            "The maximum size a partition's log grows to before old segments are deleted; -1 means no limit.",
        ),
        "cleanup.policy" => (
            LIST,
            "The retention policy of old log segments: delete, compact, or both.",
        ),
        "delete.retention.ms" => (
            LONG,
            "How long delete tombstones are kept for compacted topics.",
        ),
        "min.cleanable.dirty.ratio" => (
            DOUBLE,
            "The dirty ratio of the log above which the cleaner compacts it.",
        ),
        "min.compaction.lag.ms" => (
            LONG,
            "The minimum time a message remains uncompacted in the log.",
        ),
        "max.compaction.lag.ms" => (
            LONG,
            "The maximum time a message remains ineligible for compaction.",
        ),
        "max.message.bytes" => (
            INT,
            "The largest record batch size allowed, after compression.",
        ),
        "message.timestamp.type" => (
            STRING,
            "Whether record timestamps are CreateTime or LogAppendTime.",
        ),
        "message.timestamp.before.max.ms" => (
            LONG,
            "How far a record timestamp may lie before the broker's clock.",
        ),
        "message.timestamp.after.max.ms" => (
            LONG,
            "How far a record timestamp may lie after the broker's clock.",
        ),
        "flush.messages" => (
            LONG,
            "The number of messages written between forced fsyncs of the log.",
        ),
        "flush.ms" => (LONG, "The time between forced fsyncs of the log."),
        "file.delete.delay.ms" => (
            LONG,
            "The time to wait before deleting a file from the filesystem.",
        ),
        "min.insync.replicas" => (
            INT,
            "The minimum number of in-sync replicas an acks=all produce needs.",
        ),
        "unclean.leader.election.enable" => (
            BOOLEAN,
            "Whether replicas not in the ISR may be elected leader as a last resort.",
        ),
        "compression.type" => (
            STRING,
            "The final compression type of the topic's batches.",
        ),
        "preallocate" => (
            BOOLEAN,
            "Whether to preallocate the file when rolling a new segment.",
        ),
        _ => (UNKNOWN, ""),
    }
}

/// One described config, before it is put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub name: String,
    pub value: String,
    pub source: i8,
    pub read_only: bool,
    pub config_type: i8,
    pub documentation: &'static str,
    /// `(name, value, source)`, in Kafka's order.
    pub synonyms: Vec<(String, String, i8)>,
}

/// The broker config file's `[config]` as written (keys in Kafka's string form); empty
/// when the broker runs without a config file (embedded).
fn static_props(ctx: &Context) -> BTreeMap<String, String> {
    ctx.broker_config
        .as_ref()
        .map(|c| c.overrides.clone())
        .unwrap_or_default()
}

/// The Kafka default of a topic config as its broker synonym shows it: Kafka defines the
/// retention and roll defaults on their `…hours` key.
fn default_synonym(topic_key: &str, default_value: &str) -> Option<(String, String)> {
    let synonyms = broker_synonyms(topic_key);
    if let Some(last) = synonyms
        .iter()
        .rev()
        .find(|s| s.conversion == SynonymConversion::HoursToMillis)
    {
        let hours = default_value.parse::<i64>().ok()? / 3_600_000;
        return Some((last.name.to_string(), hours.to_string()));
    }
    let synonym = if topic_key == "flush.ms" {
        synonyms.last()
    } else {
        synonyms.first()
    }?;
    Some((synonym.name.to_string(), default_value.to_string()))
}

/// Every topic config of `topic` as DescribeConfigs reports it, in name order.
/// `overrides` are the topic's overrides, `dynamic` the broker's `/config/brokers/<id>`.
pub fn describe_topic(
    effective: &LogConfig,
    overrides: &BTreeMap<String, String>,
    static_props: &BTreeMap<String, String>,
    dynamic: &BTreeMap<String, String>,
) -> Vec<Described> {
    let defaults = LogConfig::default().to_props();
    let values = effective.to_props();
    let mut out = Vec::new();
    for &name in TOPIC_CONFIG_NAMES {
        let mut synonyms = Vec::new();
        if let Some(v) = overrides.get(name) {
            synonyms.push((name.to_string(), v.clone(), source::DYNAMIC_TOPIC_CONFIG));
        }
        for s in broker_synonyms(name) {
            if let Some(v) = dynamic.get(s.name) {
                synonyms.push((s.name.to_string(), v.clone(), source::DYNAMIC_BROKER_CONFIG));
            }
            if let Some(v) = static_props.get(s.name) {
                synonyms.push((s.name.to_string(), v.clone(), source::STATIC_BROKER_CONFIG));
            }
        }
        if let Some((n, v)) = defaults.get(name).and_then(|d| default_synonym(name, d)) {
            synonyms.push((n, v, source::DEFAULT_CONFIG));
        }
        let source = synonyms.first().map_or(source::DEFAULT_CONFIG, |s| s.2);
        // An override is shown as set (a list keeps its order, as Kafka shows it).
        let value = overrides
            .get(name)
            .or_else(|| values.get(name))
            .cloned()
            .unwrap_or_default();
        let (config_type, documentation) = topic_config_info(name);
        out.push(Described {
            name: name.to_string(),
            value,
            source,
            read_only: false,
            config_type,
            documentation,
            synonyms,
        });
    }
    out
}

/// Whether a broker-level key can be changed at runtime through `/config/brokers/<id>`:
/// the broker synonyms of topic configs, which the replicas pick up at once.
pub fn broker_key_is_dynamic(key: &str) -> bool {
    topic_config_for_broker_config(key).is_some()
}

/// Every broker config this broker knows, with its value and source, in name order.
pub fn describe_broker(ctx: &Context, dynamic: &BTreeMap<String, String>) -> Vec<Described> {
    let static_props = static_props(ctx);
    let mut props: BTreeMap<String, String> = match &ctx.broker_config {
        Some(c) => c.effective_props(),
        None => {
            // Embedded without a config file: the topic synonyms of the log defaults.
            let mut props = BTreeMap::new();
            for (topic_key, value) in ctx.broker.log_defaults.to_props() {
                if let Some(s) = broker_synonyms(&topic_key).first() {
                    props.insert(s.name.to_string(), value);
                }
            }
            props
        }
    };
    for (k, v) in static_props.iter().chain(dynamic) {
        props.insert(k.clone(), v.clone());
    }
    // Kafka's defaults, for the DEFAULT_CONFIG synonym.
    let broker_defaults = crate::config::BrokerSettings::default().to_props();
    let log_defaults = LogConfig::default().to_props();
    // The topic defaults in force (file and dynamic config), for a primary synonym that is
    // set through one of its lower-precedence synonyms only.
    let in_force = ctx
        .broker
        .dynamic_log_defaults()
        .unwrap_or_else(|_| ctx.broker.log_defaults.clone())
        .to_props();
    props
        .into_iter()
        .map(|(name, mut value)| {
            let mut synonyms = Vec::new();
            // A topic config's broker synonym lists itself and its lower-precedence
            // synonyms (`log.retention.ms` → `.minutes` → `.hours`), then the default, as
            // Kafka does; any other key only itself.
            let topic_key = topic_config_for_broker_config(&name);
            let names: Vec<&str> = match topic_key {
                Some(t) => broker_synonyms(t)
                    .iter()
                    .map(|s| s.name)
                    .skip_while(|n| *n != name)
                    .collect(),
                None => vec![name.as_str()],
            };
            for n in names {
                if let Some(v) = dynamic.get(n) {
                    synonyms.push((n.to_string(), v.clone(), source::DYNAMIC_BROKER_CONFIG));
                }
                if let Some(v) = static_props.get(n) {
                    synonyms.push((n.to_string(), v.clone(), source::STATIC_BROKER_CONFIG));
                }
            }
            if let Some(t) = topic_key {
                let explicit = dynamic.contains_key(&name) || static_props.contains_key(&name);
                let primary = broker_synonyms(t).first().is_some_and(|s| s.name == name);
                if primary && !explicit {
                    if let Some(v) = in_force.get(t) {
                        value.clone_from(v);
                    }
                }
            }
            let default = match topic_key {
                Some(t) => log_defaults.get(t).and_then(|d| default_synonym(t, d)),
                None => broker_defaults
                    .get(&name)
                    .map(|d| (name.clone(), d.clone())),
            };
            if let Some((n, v)) = default {
                synonyms.push((n, v, source::DEFAULT_CONFIG));
            }
            let source = synonyms.first().map_or(source::DEFAULT_CONFIG, |s| s.2);
            let (config_type, documentation) = topic_config_for_broker_config(&name)
                .map_or((config_type::UNKNOWN, ""), topic_config_info);
            Described {
                read_only: !broker_key_is_dynamic(&name),
                name,
                value,
                source,
                config_type,
                documentation,
                synonyms,
            }
        })
        .collect()
}

/// Answers a DescribeConfigs request.
pub fn handle(
    ctx: &Context,
    version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let include_synonyms = version >= 1 && request.include_synonyms;
    let include_documentation = version >= 3 && request.include_documentation;
    let results = request
        .resources
        .into_iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            let described = match r.resource_type {
                resource::TOPIC => describe_topic_resource(ctx, &name),
                resource::BROKER => describe_broker_resource(ctx, &name),
                other => Err((
                    code::INVALID_REQUEST,
                    format!("resource type {other} is not supported"),
                )),
            };
            let mut result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name);
            match described {
                Ok(entries) => {
                    let wanted = r.configuration_keys.as_ref().map(|keys| {
                        keys.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<String>>()
                    });
                    result.configs = entries
                        .into_iter()
                        .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&e.name)))
                        .map(|e| to_wire(e, version, include_synonyms, include_documentation))
                        .collect();
                }
                Err((code, message)) => {
                    result.error_code = code;
                    result.error_message = Some(StrBytes::from_string(message));
                }
            }
            result
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe_topic_resource(ctx: &Context, topic: &str) -> Result<Vec<Described>, (i16, String)> {
    if ctx.broker.metadata.topic(topic).is_none() {
        return Err((
            code::UNKNOWN_TOPIC_OR_PARTITION,
            format!("topic {topic} does not exist"),
        ));
    }
    let overrides = ctx.broker.metadata.topic_config(topic);
    let effective = ctx
        .broker
        .topic_log_config(topic)
        .map_err(|e| (error_code(&e, Family::Data), e.to_string()))?;
    let dynamic = ctx.broker.metadata.broker_config(ctx.broker.broker_id);
    Ok(describe_topic(
        &effective,
        &overrides,
        &static_props(ctx),
        &dynamic,
    ))
}

fn describe_broker_resource(ctx: &Context, name: &str) -> Result<Vec<Described>, (i16, String)> {
    check_broker_resource(ctx, name)?;
    let dynamic = ctx.broker.metadata.broker_config(ctx.broker.broker_id);
    Ok(describe_broker(ctx, &dynamic))
}

/// A broker resource must name this broker, as in Kafka (the admin client sends it to
/// the broker it names). The cluster-wide default (`""`) is not supported.
pub fn check_broker_resource(ctx: &Context, name: &str) -> Result<(), (i16, String)> {
    if name.parse::<i32>().ok() == Some(ctx.broker.broker_id) {
        Ok(())
    } else {
        Err((
            code::INVALID_REQUEST,
            format!(
                "unexpected broker id, expected {}, but received {name:?}",
                ctx.broker.broker_id
            ),
        ))
    }
}

fn to_wire(
    e: Described,
    version: i16,
    include_synonyms: bool,
    include_documentation: bool,
) -> DescribeConfigsResourceResult {
    let mut r = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(e.name))
        .with_value(Some(StrBytes::from_string(e.value)))
        .with_read_only(e.read_only)
        .with_is_sensitive(false)
        .with_config_source(e.source)
        .with_documentation(None);
    if include_synonyms {
        r.synonyms = e
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_string(name))
                    .with_value(Some(StrBytes::from_string(value)))
                    .with_source(source)
            })
            .collect();
    }
    if version >= 3 {
        r.config_type = e.config_type;
        if include_documentation && !e.documentation.is_empty() {
            r.documentation = Some(StrBytes::from_static_str(e.documentation));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn topic_sources_and_synonyms_in_kafkas_order() {
        let static_props = props(&[("log.retention.hours", "48")]);
        let dynamic = props(&[("log.retention.ms", "5000")]);
        let overrides = props(&[
            ("retention.ms", "1000"),
            ("cleanup.policy", "delete,compact"),
        ]);
        let effective = LogConfig::from_broker_props(&static_props)
            .unwrap()
            .with_overrides(&overrides)
            .unwrap();
        let described = describe_topic(&effective, &overrides, &static_props, &dynamic);
        assert_eq!(described.len(), TOPIC_CONFIG_NAMES.len());
        let get = |name: &str| described.iter().find(|d| d.name == name).unwrap();
        let retention = get("retention.ms");
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("1000", source::DYNAMIC_TOPIC_CONFIG)
        );
        let names: Vec<(&str, i8)> = retention
            .synonyms
            .iter()
            .map(|(n, _, s)| (n.as_str(), *s))
            .collect();
        assert_eq!(
            names,
            [
                ("retention.ms", source::DYNAMIC_TOPIC_CONFIG),
                ("log.retention.ms", source::DYNAMIC_BROKER_CONFIG),
                ("log.retention.hours", source::STATIC_BROKER_CONFIG),
                ("log.retention.hours", source::DEFAULT_CONFIG),
            ]
        );
        assert_eq!(get("cleanup.policy").value, "delete,compact");
        let segment = get("segment.ms");
        assert_eq!(segment.source, source::DEFAULT_CONFIG);
        assert_eq!(
            segment.synonyms,
            [(
                "log.roll.hours".to_string(),
                "168".to_string(),
                source::DEFAULT_CONFIG
            )]
        );
        assert!(described.iter().all(|d| !d.read_only && d.config_type != 0));
    }
}
