//! `sluice-bench`: the benchmark harness behind `make bench` (docs/PERFORMANCE.md).
//!
//! `sluice-bench [--runs N] [--quick] [--only SECTION[,SECTION]] [--out DIR]` measures the
//! machine's limits, then the `sluice` binary beside it (release build, its own process, a
//! fresh data directory under `DIR/work`) and the null broker (`sluice-bench null-broker ADDR`)
//! under librdkafka and the Sluice client, and writes `DIR/results.md` and `DIR/results.json`
//! (default `target/bench`). Each figure is the median of N runs (default 3) with min–max.
//! Sections: limits, null, produce, consume, latency, partitions, coordination, strace.
//! A run that loses, duplicates or reorders a record fails (listed under "Failed runs"; the
//! process exits 1).

mod broker;
mod limits;
mod load;
mod null_broker;
mod raw;
mod report;
mod scenarios;

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

/// Why a run or a measurement failed.
#[derive(Debug)]
pub(crate) struct Fail(String);

impl Fail {
    pub(crate) fn msg(m: impl Into<String>) -> Fail {
        Fail(m.into())
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Fail {
        Fail(e.to_string())
    }
}
impl From<rdkafka::error::KafkaError> for Fail {
    fn from(e: rdkafka::error::KafkaError) -> Fail {
        Fail(format!("librdkafka: {e}"))
    }
}
impl From<sluice::client::ClientError> for Fail {
    fn from(e: sluice::client::ClientError) -> Fail {
        Fail(format!("sluice client: {e}"))
    }
}

/// The harness's options.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) runs: usize,
    pub(crate) quick: bool,
    pub(crate) only: Option<Vec<String>>,
    pub(crate) out: PathBuf,
}

impl Options {
    pub(crate) fn wants(&self, section: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == section))
    }
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        runs: 3,
        quick: false,
        only: None,
        out: PathBuf::from("target/bench"),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--runs" => o.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--quick" => o.quick = true,
            "--only" => o.only = Some(value()?.split(',').map(str::to_owned).collect()),
            "--out" => o.out = PathBuf::from(value()?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("null-broker") {
        let listen = args.get(1).map(String::as_str).unwrap_or("127.0.0.1:9092");
        let Ok(addr) = listen.parse() else {
            eprintln!("sluice-bench null-broker: bad address {listen}");
            return ExitCode::from(2);
        };
        return match null_broker::serve(addr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sluice-bench null-broker: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.first().map(String::as_str) == Some("load") {
        return match one_load(&args[1..]) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sluice-bench load: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("sluice-bench: {e}");
            }
            eprintln!(
                "usage: sluice-bench [--runs N] [--quick] [--only SECTION[,SECTION...]] [--out DIR]\n\
                 \x20      sluice-bench null-broker HOST:PORT\n\
                 \x20      sluice-bench load produce|consume rdkafka|sluice|raw HOST:PORT TOPIC PARTITIONS SIZE RECORDS [ACKS]\n\
                 sections: limits, null, produce, consume, latency, partitions, coordination, strace"
            );
            return ExitCode::from(2);
        }
    };
    let report = scenarios::run_all(&options);
    let md = report.markdown();
    println!("{md}");
    if let Err(e) = report.write(&options.out) {
        eprintln!("sluice-bench: cannot write {}: {e}", options.out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "written: {0}/results.md, {0}/results.json",
        options.out.display()
    );
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `load produce|consume GENERATOR ADDR TOPIC PARTITIONS SIZE RECORDS [ACKS]`: one run against
/// a broker of your own (the topic must exist), e.g. to profile it.
fn one_load(args: &[String]) -> Result<String, Fail> {
    let [what, generator, addr, topic, partitions, size, records, rest @ ..] = args else {
        return Err(Fail::msg(
            "load needs: produce|consume GENERATOR ADDR TOPIC PARTITIONS SIZE RECORDS [ACKS]",
        ));
    };
    let number = |v: &str| v.parse::<u64>().map_err(|e| Fail::msg(format!("{v}: {e}")));
    let partitions = number(partitions)? as i32;
    let size = number(size)? as usize;
    let records = number(records)?;
    let acks = match rest.first().map(String::as_str) {
        None | Some("1") => "1",
        Some("0") => "0",
        Some("all" | "-1") => "all",
        Some(other) => return Err(Fail::msg(format!("acks {other}"))),
    };
    let load = load::Load {
        topic: topic.clone(),
        partitions,
        size,
        records,
        acks,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let out = match (what.as_str(), generator.as_str()) {
        ("produce", "rdkafka") => load::rdkafka_produce(addr, &load)?,
        ("produce", "sluice") => rt.block_on(load::sluice_produce(addr, &load))?,
        ("consume", "rdkafka") => load::rdkafka_consume(addr, topic, partitions, records)?,
        ("consume", "sluice") => {
            rt.block_on(load::sluice_consume(addr, topic, partitions, records))?
        }
        ("consume", "raw") => load::raw_consume(addr, topic, partitions, records)?,
        _ => return Err(Fail::msg(format!("no {what} with {generator}"))),
    };
    Ok(format!(
        "{what} {generator}: {} records in {:.3} s: {:.0} records/s, {:.1} MB/s of values",
        out.records,
        out.elapsed.as_secs_f64(),
        out.records_per_sec(),
        (out.records * size as u64) as f64 / out.elapsed.as_secs_f64() / 1e6
    ))
}
