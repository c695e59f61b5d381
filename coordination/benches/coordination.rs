//! Coordination benchmark (reports, asserts nothing): compare-and-set throughput and
//! watch notification latency for each backend, against real servers started by the test
//! harness on loopback.
//!
//! `cargo bench -p sluice-coordination --bench coordination` (or `make bench`). Writes a
//! Markdown table to stdout and to `target/bench/coordination.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_coordination::embedded::EmbeddedStore;
use sluice_coordination::etcd::EtcdClient;
use sluice_coordination::zookeeper::ZkClient;
use sluice_coordination::{Backend, Coordination, CoordinationConfig, WatchEvent};

const CAS_OPS: usize = 2000;
const WATCH_SAMPLES: usize = 500;

fn config(backend: Backend, endpoint: String) -> CoordinationConfig {
    CoordinationConfig {
        endpoints: vec![endpoint],
        root: "/bench".into(),
        session_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(10),
        ..CoordinationConfig::new(backend)
    }
}

/// Sequential compare-and-set on one key: each write waits for the previous one.
async fn cas_per_second(c: &Arc<dyn Coordination>) -> f64 {
    let mut version = c.create("/cas", vec![0; 64]).await.unwrap();
    let start = Instant::now();
    for i in 0..CAS_OPS {
        version = c
            .set("/cas", vec![i as u8; 64], Some(version))
            .await
            .unwrap();
    }
    CAS_OPS as f64 / start.elapsed().as_secs_f64()
}

/// Time from just before a write is sent until a second client's watch delivers it.
async fn watch_latency(
    writer: &Arc<dyn Coordination>,
    watcher: &Arc<dyn Coordination>,
) -> Vec<Duration> {
    writer.create("/w", vec![]).await.unwrap();
    let mut watch = watcher.watch("/w").await.unwrap();
    let mut samples = Vec::with_capacity(WATCH_SAMPLES);
    for i in 0..WATCH_SAMPLES {
        let key = format!("/w/{i}");
        let sent = Instant::now();
        writer.create(&key, vec![1; 64]).await.unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
                Ok(Some(WatchEvent::Put { key: k, .. })) if k == key => break,
                Ok(Some(_)) => {}
                other => panic!("watch stalled: {other:?}"),
            }
        }
        samples.push(sent.elapsed());
    }
    samples.sort();
    samples
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut rows = Vec::new();
    for backend in [Backend::Embedded, Backend::ZooKeeper, Backend::Etcd] {
        // Keep the servers alive for the whole measurement.
        let (zk, etcd, _embedded_dir);
        let (a, b): (Arc<dyn Coordination>, Arc<dyn Coordination>) = match backend {
            Backend::Embedded => {
                let dir = tempfile::tempdir().unwrap();
                let s = EmbeddedStore::open(dir.path()).unwrap();
                _embedded_dir = dir;
                (
                    Arc::new(s.connect("/bench", Duration::from_secs(10)).unwrap()),
                    Arc::new(s.connect("/bench", Duration::from_secs(10)).unwrap()),
                )
            }
            Backend::ZooKeeper => {
                zk = support::zookeeper::ZkServer::start().await;
                let cfg = config(backend, zk.endpoint());
                (
                    Arc::new(ZkClient::connect(&cfg).await.unwrap()),
                    Arc::new(ZkClient::connect(&cfg).await.unwrap()),
                )
            }
            Backend::Etcd => {
                etcd = support::etcd::EtcdServer::start().await;
                let cfg = config(backend, etcd.endpoint());
                (
                    Arc::new(EtcdClient::connect(&cfg).await.unwrap()),
                    Arc::new(EtcdClient::connect(&cfg).await.unwrap()),
                )
            }
        };
        let cas = cas_per_second(&a).await;
        let lat = watch_latency(&a, &b).await;
        let row = format!(
            "| {} | {:.0} | {:.3} | {:.3} | {:.3} |",
            backend.name(),
            cas,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
        );
        println!("{row}");
        rows.push(row);
        a.close().await.unwrap();
        b.close().await.unwrap();
    }
    let table = format!(
        "# Coordination backends on this machine\n\n{} sequential CAS writes of 64 B on one key; watch latency = write sent → \
         other client's watch delivers it ({} samples). Embedded persists with sled and flushes every write; ZooKeeper \
         runs with forceSync=no (test harness); etcd with its defaults (fsync per write).\n\n\
         | backend | CAS ops/s | watch p50 ms | watch p99 ms | watch max ms |\n|---|---|---|---|---|\n{}\n",
        CAS_OPS,
        WATCH_SAMPLES,
        rows.join("\n")
    );
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("coordination.md"), &table).unwrap();
    println!("\n{table}");
}
