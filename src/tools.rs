//! The admin tools of the `sluice` binary (`topics`, `produce`, `consume`, `groups`), on the
//! native client. Output goes to stdout; errors to stderr as `sluice: <what failed>: <why>`
//! with a hint where one helps. Exit status: 0 success, 1 failure (2 is clap's usage error).

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{Connect, ConsumeArgs, GroupsCommand, ProduceArgs, Tool, TopicsCommand};
use crate::client::admin::{Admin, ConfigResource, NewTopic, OffsetSpec};
use crate::client::{
    ClientConfig, ClientError, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, Producer,
    ProducerConfig, ProducerRecord, TopicPartition,
};

/// A tool's failure: what to print.
#[derive(Debug)]
pub struct ToolError(pub String);

impl From<ClientError> for ToolError {
    fn from(e: ClientError) -> Self {
        let hint = match &e {
            ClientError::Io { .. } | ClientError::Disconnected(_) => {
                "\n  is a broker running there? (--bootstrap-server HOST:PORT)"
            }
            ClientError::Kafka { code: 3, .. } => "\n  does the topic exist? (sluice topics list)",
            _ => "",
        };
        ToolError(format!("{e}{hint}"))
    }
}

type ToolResult = Result<(), ToolError>;

/// Runs `tool` to completion on its own runtime; the process's exit status.
pub fn run(tool: Tool) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(tool)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(ToolError(message)) => {
            eprintln!("sluice: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(tool: Tool) -> ToolResult {
    match tool {
        Tool::Topics(command) => topics(command).await,
        Tool::Produce(args) => produce(args).await,
        Tool::Consume(args) => consume(args).await,
        Tool::Groups(command) => groups(command).await,
    }
}

/// `KEY=VALUE` → (key, value), or an error naming the flag.
fn key_value<'a>(flag: &str, kv: &'a str) -> Result<(&'a str, &'a str), ToolError> {
    kv.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| ToolError(format!("{flag} {kv:?}: expected KEY=VALUE")))
}

fn client_config(connect: &Connect) -> Result<ClientConfig, ToolError> {
    let mut config = ClientConfig::new(&connect.bootstrap_server);
    for kv in &connect.properties {
        let (k, v) = key_value("--command-property", kv)?;
        if !config.set(k, v)? {
            return Err(ToolError(format!(
                "--command-property {k}: not a client setting"
            )));
        }
    }
    Ok(config)
}

fn admin(connect: &Connect) -> Result<Admin, ToolError> {
    Ok(Admin::new(client_config(connect)?))
}

async fn topics(command: TopicsCommand) -> ToolResult {
    match command {
        TopicsCommand::Create {
            connect,
            topic,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            let admin = admin(&connect)?;
            let mut new = NewTopic::new(
                &topic,
                partitions.unwrap_or(-1),
                replication_factor.unwrap_or(-1),
            );
            for kv in &configs {
                let (k, v) = key_value("--config", kv)?;
                new.configs.insert(k.to_owned(), v.to_owned());
            }
            for (name, outcome) in admin.create_topics(&[new]).await? {
                match outcome {
                    Ok(()) => println!("Created topic {name}."),
                    Err(e) if if_not_exists && e.code() == Some(36) => {
                        println!("Topic {name} already exists.")
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            admin
                .wait_for_leaders(&topic, Duration::from_secs(30))
                .await?;
            Ok(())
        }
        TopicsCommand::List {
            connect,
            include_internal,
        } => {
            for t in admin(&connect)?.list_topics(include_internal).await? {
                println!("{}", t.name);
            }
            Ok(())
        }
        TopicsCommand::Describe { connect, topic } => {
            let admin = admin(&connect)?;
            let topics = match topic {
                Some(t) => admin.describe_topics(&[t]).await?,
                None => admin.list_topics(false).await?,
            };
            for t in topics {
                let configs = admin
                    .describe_configs(&ConfigResource::Topic(t.name.clone()))
                    .await?
                    .into_iter()
                    .filter(|c| c.source == 1)
                    .map(|c| format!("{}={}", c.name, c.value.unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",");
                let rf = t.partitions.first().map_or(0, |p| p.replicas.len());
                println!(
                    "Topic: {}\tPartitionCount: {}\tReplicationFactor: {rf}\tConfigs: {configs}",
                    t.name,
                    t.partitions.len()
                );
                for p in &t.partitions {
                    println!(
                        "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                        t.name,
                        p.partition,
                        if p.leader >= 0 {
                            p.leader.to_string()
                        } else {
                            "none".into()
                        },
                        join(&p.replicas),
                        join(&p.isr)
                    );
                }
            }
            Ok(())
        }
        TopicsCommand::Alter {
            connect,
            topic,
            partitions,
            configs,
            delete_configs,
        } => {
            let admin = admin(&connect)?;
            if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
                return Err(ToolError(
                    "nothing to alter: give --partitions, --config or --delete-config".into(),
                ));
            }
            if let Some(n) = partitions {
                admin.create_partitions(&topic, n).await?;
                println!("Topic {topic} now has {n} partitions.");
            }
            let mut changes = Vec::new();
            for kv in &configs {
                let (k, v) = key_value("--config", kv)?;
                changes.push((k.to_owned(), Some(v.to_owned())));
            }
            changes.extend(delete_configs.iter().map(|k| (k.clone(), None)));
            if !changes.is_empty() {
                admin
                    .alter_configs(&ConfigResource::Topic(topic.clone()), &changes)
                    .await?;
                println!("Updated the configs of topic {topic}.");
            }
            Ok(())
        }
        TopicsCommand::Delete {
            connect,
            topic,
            if_exists,
        } => {
            for (name, outcome) in admin(&connect)?.delete_topics(&[&topic]).await? {
                match outcome {
                    Ok(()) => println!("Deleted topic {name}."),
                    Err(e) if if_exists && e.code() == Some(3) => {
                        println!("Topic {name} does not exist.")
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        }
    }
}

fn join(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Prints `label N (rate/s)` to stderr every second while `count` grows.
fn progress(
    label: &'static str,
    count: Arc<AtomicU64>,
    enabled: bool,
) -> Option<tokio::task::JoinHandle<()>> {
    let tty = std::io::stderr().is_terminal();
    (enabled || tty).then(|| {
        tokio::spawn(async move {
            let start = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let n = count.load(Ordering::Relaxed);
                let rate = n as f64 / start.elapsed().as_secs_f64();
                if tty {
                    eprint!("\r{label} {n} records ({rate:.0}/s)   ");
                } else {
                    eprintln!("{label} {n} records ({rate:.0}/s)");
                }
            }
        })
    })
}

async fn produce(args: ProduceArgs) -> ToolResult {
    let mut config = ProducerConfig::new(&args.connect.bootstrap_server);
    config.client = client_config(&args.connect)?;
    for kv in &args.producer_properties {
        let (k, v) = key_value("--producer-property", kv)?;
        config.set(k, v)?;
    }
    if let Some(c) = &args.compression_codec {
        config.set("compression.type", c)?;
    }
    if let Some(a) = &args.acks {
        config.set("acks", a)?;
    }
    let producer = Producer::new(config)?;
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path)
                .map_err(|e| ToolError(format!("cannot read {}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let sent = Arc::new(AtomicU64::new(0));
    let ticker = progress("produced", Arc::clone(&sent), args.progress);
    // Deliveries are awaited in order, at most this many behind the newest send: every
    // record's outcome is seen (a failure ends the run with status 1), with bounded memory.
    const OUTSTANDING: usize = 10_000;
    let mut deliveries = std::collections::VecDeque::with_capacity(OUTSTANDING);
    let outcome: Result<(), ToolError> = async {
        for (n, line) in input.lines().enumerate() {
            let line = line.map_err(|e| ToolError(format!("reading line {}: {e}", n + 1)))?;
            let mut record = ProducerRecord::new(&args.topic);
            match &args.key_separator {
                Some(sep) => {
                    let (k, v) = line.split_once(sep.as_str()).ok_or_else(|| {
                        ToolError(format!(
                            "line {}: no key separator {sep:?} in {line:?}",
                            n + 1
                        ))
                    })?;
                    record = record.key(k).value(v);
                }
                None => record = record.value(line),
            }
            if let Some(p) = args.partition {
                record = record.partition(p);
            }
            deliveries.push_back(producer.send(record).await?);
            if deliveries.len() >= OUTSTANDING {
                if let Some(oldest) = deliveries.pop_front() {
                    oldest.await?;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        while let Some(delivery) = deliveries.pop_front() {
            delivery.await?;
            sent.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
    .await;
    producer.close(Duration::from_secs(30)).await;
    if let Some(t) = ticker {
        t.abort();
    }
    outcome?;
    if args.progress {
        eprintln!("produced {} records", sent.load(Ordering::Relaxed));
    }
    Ok(())
}

/// `format` with a record's fields in place of %t %p %o %k %v %T %h, and \n \t.
pub fn format_record(format: &str, r: &ConsumerRecord) -> String {
    let text = |b: &Option<bytes::Bytes>| {
        b.as_ref().map_or_else(
            || "null".to_owned(),
            |b| String::from_utf8_lossy(b).into_owned(),
        )
    };
    let mut out = String::with_capacity(format.len() + 32);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('t') => out.push_str(&r.topic),
                Some('p') => out.push_str(&r.partition.to_string()),
                Some('o') => out.push_str(&r.offset.to_string()),
                Some('k') => out.push_str(&text(&r.key)),
                Some('v') => out.push_str(&text(&r.value)),
                Some('T') => out.push_str(&r.timestamp.to_string()),
                Some('h') => {
                    let headers: Vec<String> = r
                        .headers
                        .iter()
                        .map(|h| format!("{}:{}", h.key, text(&h.value)))
                        .collect();
                    out.push_str(&headers.join(","));
                }
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            },
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

async fn consume(args: ConsumeArgs) -> ToolResult {
    let mut config = ConsumerConfig::new(&args.connect.bootstrap_server);
    config.client = client_config(&args.connect)?;
    config.auto_offset_reset = if args.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    if let Some(g) = &args.group {
        config.group_id = Some(g.clone());
    } else {
        config.enable_auto_commit = false;
    }
    for kv in &args.consumer_properties {
        let (k, v) = key_value("--consumer-property", kv)?;
        config.set(k, v)?;
    }
    if args.offset.is_some() && args.partition.is_none() {
        return Err(ToolError("--offset needs --partition".into()));
    }
    let consumer = Consumer::new(config)?;
    let manual = args.group.is_none() || args.partition.is_some();
    if manual {
        let partitions: Vec<TopicPartition> = match args.partition {
            Some(p) => vec![TopicPartition::new(&args.topic, p)],
            None => {
                let t = consumer.cluster().topic_or_fetch(&args.topic).await?;
                t.partitions
                    .iter()
                    .map(|p| TopicPartition::new(&args.topic, p.partition))
                    .collect()
            }
        };
        consumer.assign(&partitions);
        for tp in &partitions {
            match (args.offset.as_deref(), args.from_timestamp) {
                (Some("earliest"), _) => consumer.seek_to(tp, true)?,
                (Some("latest"), _) => consumer.seek_to(tp, false)?,
                (Some(o), _) => {
                    let offset = o.parse().map_err(|_| {
                        ToolError(format!("--offset {o:?}: use earliest, latest or a number"))
                    })?;
                    consumer.seek(tp, offset)?
                }
                (None, Some(ts)) => consumer.seek_to_timestamp(tp, ts)?,
                (None, None) => {}
            }
        }
    } else {
        consumer.subscribe(&[args.topic.as_str()])?;
    }
    let count = Arc::new(AtomicU64::new(0));
    let ticker = progress("consumed", Arc::clone(&count), args.progress);
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let mut last_record = Instant::now();
    let mut stdout = std::io::stdout().lock();
    let mut seeked_by_time = manual;
    'poll: loop {
        let records = consumer.poll(Duration::from_millis(200)).await?;
        // Subscribed with --from-timestamp: seek once the partitions are assigned.
        if !seeked_by_time {
            if let Some(ts) = args.from_timestamp {
                let assigned = consumer.assignment();
                if !assigned.is_empty() {
                    for tp in &assigned {
                        consumer.seek_to_timestamp(tp, ts)?;
                    }
                    seeked_by_time = true;
                    continue;
                }
            }
        }
        if records.is_empty() {
            if idle_limit.is_some_and(|limit| last_record.elapsed() >= limit) {
                break;
            }
            continue;
        }
        last_record = Instant::now();
        for (i, r) in records.iter().enumerate() {
            writeln!(stdout, "{}", format_record(&args.format, r))
                .map_err(|e| ToolError(format!("writing to stdout: {e}")))?;
            let n = count.fetch_add(1, Ordering::Relaxed) + 1;
            if args.max_messages.is_some_and(|max| n >= max) {
                // Commit only what was printed: the rest of this poll goes back.
                let mut unprinted: BTreeMap<TopicPartition, i64> = BTreeMap::new();
                for r in &records[i + 1..] {
                    unprinted
                        .entry(TopicPartition::new(r.topic.clone(), r.partition))
                        .or_insert(r.offset);
                }
                for (tp, offset) in unprinted {
                    consumer.seek(&tp, offset)?;
                }
                break 'poll;
            }
        }
    }
    let _ = stdout.flush();
    if let Some(t) = ticker {
        t.abort();
    }
    consumer.close().await;
    if args.progress {
        eprintln!("consumed {} records", count.load(Ordering::Relaxed));
    }
    Ok(())
}

async fn groups(command: GroupsCommand) -> ToolResult {
    match command {
        GroupsCommand::List { connect, state } => {
            for g in admin(&connect)?.list_groups().await? {
                if state {
                    println!("{}\t{}\t{}", g.group_id, g.state, g.protocol_type);
                } else {
                    println!("{}", g.group_id);
                }
            }
            Ok(())
        }
        GroupsCommand::Describe {
            connect,
            group,
            members,
        } => {
            let admin = admin(&connect)?;
            let description = admin.describe_group(&group).await?;
            if members {
                println!("GROUP\tCONSUMER-ID\tHOST\tCLIENT-ID\t#PARTITIONS");
                for m in &description.members {
                    println!(
                        "{group}\t{}\t{}\t{}\t{}",
                        m.member_id,
                        m.client_host,
                        m.client_id,
                        m.assignment.len()
                    );
                }
                return Ok(());
            }
            let committed = admin.group_offsets(&group).await?;
            let owner: BTreeMap<&TopicPartition, &crate::client::admin::MemberDescription> =
                description
                    .members
                    .iter()
                    .flat_map(|m| m.assignment.iter().map(move |tp| (tp, m)))
                    .collect();
            let mut partitions: Vec<TopicPartition> = committed
                .keys()
                .chain(owner.keys().copied())
                .cloned()
                .collect();
            partitions.sort();
            partitions.dedup();
            let ends = admin.list_offsets(&partitions, OffsetSpec::Latest).await?;
            if description.members.is_empty() {
                println!("Consumer group '{group}' has no active members.\n");
            }
            println!("GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tCONSUMER-ID\tHOST\tCLIENT-ID");
            for tp in &partitions {
                let current = committed.get(tp);
                let end = ends.get(tp);
                let lag = match (current, end) {
                    (Some(c), Some(e)) => (e - c).max(0).to_string(),
                    _ => "-".into(),
                };
                let (id, host, client) = owner.get(tp).map_or(("-", "-", "-"), |m| {
                    (
                        m.member_id.as_str(),
                        m.client_host.as_str(),
                        m.client_id.as_str(),
                    )
                });
                println!(
                    "{group}\t{}\t{}\t{}\t{}\t{lag}\t{id}\t{host}\t{client}",
                    tp.topic,
                    tp.partition,
                    current.map_or("-".into(), i64::to_string),
                    end.map_or("-".into(), i64::to_string),
                );
            }
            Ok(())
        }
        GroupsCommand::ResetOffsets {
            connect,
            group,
            topic,
            all_topics,
            to_earliest,
            to_latest,
            to_offset,
            to_timestamp,
            execute,
        } => {
            let spec =
                match (to_earliest, to_latest, to_offset, to_timestamp) {
                    (true, _, _, _) => OffsetSpec::Earliest,
                    (_, true, _, _) => OffsetSpec::Latest,
                    (_, _, Some(o), _) => OffsetSpec::Offset(o),
                    (_, _, _, Some(t)) => OffsetSpec::Timestamp(t),
                    _ => return Err(ToolError(
                        "say where to: --to-earliest, --to-latest, --to-offset or --to-timestamp"
                            .into(),
                    )),
                };
            let admin = admin(&connect)?;
            let mut partitions = Vec::new();
            if all_topics {
                partitions.extend(admin.group_offsets(&group).await?.into_keys());
            }
            for t in &topic {
                match t.split_once(':') {
                    Some((name, list)) => {
                        for p in list.split(',') {
                            let p = p.trim().parse().map_err(|_| {
                                ToolError(format!("--topic {t:?}: partitions must be numbers"))
                            })?;
                            partitions.push(TopicPartition::new(name, p));
                        }
                    }
                    None => partitions.push(TopicPartition::new(t.as_str(), -1)),
                }
            }
            let plan = if execute {
                admin.reset_group_offsets(&group, &partitions, spec).await?
            } else {
                admin.list_offsets(&partitions, spec).await?
            };
            println!("GROUP\tTOPIC\tPARTITION\tNEW-OFFSET");
            for (tp, offset) in &plan {
                println!("{group}\t{}\t{}\t{offset}", tp.topic, tp.partition);
            }
            if !execute {
                eprintln!("(dry run: add --execute to apply)");
            }
            Ok(())
        }
        GroupsCommand::Delete { connect, group } => {
            let ids: Vec<&str> = group.iter().map(String::as_str).collect();
            for (id, outcome) in admin(&connect)?.delete_groups(&ids).await? {
                outcome?;
                println!("Deleted group {id}.");
            }
            Ok(())
        }
    }
}
