//! A host program that runs a Sluice broker inside its own actix `System` — embedded
//! coordination, data in a temporary directory — produces and consumes through the native
//! client, and shuts the broker down cleanly.
//!
//! `cargo run --example embedded_broker`

use std::time::Duration;

use sluice::client::{
    Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord, TopicPartition,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // The same format as a node's config file; port 0 picks a free port.
    let config = sluice::config::parse(
        &format!(
            r#"
            broker_id = 1
            listen = "127.0.0.1:0"
            data_dir = "{}"
            [coordination]
            backend = "embedded"
            [config]
            "offsets.topic.replication.factor" = 1
            "group.initial.rebalance.delay.ms" = 0
            "#,
            dir.path().join("data").display()
        ),
        "the embedded example",
    )?;
    actix::System::new().block_on(async move {
        let node = sluice::node::start(config).await?;
        let bootstrap = node.addr.to_string();
        println!("broker listening on {bootstrap}");

        let producer = Producer::new(ProducerConfig::new(&bootstrap))?;
        // The first send creates the topic (auto.create.topics.enable).
        for i in 0..10 {
            let record = ProducerRecord::new("embedded")
                .key(format!("k{i}"))
                .value(format!("hello {i}"));
            let delivered = producer.send(record).await?.await?;
            println!(
                "delivered to {}-{} @ {}",
                delivered.topic, delivered.partition, delivered.offset
            );
        }
        producer.close(Duration::from_secs(5)).await;

        let mut config = ConsumerConfig::new(&bootstrap);
        config.set("auto.offset.reset", "earliest")?;
        let consumer = Consumer::new(config)?;
        consumer.assign(&[TopicPartition::new("embedded", 0)]);
        let mut read = 0;
        while read < 10 {
            for r in consumer.poll(Duration::from_secs(1)).await? {
                println!(
                    "read {}: {}",
                    r.offset,
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
                );
                read += 1;
            }
        }
        consumer.close().await;

        node.shutdown().await?;
        println!("broker stopped cleanly");
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
