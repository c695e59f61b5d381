//! Runs each example (`examples/`) the way its doc comment says, against a real broker where
//! it needs one, and checks what it prints. `cargo test` builds the examples first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::kafka::{ops, Client};
use support::{run, Broker, Coordination, Output};

/// The built example binary (target/<profile>/examples/<name>, beside this test's deps/).
fn example(name: &str) -> Command {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path: PathBuf = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: `cargo test` without a target filter builds the examples (or `cargo build --examples`)",
        path.display()
    );
    Command::new(path)
}

fn ok(name: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "example {name} failed\n{}",
        out.describe()
    );
    out.stdout.clone()
}

#[test]
fn embedded_broker_runs_produces_consumes_and_stops() {
    let out = run(
        &mut example("embedded_broker"),
        None,
        Duration::from_secs(120),
    );
    let stdout = ok("embedded_broker", &out);
    assert!(stdout.contains("read 9: hello 9"), "{stdout}");
    assert!(stdout.contains("broker stopped cleanly"), "{stdout}");
}

#[test]
fn produce_consume_group_and_custom_partitioner_against_a_broker() {
    let b = Broker::start_with(Coordination::Embedded);
    let mut raw = Client::connect(&b.addr());
    ops::create_topic(&mut raw, "example", 3, &[]);
    ops::create_topic(&mut raw, "orders", 4, &[]);
    let stdout = ok(
        "produce",
        &run(
            example("produce").args([&b.addr(), "example", "500"]),
            None,
            Duration::from_secs(120),
        ),
    );
    assert!(
        stdout.contains("produced 500 records to example"),
        "{stdout}"
    );
    let stdout = ok(
        "consume_group",
        &run(
            example("consume_group").args([&b.addr(), "example", "example-group", "500"]),
            None,
            Duration::from_secs(120),
        ),
    );
    assert!(stdout.contains("read 500 records"), "{stdout}");
    let stdout = ok(
        "custom_partitioner",
        &run(
            example("custom_partitioner").args([&b.addr(), "orders"]),
            None,
            Duration::from_secs(120),
        ),
    );
    assert!(
        stdout.contains("each customer's orders are in one partition"),
        "{stdout}"
    );
}
