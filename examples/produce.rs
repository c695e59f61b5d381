//! Produces records to a running broker with the native client.
//!
//! `cargo run --example produce -- 127.0.0.1:9092 my-topic 1000`

use std::time::{Duration, Instant};

use sluice::client::{Producer, ProducerConfig, ProducerRecord};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "example".into());
    let count: usize = args.next().map_or(Ok(1000), |n| n.parse())?;

    let mut config = ProducerConfig::new(&bootstrap);
    config
        .set("linger.ms", "10")?
        .set("compression.type", "lz4")?;
    let producer = Producer::new(config)?;
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        let record = ProducerRecord::new(&topic)
            .key(format!("key-{}", i % 16))
            .value(format!("record {i}"))
            .header("source", Some(b"examples/produce.rs"));
        deliveries.push(producer.send(record).await?);
    }
    let mut last = None;
    for d in deliveries {
        last = Some(d.await?);
    }
    producer.close(Duration::from_secs(10)).await;
    println!(
        "produced {count} records to {topic} in {:?} (last: partition {:?} offset {:?})",
        started.elapsed(),
        last.as_ref().map(|m| m.partition),
        last.as_ref().map(|m| m.offset)
    );
    Ok(())
}
