//! The `sluice` binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    // The broker (listener, Kafka APIs, actors) is not built yet: say so plainly
    // instead of pretending to serve.
    eprintln!(
        "sluice {}: the broker is not built yet — only the log engine exists so far \
         (see README.md). Nothing is listening.",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
