//! Produce/consume throughput of the native client against a running broker, with the
//! settings of `tests/clients/bench_produce_consume.py` (confluent-kafka) so the two can be
//! compared on one run: for each value size, a fresh one-partition topic, `--records`
//! records (acks=1, linger.ms=5, batch.size=1 MiB, no compression, no keys), every delivery
//! awaited; then all of them read back with `assign` from offset 0.
//!
//! `cargo run --release --example client_throughput -- 127.0.0.1:9092 1000000 100,1024`

use std::time::{Duration, Instant};

use sluice::client::admin::{Admin, NewTopic};
use sluice::client::{
    ClientConfig, Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let records: usize = args.next().map_or(Ok(1_000_000), |n| n.parse())?;
    let sizes: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "100,1024".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let admin = Admin::new(ClientConfig::new(&bootstrap));
    println!("| value | produce rec/s | produce MB/s | consume rec/s | consume MB/s |");
    println!("|---|---|---|---|---|");
    for size in sizes {
        let topic = format!("sluice-bench-{size}-{}", std::process::id());
        for (name, outcome) in admin.create_topics(&[NewTopic::new(&topic, 1, 1)]).await? {
            outcome.map_err(|e| format!("{name}: {e}"))?;
        }
        admin
            .wait_for_leaders(&topic, Duration::from_secs(30))
            .await?;

        let mut config = ProducerConfig::new(&bootstrap);
        config
            .set("acks", "1")?
            .set("linger.ms", "5")?
            .set("batch.size", "1048576")?
            .set("enable.idempotence", "false")?;
        let producer = Producer::new(config)?;
        let value = vec![b'x'; size];
        let started = Instant::now();
        let mut deliveries = Vec::with_capacity(records);
        for _ in 0..records {
            deliveries.push(
                producer
                    .send(ProducerRecord::new(&topic).value(value.clone()))
                    .await?,
            );
        }
        for d in deliveries {
            d.await?;
        }
        let produce = started.elapsed();
        producer.close(Duration::from_secs(10)).await;

        let mut config = ConsumerConfig::new(&bootstrap);
        config
            .set("auto.offset.reset", "earliest")?
            .set("max.poll.records", "100000")?;
        let consumer = Consumer::new(config)?;
        consumer.assign(&[TopicPartition::new(&topic, 0)]);
        let started = Instant::now();
        let mut read = 0;
        while read < records {
            read += consumer.poll(Duration::from_secs(1)).await?.len();
        }
        let consume = started.elapsed();
        consumer.close().await;

        let rate = |d: Duration| records as f64 / d.as_secs_f64();
        let mbs = |d: Duration| (records * size) as f64 / d.as_secs_f64() / 1e6;
        println!(
            "| {size} B | {:.0} | {:.1} | {:.0} | {:.1} |",
            rate(produce),
            mbs(produce),
            rate(consume),
            mbs(consume)
        );
    }
    Ok(())
}
