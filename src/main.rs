//! The `sluice` binary: `sluice --config FILE`.

use std::process::ExitCode;

use clap::Parser;
use sluice::cli::Cli;
use sluice::{config, logging};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config::load(&cli.config) {
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
    // The network layer and the broker actors are not wired yet: say so plainly instead
    // of pretending to serve.
    tracing::error!(
        listen = %config.listen,
        "the broker is not built yet (log engine, coordination, config, protocol codec and actors \
         exist; the listener does not) — nothing is listening"
    );
    ExitCode::from(2)
}
