//! A whole broker (no network): start on the embedded backend, create a topic through the
//! controller, see its replicas start, produce and fetch through them, shut down cleanly
//! and restart with every record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sluice_actors::broker::{self, BrokerHandle, BrokerOptions};
use sluice_actors::controller::{ControllerConfig, CreateTopics, NewTopic};
use sluice_actors::log::batch;
use sluice_actors::log::checkpoint::TopicPartition;
use sluice_actors::log::compression::Compression;
use sluice_actors::log::config::LogConfig;
use sluice_actors::replica::messages::{Fetch, Produce};
use sluice_actors::replica::ReplicaManagerConfig;
use sluice_coordination::embedded::EmbeddedStore;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn options(dir: &std::path::Path) -> BrokerOptions {
    BrokerOptions {
        broker_id: 1,
        advertised_host: "127.0.0.1".into(),
        advertised_port: 9092,
        rack: None,
        log_defaults: LogConfig::default(),
        controller: ControllerConfig::new(1),
        replicas: ReplicaManagerConfig::new(dir.join("data")),
        groups: sluice_actors::group::GroupConfig::with_defaults(dir.join("data")),
        registration_wait: Duration::from_secs(5),
    }
}

async fn start(store: &Arc<EmbeddedStore>, dir: &std::path::Path) -> BrokerHandle {
    let coord = Arc::new(store.connect("/sluice", Duration::from_secs(10)).unwrap());
    broker::start(coord, options(dir)).await.unwrap()
}

async fn wait_for_replicas(b: &BrokerHandle, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.replicas.len() < n {
        assert!(Instant::now() < deadline, "replicas did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix::test]
async fn create_produce_fetch_shutdown_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let b = start(&store, dir.path()).await;

    // The only broker becomes the controller and creates the topic.
    let deadline = Instant::now() + Duration::from_secs(20);
    let created = loop {
        let r = b
            .controller
            .send(CreateTopics {
                topics: vec![NewTopic::new("orders", 3, 1)],
                validate_only: false,
                timeout: Duration::from_secs(10),
            })
            .await
            .unwrap();
        match r {
            Ok(results) => break results,
            Err(sluice_actors::Error::NotController) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(created[0].1.is_ok(), "{created:?}");
    wait_for_replicas(&b, 3).await;

    let tp = TopicPartition::new("orders", 1);
    let replica = b.replicas.get(&tp).expect("partition 1 runs here");
    let mut records = batch::simple_batch(
        Compression::None,
        now(),
        &[(Some(b"k"), Some(b"v1")), (Some(b"k"), Some(b"v2"))],
    )
    .unwrap();
    let produced = replica
        .send(Produce {
            records: std::mem::take(&mut records).into(),
            acks: -1,
            timeout_ms: 5000,
            now_ms: now(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(produced.base_offset, 0);
    let fetched = replica
        .send(Fetch {
            offset: 0,
            max_bytes: 1 << 20,
            min_one_batch: true,
            isolation_level: 1,
            now_ms: now(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fetched.high_watermark, 2);
    assert!(fetched.records.is_some());

    b.shutdown().await.unwrap();
    assert!(dir.path().join("data/.clean-shutdown").exists());
    drop(b);

    // Restart from the same directories: the topic and its records are back.
    let b = start(&store, dir.path()).await;
    wait_for_replicas(&b, 3).await;
    let replica = b.replicas.get(&tp).unwrap();
    let fetched = replica
        .send(Fetch {
            offset: 0,
            max_bytes: 1 << 20,
            min_one_batch: true,
            isolation_level: 0,
            now_ms: now(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fetched.high_watermark, 2,
        "acknowledged records survive a restart"
    );
    b.shutdown().await.unwrap();
}

#[test]
fn meta_properties_ties_a_data_dir_to_one_broker_of_one_cluster() {
    let dir = tempfile::tempdir().unwrap();
    broker::check_meta_properties(dir.path(), 1, "clusterA").unwrap();
    let text = std::fs::read_to_string(dir.path().join("meta.properties")).unwrap();
    assert!(text.contains("broker.id=1") && text.contains("cluster.id=clusterA"));
    broker::check_meta_properties(dir.path(), 1, "clusterA").unwrap();
    let wrong_broker = broker::check_meta_properties(dir.path(), 2, "clusterA").unwrap_err();
    assert!(
        wrong_broker.to_string().contains("broker.id 1"),
        "{wrong_broker}"
    );
    let wrong_cluster = broker::check_meta_properties(dir.path(), 1, "clusterB").unwrap_err();
    assert!(
        wrong_cluster.to_string().contains("clusterA"),
        "{wrong_cluster}"
    );
}
