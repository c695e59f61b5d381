//! A whole broker node — listener, request handlers and the broker's actors — from a
//! [`BrokerConfig`]: what the `sluice` binary runs ([`run`]) and what a service embedding
//! Sluice starts inside its own actix `System` ([`start`], see `examples/embedded_broker.rs`).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::actors::broker::{self, BrokerOptions};
use crate::actors::controller::ControllerConfig;
use crate::actors::group::GroupConfig;
use crate::actors::log::cleaner::CleanerConfig;
use crate::actors::replica::{ReplicaConfig, ReplicaManagerConfig};
use crate::config::{BrokerConfig, HostPort};
use crate::connection::ConnectionSettings;
use crate::handlers::{Context, HandlerSettings};
use crate::server::{self, ServerSettings};

/// Runs a broker node from `config` inside the current actix System until `shutdown`
/// completes, then shuts it down cleanly.
pub async fn run(config: BrokerConfig, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    let (listener, bound) = bind(&config).await?;
    serve(config, listener, bound, shutdown).await
}

/// A node started with [`start`]: where it listens, and how to stop it.
#[derive(Debug)]
pub struct RunningNode {
    /// The listener's address (its port chosen by the system if `listen` said 0).
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    done: oneshot::Receiver<Result<(), String>>,
}

impl RunningNode {
    /// Stops accepting, answers what was read, shuts the broker down cleanly (flush,
    /// checkpoints, clean-shutdown marker) and waits for it.
    pub async fn shutdown(self) -> Result<(), String> {
        let _ = self.stop.send(());
        self.done
            .await
            .unwrap_or_else(|_| Err("the node stopped without a result".into()))
    }
}

/// Starts a broker node inside the current actix System (for services that embed Sluice);
/// returns once it accepts connections.
pub async fn start(config: BrokerConfig) -> Result<RunningNode, String> {
    let (listener, bound) = bind(&config).await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let (finished, done) = oneshot::channel();
    let (ready_tx, ready) = oneshot::channel();
    actix::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        let result = serve_with(config, listener, bound, shutdown, Some(ready_tx)).await;
        let _ = finished.send(result);
    });
    match ready.await {
        Ok(()) => Ok(RunningNode {
            addr: bound,
            stop,
            done,
        }),
        // Start-up failed: the reason is the node's result.
        Err(_) => Err(done.await.map_or_else(
            |_| "the node did not start".into(),
            |r| r.err().unwrap_or_default(),
        )),
    }
}

async fn bind(config: &BrokerConfig) -> Result<(TcpListener, SocketAddr), String> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("listener address: {e}"))?;
    Ok((listener, bound))
}

async fn serve(
    config: BrokerConfig,
    listener: TcpListener,
    bound: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    serve_with(config, listener, bound, shutdown, None).await
}

async fn serve_with(
    config: BrokerConfig,
    listener: TcpListener,
    bound: SocketAddr,
    shutdown: impl Future<Output = ()>,
    ready: Option<oneshot::Sender<()>>,
) -> Result<(), String> {
    let advertised = config.advertised_with_port(bound.port());
    let coordination = crate::coordination::connect(&config.coordination)
        .await
        .map_err(|e| format!("coordination: {e}"))?;
    let broker = broker::start(coordination, broker_options(&config, &advertised))
        .await
        .map_err(|e| format!("cannot start the broker: {e}"))?;
    let settings = &config.broker;
    let ctx = Context::new(
        broker.clone(),
        HandlerSettings {
            auto_create_topics_enable: settings.auto_create_topics_enable,
            num_partitions: settings.num_partitions,
            default_replication_factor: i16::try_from(settings.default_replication_factor)
                .unwrap_or(i16::MAX),
        },
    )
    .with_broker_config(config.clone());
    let server_settings = ServerSettings {
        max_connections: usize::try_from(settings.max_connections).unwrap_or(0),
        max_connections_per_ip: usize::try_from(settings.max_connections_per_ip).unwrap_or(0),
        // Kafka: -1 (or any negative) means unbounded.
        queued_max_request_bytes: usize::try_from(settings.queued_max_request_bytes).ok(),
        connection: ConnectionSettings {
            max_request_size: usize::try_from(settings.socket_request_max_bytes).unwrap_or(0),
            // Kafka: -1 (or any negative) disables the idle check.
            idle_timeout: u64::try_from(settings.connections_max_idle_ms)
                .ok()
                .map(Duration::from_millis),
        },
    };
    tracing::info!(listen = %bound, advertised = %format!("{}:{}", advertised.host, advertised.port), "serving Kafka clients");
    if let Some(ready) = ready {
        let _ = ready.send(());
    }
    server::run(listener, ctx, server_settings, shutdown).await;
    broker
        .shutdown()
        .await
        .map_err(|e| format!("broker shutdown: {e}"))
}

/// The broker's options from its config file.
fn broker_options(config: &BrokerConfig, advertised: &HostPort) -> BrokerOptions {
    let s = &config.broker;
    let mut replicas = ReplicaManagerConfig::new(&config.data_dir);
    replicas.offset_checkpoint_interval_ms =
        u64::try_from(s.log_flush_offset_checkpoint_interval_ms).unwrap_or(0);
    replicas.high_watermark_checkpoint_interval_ms =
        u64::try_from(s.replica_high_watermark_checkpoint_interval_ms).unwrap_or(0);
    replicas.replica = ReplicaConfig {
        broker_id: config.broker_id,
        retention_check_interval_ms: u64::try_from(s.log_retention_check_interval_ms)
            .unwrap_or(300_000),
        flush_scheduler_interval_ms: u64::try_from(s.log_flush_scheduler_interval_ms)
            .unwrap_or(u64::MAX),
        cleaner: CleanerConfig {
            enabled: s.log_cleaner_enable,
            dedupe_buffer_size: usize::try_from(s.log_cleaner_dedupe_buffer_size)
                .unwrap_or(128 << 20),
        },
        cleaner_backoff_ms: u64::try_from(s.log_cleaner_backoff_ms).unwrap_or(15_000),
        producer_id_expiration_ms: i64::from(s.producer_id_expiration_ms),
        producer_id_expiration_check_interval_ms: u64::try_from(
            s.producer_id_expiration_check_interval_ms,
        )
        .unwrap_or(600_000),
    };
    let mut controller = ControllerConfig::new(config.broker_id);
    controller.num_partitions = s.num_partitions;
    controller.default_replication_factor =
        i16::try_from(s.default_replication_factor).unwrap_or(i16::MAX);
    controller.log_defaults = config.log_defaults.clone();
    BrokerOptions {
        broker_id: config.broker_id,
        advertised_host: advertised.host.clone(),
        advertised_port: advertised.port,
        rack: s.broker_rack.clone(),
        log_defaults: config.log_defaults.clone(),
        controller,
        replicas,
        groups: group_config(config),
        // A stale registration of this broker id (a crash just before) expires within one
        // session timeout.
        registration_wait: config.coordination.session_timeout + Duration::from_secs(2),
    }
}

/// The group coordinator's settings from `[config]` (Kafka's keys).
fn group_config(config: &BrokerConfig) -> GroupConfig {
    let s = &config.broker;
    let ms = |v: i64| u64::try_from(v).unwrap_or(0);
    GroupConfig {
        offsets_topic_num_partitions: s.offsets_topic_num_partitions,
        offsets_topic_replication_factor: s.offsets_topic_replication_factor,
        offsets_topic_segment_bytes: s.offsets_topic_segment_bytes,
        offsets_retention_ms: i64::from(s.offsets_retention_minutes).saturating_mul(60_000),
        offsets_retention_check_interval_ms: ms(s.offsets_retention_check_interval_ms),
        offsets_commit_timeout_ms: ms(i64::from(s.offsets_commit_timeout_ms)),
        offset_metadata_max_bytes: usize::try_from(s.offset_metadata_max_bytes).unwrap_or(0),
        group_min_session_timeout_ms: s.group_min_session_timeout_ms,
        group_max_session_timeout_ms: s.group_max_session_timeout_ms,
        group_initial_rebalance_delay_ms: ms(i64::from(s.group_initial_rebalance_delay_ms)),
        group_max_size: usize::try_from(s.group_max_size).unwrap_or(usize::MAX),
        ..GroupConfig::with_defaults(&config.data_dir)
    }
}
