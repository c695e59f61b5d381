//! The scenario matrix: what is run, in which order, and how each figure is put beside its
//! ceiling.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, Producer as _};
use sluice::client::admin::{Admin, NewTopic};
use sluice::client::{ClientConfig, OffsetSpec, TopicPartition};

use crate::broker::{Backend, Process};
use crate::load::{self, Load, Outcome};
use crate::report::{Report, Row, Runs, Section, Unit};
use crate::{limits, Fail, Options};

const SIZES: [usize; 2] = [100, 1024];
const PARTITIONS: [i32; 2] = [1, 8];
const ACKS: [&str; 3] = ["0", "1", "all"];

/// The ceilings later sections compare with: the loopback TCP bandwidth, and the null
/// broker's produce figure per generator, value size and partition count ([`key`]).
#[derive(Debug, Default, Clone)]
struct Ceilings {
    loopback: Option<f64>,
    loopback_sendfile: Option<f64>,
    page_cache_write: Option<f64>,
    null: BTreeMap<String, f64>,
}

/// One section of the report.
type SectionRun<'a> = &'a dyn Fn(&mut Report, &mut Ceilings) -> Result<(), Fail>;

fn runtime() -> Result<tokio::runtime::Runtime, Fail> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn records_for(o: &Options, size: usize) -> u64 {
    let bytes: u64 = if o.quick { 64 << 20 } else { 512 << 20 };
    bytes / size as u64
}

fn work_dir(o: &Options, name: &str) -> Result<PathBuf, Fail> {
    let d = o.out.join("work").join(name);
    if d.exists() {
        std::fs::remove_dir_all(&d)?;
    }
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Runs every section `o` asks for.
pub(crate) fn run_all(o: &Options) -> Report {
    let mut report = Report::default();
    report.header.push("## Sluice benchmark".into());
    report.header.push(String::new());
    report.header.push(machine());
    let mut ceilings = Ceilings::default();
    let sections: [(&str, SectionRun<'_>); 8] = [
        ("limits", &|r, c| limits_section(o, r, c)),
        ("null", &|r, c| null_section(o, r, &mut c.null)),
        ("produce", &|r, c| produce_section(o, r, c)),
        ("consume", &|r, c| consume_section(o, r, c)),
        ("latency", &|r, _| latency_section(o, r)),
        ("partitions", &|r, _| partitions_section(o, r)),
        ("coordination", &|r, _| coordination_section(o, r)),
        ("strace", &|r, _| strace_section(o, r)),
    ];
    for (name, section) in sections {
        if !o.wants(name) {
            continue;
        }
        eprintln!("sluice-bench: {name}");
        if let Err(e) = section(&mut report, &mut ceilings) {
            report.failures.push(format!("{name}: {e}"));
        }
        // Each section's table as soon as it is done, for whoever watches.
        if let Some(s) = report.sections.last() {
            eprintln!("  {} rows in \"{}\"", s.rows.len(), s.title);
        }
        let _ = report.write(&o.out);
    }
    if let Ok(dir) = std::fs::canonicalize(o.out.join("work")) {
        let _ = std::fs::remove_dir_all(dir);
    }
    report
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0);
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "{date}; {cpus} CPUs ({model}), {:.0} GiB RAM; broker, load generator and null broker share them.",
        mem as f64 / (1024.0 * 1024.0)
    )
}

fn limits_section(o: &Options, report: &mut Report, c: &mut Ceilings) -> Result<(), Fail> {
    let dir = work_dir(o, "limits")?;
    let mut cache_write = Runs::default();
    let mut write = Runs::default();
    let mut read = Runs::default();
    let mut tcp = Runs::default();
    let mut tcp_sendfile = Runs::default();
    for _ in 0..o.runs {
        cache_write.push(limits::page_cache_write(&dir)?);
        write.push(limits::disk_write(&dir)?);
        read.push(limits::page_cache_read(&dir)?);
        tcp.push(limits::loopback_tcp()?);
        tcp_sendfile.push(limits::loopback_sendfile(&dir)?);
    }
    c.loopback = Some(tcp.median());
    c.loopback_sendfile = Some(tcp_sendfile.median());
    c.page_cache_write = Some(cache_write.median());
    report.sections.push(Section {
        title: "The machine's limits".into(),
        note: format!(
            "Measured in the data directory's file system ({}).",
            dir.display()
        ),
        rows: vec![
            Row::new(
                "page-cache write (no sync)",
                Unit::BytesPerSec,
                cache_write.clone(),
            ),
            Row::new("sequential write + fdatasync", Unit::BytesPerSec, write),
            Row::new("page-cache read", Unit::BytesPerSec, read),
            Row::new("loopback TCP, one stream", Unit::BytesPerSec, tcp),
            Row::new(
                "loopback TCP, one stream, sendfile from the page cache",
                Unit::BytesPerSec,
                tcp_sendfile.clone(),
            ),
        ],
    });
    Ok(())
}

/// "rdkafka"/"sluice" with a size and partition count: the key of a null-broker figure.
fn key(generator: &str, size: usize, partitions: i32) -> String {
    format!("{generator} {size} {partitions}")
}

fn produce_once(
    rt: &tokio::runtime::Runtime,
    generator: &str,
    addr: &str,
    load: &Load,
) -> Result<Outcome, Fail> {
    match generator {
        "rdkafka" => load::rdkafka_produce(addr, load),
        _ => rt.block_on(load::sluice_produce(addr, load)),
    }
}

fn null_section(
    o: &Options,
    report: &mut Report,
    null: &mut BTreeMap<String, f64>,
) -> Result<(), Fail> {
    let dir = work_dir(o, "null")?;
    let rt = runtime()?;
    let broker = Process::null(&dir)?;
    let mut rows = Vec::new();
    for size in SIZES {
        for partitions in PARTITIONS {
            for generator in ["rdkafka", "sluice"] {
                let mut runs = Runs::default();
                let mut recs = Runs::default();
                for run in 0..o.runs {
                    let load = Load {
                        topic: format!("null-{size}-{partitions}-{run}"),
                        partitions,
                        size,
                        records: records_for(o, size),
                        acks: "1",
                    };
                    let out = produce_once(&rt, generator, &broker.addr, &load)?;
                    runs.push(out.bytes_per_sec());
                    recs.push(out.records_per_sec());
                }
                null.insert(key(generator, size, partitions), runs.median());
                rows.push(
                    Row::new(
                        format!("{generator}, {size} B, {partitions} partition(s), acks=1"),
                        Unit::BytesPerSec,
                        runs,
                    )
                    .extra("records/s", format!("{:.0} k", recs.median() / 1e3)),
                );
            }
        }
    }
    drop(broker);
    report.sections.push(Section {
        title: "Null broker (Produce acknowledged, nothing stored)".into(),
        note: "The load generator's own ceiling: the same requests, answered without any work."
            .into(),
        rows,
    });
    Ok(())
}

/// Creates `topic` and waits for its leaders. A broker just started may not have elected its
/// controller yet (NOT_CONTROLLER): the request is repeated for up to 30 s.
async fn create_topic(admin: &Admin, topic: &str, partitions: i32) -> Result<(), Fail> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for attempt in 0.. {
        let outcome = match admin
            .create_topics(&[NewTopic::new(topic, partitions, 1)])
            .await
        {
            Ok(results) => results.into_iter().try_for_each(|(name, outcome)| {
                outcome.map_err(|e| Fail::msg(format!("create {name}: {e}")))
            }),
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(()) => break,
            // An earlier attempt that timed out may have created it.
            Err(e) if attempt > 0 && e.to_string().contains("TOPIC_ALREADY_EXISTS") => break,
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    admin
        .wait_for_leaders(topic, Duration::from_secs(60))
        .await?;
    Ok(())
}

/// Every partition of `topic` holds what record i → partition i mod P puts there. With
/// acks=0 nothing was acknowledged: the requests may still be on their way in, so the ends are
/// read again (for up to 10 s) until they reach the count.
async fn verify_counts(
    admin: &Admin,
    topic: &str,
    partitions: i32,
    records: u64,
) -> Result<(), Fail> {
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ends = admin.list_offsets(&tps, OffsetSpec::Latest).await?;
        let short = (0..partitions).find_map(|p| {
            let want =
                records / partitions as u64 + u64::from((p as u64) < records % partitions as u64);
            let got = ends
                .get(&TopicPartition::new(topic, p))
                .copied()
                .unwrap_or(-1);
            (got != want as i64).then_some((p, got, want))
        });
        match short {
            None => return Ok(()),
            Some((p, got, want)) if got > want as i64 || Instant::now() > deadline => {
                return Err(Fail::msg(format!(
                    "{topic}-{p} ends at {got}, {want} records were sent"
                )));
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn produce_section(o: &Options, report: &mut Report, c: &Ceilings) -> Result<(), Fail> {
    let dir = work_dir(o, "produce")?;
    let rt = runtime()?;
    let broker = Process::sluice(&dir, &Backend::Embedded, &[])?;
    let admin = Admin::new(ClientConfig::new(&broker.addr));
    let mut scenarios = Vec::new();
    for size in SIZES {
        for partitions in PARTITIONS {
            for acks in ACKS {
                for generator in ["rdkafka", "sluice"] {
                    scenarios.push((generator, size, partitions, acks));
                }
            }
        }
    }
    // (throughput, records/s, broker CPU per GB) per scenario. Run 1 of every scenario, then
    // run 2 of every scenario...: whatever drifts over the section (the page cache filling,
    // another process) is spread over all of them instead of weighing on the last ones.
    let mut figures = vec![(Runs::default(), Runs::default(), Runs::default()); scenarios.len()];
    let mut n = 0;
    for _ in 0..o.runs {
        for (i, &(generator, size, partitions, acks)) in scenarios.iter().enumerate() {
            n += 1;
            let topic = format!("produce-{n}");
            let run = || -> Result<(Outcome, Duration), Fail> {
                rt.block_on(create_topic(&admin, &topic, partitions))?;
                let load = Load {
                    topic: topic.clone(),
                    partitions,
                    size,
                    records: records_for(o, size),
                    acks,
                };
                let before = broker.cpu()?;
                let out = produce_once(&rt, generator, &broker.addr, &load)?;
                let used = broker.cpu()?.saturating_sub(before);
                rt.block_on(verify_counts(&admin, &topic, partitions, load.records))?;
                Ok((out, used))
            };
            let outcome = run();
            let _ = rt.block_on(admin.delete_topics(&[topic.as_str()]));
            match outcome {
                Ok((out, used)) => {
                    let (runs, recs, cpu) = &mut figures[i];
                    runs.push(out.bytes_per_sec());
                    recs.push(out.records_per_sec());
                    cpu.push(used.as_secs_f64() / (out.bytes as f64 / 1e9));
                }
                Err(e) => report.failures.push(format!(
                    "produce {generator}, {size} B, {partitions} partition(s), acks={acks}: {e}"
                )),
            }
        }
    }
    let mut rows = Vec::new();
    for ((generator, size, partitions, acks), (runs, recs, cpu)) in
        scenarios.into_iter().zip(figures)
    {
        if runs.0.is_empty() {
            continue;
        }
        let name = format!("{generator}, {size} B, {partitions} partition(s), acks={acks}");
        let mut row = Row::new(name, Unit::BytesPerSec, runs)
            .extra("records/s", format!("{:.0} k", recs.median() / 1e3))
            .extra("broker CPU", format!("{:.2} s/GB", cpu.median()));
        if let Some(ceiling) = c.null.get(&key(generator, size, partitions)) {
            row = row.versus("the null broker", *ceiling);
        }
        if let Some(ceiling) = c.page_cache_write {
            row = row.versus("page-cache write", ceiling);
        }
        rows.push(row);
    }
    broker.stop()?;
    report.sections.push(Section {
        title: "Produce to Sluice".into(),
        note: "Embedded coordination, one broker, replication factor 1; linger.ms=5, no compression; \
               every record's delivery awaited and the partition end offsets checked after each run. \
               The scenarios take turns: run 1 of each, then run 2 of each, and so on."
            .into(),
        rows,
    });
    Ok(())
}

fn consume_section(o: &Options, report: &mut Report, c: &mut Ceilings) -> Result<(), Fail> {
    let dir = work_dir(o, "consume")?;
    let rt = runtime()?;
    let broker = Process::sluice(&dir, &Backend::Embedded, &[])?;
    let admin = Admin::new(ClientConfig::new(&broker.addr));
    let mut rows = Vec::new();
    for size in SIZES {
        for partitions in PARTITIONS {
            let topic = format!("consume-{size}-{partitions}");
            rt.block_on(create_topic(&admin, &topic, partitions))?;
            let records = records_for(o, size);
            let load = Load {
                topic: topic.clone(),
                partitions,
                size,
                records,
                acks: "1",
            };
            load::rdkafka_produce(&broker.addr, &load)?;
            rt.block_on(verify_counts(&admin, &topic, partitions, records))?;
            for reader in ["raw", "rdkafka", "sluice"] {
                let mut runs = Runs::default();
                let mut recs = Runs::default();
                let mut cpu = Runs::default();
                for _ in 0..o.runs {
                    let before = broker.cpu()?;
                    let out = match reader {
                        "raw" => load::raw_consume(&broker.addr, &topic, partitions, records)?,
                        "rdkafka" => {
                            load::rdkafka_consume(&broker.addr, &topic, partitions, records)?
                        }
                        _ => rt.block_on(load::sluice_consume(
                            &broker.addr,
                            &topic,
                            partitions,
                            records,
                        ))?,
                    };
                    let used = broker.cpu()?.saturating_sub(before);
                    if out.records != records {
                        return Err(Fail::msg(format!(
                            "{reader} read {} of {records} records",
                            out.records
                        )));
                    }
                    let payload = records * size as u64;
                    runs.push(payload as f64 / out.elapsed.as_secs_f64());
                    recs.push(out.records_per_sec());
                    cpu.push(used.as_secs_f64() / (payload as f64 / 1e9));
                }
                let mut row = Row::new(
                    format!("{reader}, {size} B, {partitions} partition(s)"),
                    Unit::BytesPerSec,
                    runs,
                )
                .extra("records/s", format!("{:.0} k", recs.median() / 1e3))
                .extra("broker CPU", format!("{:.2} s/GB", cpu.median()));
                if let Some(l) = c.loopback {
                    row = row.versus("loopback TCP", l);
                }
                if let Some(l) = c.loopback_sendfile {
                    row = row.versus("loopback sendfile", l);
                }
                rows.push(row);
            }
            rt.block_on(admin.delete_topics(&[topic.as_str()]))?;
        }
    }
    broker.stop()?;
    report.sections.push(Section {
        title: "Consume from Sluice (page cache)".into(),
        note: "MB/s of record values. raw = the harness's fetch-and-discard reader (batches walked by their \
               headers, offsets checked for gaps); rdkafka and sluice read every record and check that each \
               value holds its own offset, timed from the first record they deliver (their bootstrap and \
               metadata round trips are not the fetch path). Each reader starts from offset 0 of a topic \
               written once (librdkafka, acks=1) and read back whole, every run."
            .into(),
        rows,
    });
    Ok(())
}

/// Nanoseconds since the harness's start: the clock both sides of the latency run read.
fn now_ns(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

fn latency_section(o: &Options, report: &mut Report) -> Result<(), Fail> {
    let dir = work_dir(o, "latency")?;
    let rt = runtime()?;
    let broker = Process::sluice(&dir, &Backend::Embedded, &[])?;
    let admin = Admin::new(ClientConfig::new(&broker.addr));
    let mut rows = Vec::new();
    let seconds: u64 = if o.quick { 3 } else { 10 };
    for rate in [10_000u64, 100_000] {
        let mut p50 = Runs::default();
        let mut p99 = Runs::default();
        let mut p999 = Runs::default();
        let mut max = Runs::default();
        for run in 0..o.runs {
            let topic = format!("latency-{rate}-{run}");
            rt.block_on(create_topic(&admin, &topic, 1))?;
            let mut lat = latency_run(&broker.addr, &topic, rate, seconds)?;
            lat.sort_unstable();
            let q = |f: f64| lat[((lat.len() as f64 * f) as usize).min(lat.len() - 1)] as f64 / 1e9;
            p50.push(q(0.5));
            p99.push(q(0.99));
            p999.push(q(0.999));
            max.push(q(1.0));
            rt.block_on(admin.delete_topics(&[topic.as_str()]))?;
        }
        for (name, runs) in [("p50", p50), ("p99", p99), ("p99.9", p999), ("max", max)] {
            rows.push(Row::new(
                format!("{} k records/s, {name}", rate / 1000),
                Unit::Millis,
                runs,
            ));
        }
    }
    broker.stop()?;
    report.sections.push(Section {
        title: "End-to-end latency (produce → consume)".into(),
        note: format!(
            "librdkafka producer (linger.ms=0, acks=1) at a fixed rate for {seconds} s, 100 B records holding \
             their send time; a librdkafka consumer tailing the partition. The first second is warm-up and \
             is not counted."
        ),
        rows,
    });
    Ok(())
}

/// Latencies (ns) of one run at `rate` records/s for `seconds`.
fn latency_run(addr: &str, topic: &str, rate: u64, seconds: u64) -> Result<Vec<u64>, Fail> {
    let start = Instant::now();
    let total = rate * (seconds + 1);
    let warmup = rate;
    let (addr_c, topic_c) = (addr.to_owned(), topic.to_owned());
    let consumer = std::thread::spawn(move || -> Result<Vec<u64>, Fail> {
        let mut lat = Vec::with_capacity(total as usize);
        let mut expect = 0u64;
        load::rdkafka_tail(&addr_c, &topic_c, |v| {
            let now = now_ns(start);
            let seq = v
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes);
            let sent = v
                .get(8..16)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes);
            if seq != Some(expect) {
                lat.clear();
                expect = u64::MAX;
                return false;
            }
            if expect >= warmup {
                lat.push(now.saturating_sub(sent.unwrap_or(now)));
            }
            expect += 1;
            expect < total
        })?;
        if expect != total {
            return Err(Fail::msg("the latency consumer saw a record out of order"));
        }
        Ok(lat)
    });
    let (producer, failed) = load::rdkafka_latency_producer(addr)?;
    let mut value = [b'x'; 100];
    let begun = Instant::now();
    let mut i = 0u64;
    while i < total {
        // Every record due by now, then a short sleep.
        let due =
            ((begun.elapsed().as_nanos() as u64).saturating_mul(rate) / 1_000_000_000).min(total);
        while i < due {
            value[..8].copy_from_slice(&i.to_be_bytes());
            value[8..16].copy_from_slice(&now_ns(start).to_be_bytes());
            let rec = BaseRecord::<(), [u8]>::to(topic)
                .partition(0)
                .payload(&value[..]);
            if let Err((e, _)) = producer.send(rec) {
                return Err(Fail::msg(format!("latency producer: {e}")));
            }
            i += 1;
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_micros(100));
    }
    producer.flush(Duration::from_secs(60))?;
    if failed.load(Ordering::Relaxed) != 0 {
        return Err(Fail::msg("latency producer: deliveries failed"));
    }
    let lat = consumer
        .join()
        .map_err(|_| Fail::msg("the latency consumer panicked"))??;
    if lat.is_empty() {
        return Err(Fail::msg("no latencies"));
    }
    Ok(lat)
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}
fn map_count(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Until every partition of `topic` has a leader and answers ListOffsets without an error.
async fn wait_served(addr: &str, topic: &str, partitions: i32) -> Result<(), Fail> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let admin = Admin::new(ClientConfig::new(addr));
        let ready = async {
            admin
                .wait_for_leaders(topic, Duration::from_secs(300))
                .await?;
            let tps: Vec<TopicPartition> = (0..partitions)
                .map(|p| TopicPartition::new(topic, p))
                .collect();
            let ends = admin.list_offsets(&tps, OffsetSpec::Latest).await?;
            Ok::<bool, Fail>(ends.len() == partitions as usize)
        };
        match ready.await {
            Ok(true) => return Ok(()),
            Ok(false) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Ok(false) => return Err(Fail::msg(format!("{topic} not served after 300 s"))),
            Err(e) => return Err(e),
        }
    }
}

fn partitions_section(o: &Options, report: &mut Report) -> Result<(), Fail> {
    let rt = runtime()?;
    let mut rows = Vec::new();
    for count in [1_000i32, 10_000] {
        let mut create = Runs::default();
        let mut start = Runs::default();
        let mut rss = Runs::default();
        let mut meta = Runs::default();
        let mut fds = Runs::default();
        let mut maps = Runs::default();
        for _ in 0..o.runs {
            let dir = work_dir(o, &format!("partitions-{count}"))?;
            let broker = Process::sluice(&dir, &Backend::Embedded, &[])?;
            let mut config = ClientConfig::new(&broker.addr);
            config.set("request.timeout.ms", "120000")?;
            let admin = Admin::new(config);
            let t = Instant::now();
            rt.block_on(create_topic(&admin, "many", count))?;
            create.push(t.elapsed().as_secs_f64());
            broker.stop()?;
            // From spawn: restart() returns once the listener accepts, with the time that took.
            let (broker, listening) = Process::restart(&dir)?;
            let t = Instant::now();
            rt.block_on(wait_served(&broker.addr, "many", count))?;
            start.push((listening + t.elapsed()).as_secs_f64());
            std::thread::sleep(Duration::from_secs(2));
            rss.push(broker.rss()? as f64);
            fds.push(fd_count(broker.pid()) as f64);
            maps.push(map_count(broker.pid()) as f64);
            let mut conn = crate::raw::Conn::connect(&broker.addr)?;
            let mut lat = Runs::default();
            for _ in 0..20 {
                let t = Instant::now();
                let m = conn.call(
                    &kafka_protocol::messages::MetadataRequest::default().with_topics(None),
                    9,
                )?;
                lat.push(t.elapsed().as_secs_f64());
                let n: usize = m.topics.iter().map(|t| t.partitions.len()).sum();
                if n < count as usize {
                    return Err(Fail::msg(format!(
                        "Metadata listed {n} partitions of {count}"
                    )));
                }
            }
            meta.push(lat.median());
            broker.stop()?;
        }
        let c = count / 1000;
        rows.push(Row::new(
            format!("{c}k partitions: create (CreateTopics until all have leaders)"),
            Unit::Millis,
            create,
        ));
        rows.push(Row::new(
            format!("{c}k partitions: start-up (spawn → every partition served)"),
            Unit::Millis,
            start,
        ));
        rows.push(Row::new(
            format!("{c}k partitions: idle RSS"),
            Unit::Mebibytes,
            rss,
        ));
        rows.push(Row::new(
            format!("{c}k partitions: open files"),
            Unit::Count,
            fds,
        ));
        rows.push(Row::new(
            format!("{c}k partitions: memory maps"),
            Unit::Count,
            maps,
        ));
        rows.push(Row::new(
            format!("{c}k partitions: Metadata (all topics), median of 20"),
            Unit::Millis,
            meta,
        ));
    }
    report.sections.push(Section {
        title: "Many partitions on one broker".into(),
        note: "One topic of N partitions, replication factor 1. Start-up is measured on a restart over the \
               existing data directory: from spawning the process until Metadata gives every partition a \
               leader and ListOffsets answers for all of them."
            .into(),
        rows,
    });
    Ok(())
}

/// An etcd server on free loopback ports in `dir`; killed on drop.
fn etcd(dir: &Path) -> Result<(std::process::Child, String), Fail> {
    let client = crate::broker::free_port()?;
    let peer = crate::broker::free_port()?;
    let child = std::process::Command::new("etcd")
        .args([
            "--name",
            "bench",
            "--data-dir",
            &dir.join("etcd").display().to_string(),
            "--listen-client-urls",
            &format!("http://127.0.0.1:{client}"),
            "--advertise-client-urls",
            &format!("http://127.0.0.1:{client}"),
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
            "--initial-cluster",
            &format!("bench=http://127.0.0.1:{peer}"),
            "--log-level",
            "error",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| {
            Fail::msg(format!(
                "cannot start etcd (make deps installs etcd-server): {e}"
            ))
        })?;
    let addr = format!("127.0.0.1:{client}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        if Instant::now() > deadline {
            return Err(Fail::msg("etcd did not listen within 30 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((child, addr))
}

fn coordination_section(o: &Options, report: &mut Report) -> Result<(), Fail> {
    let rt = runtime()?;
    let mut rows = Vec::new();
    let base = work_dir(o, "coordination")?;
    let (mut etcd_child, etcd_addr) = etcd(&base)?;
    let outcome = (|| -> Result<(), Fail> {
        for (name, backend) in [
            ("embedded", Backend::Embedded),
            ("etcd", Backend::Etcd(etcd_addr.clone())),
        ] {
            let broker = Process::sluice(&base.join(name), &backend, &[])?;
            let admin = Admin::new(ClientConfig::new(&broker.addr));
            let mut create = Runs::default();
            let mut produce = Runs::default();
            for run in 0..o.runs {
                let topic = format!("coordination-{run}");
                let t = Instant::now();
                rt.block_on(create_topic(&admin, &topic, 8))?;
                create.push(t.elapsed().as_secs_f64());
                let load = Load {
                    topic: topic.clone(),
                    partitions: 1,
                    size: 1024,
                    records: records_for(o, 1024),
                    acks: "1",
                };
                produce.push(load::rdkafka_produce(&broker.addr, &load)?.bytes_per_sec());
                rt.block_on(verify_counts(&admin, &topic, 1, load.records))?;
                rt.block_on(admin.delete_topics(&[topic.as_str()]))?;
            }
            rows.push(Row::new(
                format!("{name}: create a topic of 8 partitions (until all have leaders)"),
                Unit::Millis,
                create,
            ));
            rows.push(Row::new(
                format!("{name}: rdkafka produce 1 KiB, 1 partition, acks=1"),
                Unit::BytesPerSec,
                produce,
            ));
            broker.stop()?;
        }
        Ok(())
    })();
    let _ = etcd_child.kill();
    let _ = etcd_child.wait();
    outcome?;
    report.sections.push(Section {
        title: "Coordination backends".into(),
        note: "The same broker on the embedded store and on a real etcd server (one member, loopback). \
               Coordination is off the produce path: only topic changes and leadership go through it."
            .into(),
        rows,
    });
    Ok(())
}

/// The fetch path under `strace -c -f`: the system calls of a raw consume of 1 KiB records.
fn strace_section(o: &Options, report: &mut Report) -> Result<(), Fail> {
    let dir = work_dir(o, "strace")?;
    let rt = runtime()?;
    let broker = Process::sluice(&dir, &Backend::Embedded, &[])?;
    let admin = Admin::new(ClientConfig::new(&broker.addr));
    let records = records_for(o, 1024) / 4;
    rt.block_on(create_topic(&admin, "strace", 1))?;
    let load = Load {
        topic: "strace".into(),
        partitions: 1,
        size: 1024,
        records,
        acks: "1",
    };
    load::rdkafka_produce(&broker.addr, &load)?;
    // Twice: `strace -c -f` (the summary), then every call with its result, to add up the
    // bytes each system call moved.
    let summary = dir.join("strace-c.txt");
    let calls = dir.join("strace-calls.txt");
    let pid = broker.pid().to_string();
    for args in [
        vec!["-c", "-f", "-o", path_str(&summary)?, "-p", &pid],
        vec!["-f", "-qq", "-o", path_str(&calls)?, "-p", &pid],
    ] {
        let mut strace = std::process::Command::new("strace")
            .args(&args)
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| Fail::msg(format!("cannot start strace (make bench installs it): {e}")))?;
        // strace attaches to every thread of the broker first.
        std::thread::sleep(Duration::from_secs(1));
        let read = load::raw_consume(&broker.addr, "strace", 1, records);
        let _ = std::process::Command::new("kill")
            .args(["-INT", &strace.id().to_string()])
            .status();
        let _ = strace.wait();
        let read = read?;
        if read.records != records {
            return Err(Fail::msg(format!("read {} of {records}", read.records)));
        }
    }
    let text = std::fs::read_to_string(&summary)?;
    let moved = bytes_per_syscall(&std::fs::read_to_string(&calls)?);
    let mut section = Section {
        title: "System calls of the fetch path (strace on the broker)".into(),
        note: format!(
            "A raw consume of {records} records of 1 KiB ({:.0} MB of values) from the page cache, \
             traced twice. `strace -c -f`:\n\n```\n{}\n```\n\nThen each call with its result: what \
             every read- or send-like system call moved, in bytes (pread64 reads batch headers, 61 bytes \
             each, to find where a fetch starts and ends; the records go out by sendfile).",
            (records * 1024) as f64 / 1e6,
            text.trim_end()
        ),
        rows: Vec::new(),
    };
    for (name, (count, bytes)) in &moved {
        section.rows.push(
            Row::new(
                format!("{name}: bytes"),
                Unit::Count,
                Runs(vec![*bytes as f64]),
            )
            .extra("calls", count.to_string()),
        );
    }
    report.sections.push(section);
    broker.stop()?;
    Ok(())
}

fn path_str(p: &Path) -> Result<&str, Fail> {
    p.to_str()
        .ok_or_else(|| Fail::msg(format!("{} is not UTF-8", p.display())))
}

/// From `strace -f` output: calls and bytes returned per read- and send-like system call.
fn bytes_per_syscall(trace: &str) -> BTreeMap<String, (u64, u64)> {
    const MOVERS: [&str; 10] = [
        "read", "pread64", "readv", "preadv", "recvfrom", "sendfile", "write", "writev", "sendto",
        "sendmsg",
    ];
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for line in trace.lines() {
        if line.contains("<unfinished ...>") {
            continue;
        }
        // "PID name(args) = N" or "PID <... name resumed>...) = N".
        let rest = line.split_once(' ').map_or(line, |(_, r)| r).trim_start();
        let name = match rest.strip_prefix("<... ") {
            Some(r) => r.split(' ').next().unwrap_or(""),
            None => rest.split('(').next().unwrap_or(""),
        };
        if !MOVERS.contains(&name) {
            continue;
        }
        let result = line
            .rsplit_once(" = ")
            .and_then(|(_, r)| r.split_whitespace().next())
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(-1);
        let e = out.entry(name.to_owned()).or_default();
        e.0 += 1;
        e.1 += result.max(0) as u64;
    }
    out
}
