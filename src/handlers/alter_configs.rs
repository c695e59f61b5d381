//! AlterConfigs (key 33): replaces the whole set of a topic's overrides (or of this
//! broker's dynamic config), and the writing path IncrementalAlterConfigs shares.
//!
//! Where changes are written: any broker writes the config records itself, through the
//! coordination client, as Kafka's ZooKeeper mode let any broker write `/config/...` on
//! the admin path — not through the controller, which only owns topic assignments and
//! partition states. Each write is a compare-and-set on the record's version, in one
//! transaction with a check that the topic's assignment is still the one read (so a
//! topic deleted, or deleted and re-created, meanwhile is not given a stale config), and
//! is retried on a conflict: two concurrent alters never lose each other's keys silently.
//! Every broker's metadata cache watches the records; the replica sync task re-applies a
//! changed topic config (or broker default) to the running replicas, and the records
//! outlive restarts.
//!
//! Validation: the new overrides are applied with `LogConfig` on top of the broker's
//! defaults in force (file + dynamic broker config); a bad value is INVALID_CONFIG naming
//! the key. `validate_only` validates and writes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::broker::with_dynamic_broker_config;
use sluice_actors::log::config::{topic_config_for_broker_config, LogConfig};
use sluice_actors::metadata::paths;
use sluice_actors::metadata::records::{self, BrokerConfigRecord, TopicConfigRecord};
use sluice_actors::Error;
use sluice_coordination::{Error as CoordError, Op};

use super::describe_configs::{broker_key_is_dynamic, check_broker_resource, resource};
use super::{code, error_code, wait_for_metadata, Context, Family};

/// An error code and message for one resource.
pub type Failure = (i16, String);

/// How many times a write is retried after losing a compare-and-set race.
const WRITE_ATTEMPTS: usize = 16;
/// How long a write waits for this broker's metadata cache to show it (so that a
/// DescribeConfigs right after reads the new value).
const SEEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers an AlterConfigs request.
pub async fn handle(
    ctx: &Context,
    _version: i16,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let validate_only = request.validate_only;
    let mut responses = Vec::new();
    for r in request.resources {
        let name = r.resource_name.to_string();
        let mut configs = BTreeMap::new();
        let mut nulls = Vec::new();
        for c in &r.configs {
            match &c.value {
                Some(v) => {
                    configs.insert(c.name.to_string(), v.to_string());
                }
                None => nulls.push(c.name.to_string()),
            }
        }
        let outcome = if nulls.is_empty() {
            let replace = |_: &BTreeMap<String, String>| Ok(configs.clone());
            alter_resource(ctx, r.resource_type, &name, validate_only, replace).await
        } else {
            Err((
                code::INVALID_REQUEST,
                format!("null value not supported for: {}", nulls.join(", ")),
            ))
        };
        responses.push(response(r.resource_type, r.resource_name, outcome));
    }
    AlterConfigsResponse::default().with_responses(responses)
}

fn response(
    resource_type: i8,
    name: StrBytes,
    outcome: Result<(), Failure>,
) -> AlterConfigsResourceResponse {
    let mut r = AlterConfigsResourceResponse::default()
        .with_resource_type(resource_type)
        .with_resource_name(name);
    if let Err((code, message)) = outcome {
        r.error_code = code;
        r.error_message = Some(StrBytes::from_string(message));
    }
    r
}

/// Alters one resource: `change` maps its current configs to the new ones (it is called
/// again if a concurrent write wins the race).
pub async fn alter_resource(
    ctx: &Context,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: impl Fn(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Failure>,
) -> Result<(), Failure> {
    match resource_type {
        resource::TOPIC => alter_topic(ctx, name, validate_only, change).await,
        resource::BROKER => {
            check_broker_resource(ctx, name)?;
            alter_broker(ctx, validate_only, change).await
        }
        other => Err((
            code::INVALID_REQUEST,
            format!("resource type {other} is not supported"),
        )),
    }
}

/// An error as a failure, through the broker's one error mapping: a coordination or
/// record error is UNKNOWN_SERVER_ERROR (a lost race is handled by the caller), a
/// `LogConfig` error INVALID_CONFIG with a message naming the key.
fn fail(e: impl Into<Error>) -> Failure {
    let e = e.into();
    (error_code(&e, Family::Data), e.to_string())
}

async fn alter_topic(
    ctx: &Context,
    topic: &str,
    validate_only: bool,
    change: impl Fn(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Failure>,
) -> Result<(), Failure> {
    let coord = &ctx.broker.coordination;
    let unknown = || {
        (
            code::UNKNOWN_TOPIC_OR_PARTITION,
            format!("topic {topic} does not exist"),
        )
    };
    let config_key = paths::topic_config(topic);
    for _ in 0..WRITE_ATTEMPTS {
        let assignment = coord
            .get(&paths::topic(topic))
            .await
            .map_err(fail)?
            .ok_or_else(unknown)?;
        let current = coord.get(&config_key).await.map_err(fail)?;
        let current_configs = match &current {
            Some(v) => {
                records::decode::<TopicConfigRecord>(&config_key, &v.value)
                    .map_err(fail)?
                    .configs
            }
            None => BTreeMap::new(),
        };
        let new = change(&current_configs)?;
        let defaults = ctx.broker.dynamic_log_defaults().map_err(fail)?;
        defaults.with_overrides(&new).map_err(fail)?;
        if validate_only {
            return Ok(());
        }
        let value = records::encode(&TopicConfigRecord {
            configs: new.clone(),
        })
        .map_err(fail)?;
        let write = match current {
            Some(v) => Op::Set {
                key: config_key.clone(),
                value,
                version: Some(v.version),
            },
            None => Op::Create {
                key: config_key.clone(),
                value,
                ephemeral: false,
            },
        };
        let ops = vec![
            Op::Check {
                key: paths::topic(topic),
                version: assignment.version,
            },
            write,
        ];
        match coord.transact(ops).await {
            Ok(_) => {
                wait_for_metadata(ctx, SEEN_TIMEOUT, |view| {
                    view.topic_configs.get(topic).unwrap_or(&BTreeMap::new()) == &new
                        || !view.topics.contains_key(topic)
                })
                .await;
                tracing::info!(topic, configs = ?new, "topic config changed");
                return Ok(());
            }
            Err(CoordError::Conflict { .. }) => continue,
            Err(e) => return Err(fail(e)),
        }
    }
    Err((
        code::UNKNOWN_SERVER_ERROR,
        format!("the config of topic {topic} kept changing; try again"),
    ))
}

/// Checks a broker's new dynamic config: only the keys that apply at runtime (the broker
/// synonyms of topic configs) are accepted, as Kafka refuses non-dynamic keys; the values
/// must make a valid log config on top of the file's defaults.
fn validate_broker(ctx: &Context, new: &BTreeMap<String, String>) -> Result<LogConfig, Failure> {
    let fixed: Vec<&str> = new
        .keys()
        .filter(|k| !broker_key_is_dynamic(k))
        .map(String::as_str)
        .collect();
    if !fixed.is_empty() {
        return Err((
            code::INVALID_CONFIG,
            format!(
                "cannot update these configs dynamically (set them in the config file and restart): {}",
                fixed.join(", ")
            ),
        ));
    }
    debug_assert!(new
        .keys()
        .all(|k| topic_config_for_broker_config(k).is_some()));
    with_dynamic_broker_config(&ctx.broker.log_defaults, new).map_err(fail)
}

async fn alter_broker(
    ctx: &Context,
    validate_only: bool,
    change: impl Fn(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Failure>,
) -> Result<(), Failure> {
    let coord = &ctx.broker.coordination;
    let broker_id = ctx.broker.broker_id;
    let key = paths::broker_config(broker_id);
    for _ in 0..WRITE_ATTEMPTS {
        let current = coord.get(&key).await.map_err(fail)?;
        let current_configs = match &current {
            Some(v) => {
                records::decode::<BrokerConfigRecord>(&key, &v.value)
                    .map_err(fail)?
                    .configs
            }
            None => BTreeMap::new(),
        };
        let new = change(&current_configs)?;
        validate_broker(ctx, &new)?;
        if validate_only {
            return Ok(());
        }
        let value = records::encode(&BrokerConfigRecord {
            configs: new.clone(),
        })
        .map_err(fail)?;
        let write = match current {
            Some(v) => Op::Set {
                key: key.clone(),
                value,
                version: Some(v.version),
            },
            None => Op::Create {
                key: key.clone(),
                value,
                ephemeral: false,
            },
        };
        match coord.transact(vec![write]).await {
            Ok(_) => {
                wait_for_metadata(ctx, SEEN_TIMEOUT, |view| {
                    view.broker_configs
                        .get(&broker_id)
                        .unwrap_or(&BTreeMap::new())
                        == &new
                })
                .await;
                tracing::info!(broker = broker_id, configs = ?new, "dynamic broker config changed");
                return Ok(());
            }
            Err(CoordError::Conflict { .. }) => continue,
            Err(e) => return Err(fail(e)),
        }
    }
    Err((
        code::UNKNOWN_SERVER_ERROR,
        format!("the config of broker {broker_id} kept changing; try again"),
    ))
}
