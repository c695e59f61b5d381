//! The CLI tour (`tests/cli/tour.sh`, also the README's) against the real broker binary:
//! `sluice topics`, `produce`, `consume` and `groups` used the way a shell user would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use support::{root, run, Broker, Coordination};

#[test]
fn the_cli_tour_creates_produces_consumes_describes_and_resets() {
    let b = Broker::start_with(Coordination::Embedded);
    let out = run(
        Command::new("bash")
            .arg(root().join("tests/cli/tour.sh"))
            .env("SLUICE", env!("CARGO_BIN_EXE_sluice"))
            .env("BOOTSTRAP", b.addr()),
        None,
        Duration::from_secs(180),
    );
    assert!(
        out.status.success() && out.stdout.contains("tour: ok"),
        "{}\n--- broker log (tail) ---\n{}",
        out.describe(),
        b.log_tail()
    );
}
