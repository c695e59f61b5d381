//! The `sluice` binary: `sluice --config FILE` runs a broker; `sluice topics|produce|consume|groups
//! ...` are the admin tools (`sluice::tools`).
//!
//! Start: bind the listener (so that a `listen` port of 0 is known before it is advertised)
//! → connect to the coordination service → start the broker's actors → serve. SIGINT or
//! SIGTERM: stop accepting, answer the requests already read, then shut the broker down
//! cleanly (flush, checkpoints, clean-shutdown marker) and exit 0.

use std::process::ExitCode;

use clap::Parser;
use sluice::cli::Cli;
use sluice::{config, logging, node};

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
    match actix::System::new().block_on(node::run(config, shutdown_signal())) {
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
