//! The `sluice` binary: `sluice --config FILE` runs a broker; `sluice topics|produce|consume|groups
//! ...` are the admin tools (`sluice::tools`).
//!
//! Start: bind the listener (so that a `listen` port of 0 is known before it is advertised)
//! → connect to the coordination service → start the broker's actors → serve. SIGINT or
//! SIGTERM: stop accepting, answer the requests already read, then shut the broker down
//! cleanly (flush, checkpoints, clean-shutdown marker) and exit 0.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sluice::actors::broker::{self, BrokerOptions};
use sluice::actors::controller::ControllerConfig;
use sluice::actors::group::GroupConfig;
use sluice::actors::log::cleaner::CleanerConfig;
use sluice::actors::replica::{ReplicaConfig, ReplicaManagerConfig};
use sluice::cli::Cli;
use sluice::config::{BrokerConfig, HostPort};
use sluice::connection::ConnectionSettings;
use sluice::handlers::{Context, HandlerSettings};
use sluice::server::{self, ServerSettings};
use sluice::{config, logging};
use tokio::net::TcpListener;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(tool) = cli.tool {
        return sluice::tools::run(tool);
    }
    // clap requires --config when no tool is named.
    let Some(path) = cli.config else {
        eprintln!("sluice: --config FILE is required");
        return ExitCode::from(2);
    };
    let config = match config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.check_config {
        println!("{config}");
        return ExitCode::SUCCESS;
    }
    if let Err(e) = logging::init(config.log_level.as_deref()) {
        eprintln!("sluice: {e}");
        return ExitCode::FAILURE;
    }
    tracing::info!("effective configuration:\n{config}");
    match actix::System::new().block_on(run(config)) {
        Ok(()) => {
            tracing::info!("stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("sluice: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the broker until a signal asks it to stop.
async fn run(config: BrokerConfig) -> Result<(), String> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("listener address: {e}"))?;
    let advertised = config.advertised_with_port(bound.port());
    let coordination = sluice::coordination::connect(&config.coordination)
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
    server::run(listener, ctx, server_settings, shutdown_signal()).await;
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

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            None
        }
    };
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
