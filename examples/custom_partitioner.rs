//! A user partitioner — orders of one customer go to one partition, chosen by the customer
//! id before the first `-` of the key — and JSON values with the serde serializer.
//!
//! `cargo run --example custom_partitioner -- 127.0.0.1:9092 orders`
//! (the topic must exist with several partitions, or be auto-created).

use std::sync::Arc;
use std::time::Duration;

use sluice::client::producer::{key_partition, JsonSerializer, Partitioner, StringSerializer};
use sluice::client::{Producer, ProducerConfig, ProducerRecord};

/// `acme-1042` → the partition of `acme`, so one customer's orders stay in order.
#[derive(Debug)]
struct ByCustomer;

impl Partitioner for ByCustomer {
    fn partition(
        &self,
        _topic: &str,
        key: Option<&[u8]>,
        partitions: i32,
        _available: &[i32],
    ) -> i32 {
        let key = key.unwrap_or_default();
        let customer = key.split(|b| *b == b'-').next().unwrap_or_default();
        key_partition(customer, partitions)
    }
}

#[derive(serde::Serialize)]
struct Order {
    customer: String,
    id: u32,
    amount_cents: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "orders".into());
    let producer =
        Producer::with_partitioner(ProducerConfig::new(&bootstrap), Arc::new(ByCustomer))?;
    let mut by_customer =
        std::collections::BTreeMap::<String, std::collections::BTreeSet<i32>>::new();
    for (i, customer) in ["acme", "globex", "initech", "acme", "globex", "acme"]
        .iter()
        .enumerate()
    {
        let order = Order {
            customer: (*customer).into(),
            id: 1000 + i as u32,
            amount_cents: 1999 * (i as u64 + 1),
        };
        let record = ProducerRecord::new(&topic)
            .key_as(&StringSerializer, &format!("{customer}-{}", order.id))?
            .value_as(&JsonSerializer, &order)?;
        let delivered = producer.send(record).await?.await?;
        by_customer
            .entry((*customer).into())
            .or_default()
            .insert(delivered.partition);
        println!(
            "order {} of {customer} -> partition {}",
            order.id, delivered.partition
        );
    }
    producer.close(Duration::from_secs(10)).await;
    // Every customer's orders landed in exactly one partition.
    for (customer, partitions) in &by_customer {
        if partitions.len() != 1 {
            return Err(format!("{customer}'s orders went to partitions {partitions:?}").into());
        }
    }
    println!("each customer's orders are in one partition: {by_customer:?}");
    Ok(())
}
