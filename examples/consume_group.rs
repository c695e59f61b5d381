//! Consumes a topic as a member of a consumer group, committing after each poll.
//!
//! `cargo run --example consume_group -- 127.0.0.1:9092 my-topic my-group 1000`
//! (stops after that many records, or after 10 s without one).

use std::time::{Duration, Instant};

use sluice::client::{Consumer, ConsumerConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "example".into());
    let group = args.next().unwrap_or_else(|| "example-group".into());
    let wanted: usize = args.next().map_or(Ok(usize::MAX), |n| n.parse())?;

    let mut config = ConsumerConfig::new(&bootstrap);
    config
        .set("group.id", &group)?
        .set("auto.offset.reset", "earliest")?
        .set("enable.auto.commit", "false")?;
    let consumer = Consumer::new(config)?;
    consumer.subscribe(&[topic.as_str()])?;
    let mut read = 0;
    let mut last_record = Instant::now();
    while read < wanted && last_record.elapsed() < Duration::from_secs(10) {
        let records = consumer.poll(Duration::from_millis(500)).await?;
        if records.is_empty() {
            continue;
        }
        last_record = Instant::now();
        read += records.len();
        consumer.commit_sync(None).await?;
    }
    println!("read {read} records; committed {:?}", consumer.positions());
    consumer.close().await;
    Ok(())
}
