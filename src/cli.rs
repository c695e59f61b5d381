//! The `sluice` command line: which config file to run, or to check — or one of the admin
//! tools (`topics`, `produce`, `consume`, `groups`), named after Kafka's scripts and taking
//! their flags. The tools are in [`crate::tools`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `--help`'s description, with the config file's format in brief.
const LONG_ABOUT: &str = "\
Sluice: a Kafka-compatible, replicated, partitioned log broker.

Runs one broker node from a TOML config file. Kafka clients connect to `listen`.

CONFIG FILE (TOML; unknown keys and bad values are errors naming the key)
  broker_id = 1                      this broker's id, >= 0 (Kafka's broker.id)
  listen = \"127.0.0.1:9092\"          address the Kafka listener binds (listeners)
  advertised = \"host:9092\"           optional: address told to clients (default: listen)
  data_dir = \"/var/lib/sluice/1\"     segments, sled, checkpoints; relative = to the cwd
  log_level = \"info\"                 optional: a level or directives; RUST_LOG overrides

  [coordination]
  backend = \"embedded\"               \"embedded\", \"zookeeper\" or \"etcd\"
  endpoints = [\"127.0.0.1:2181\"]     host:port list; required unless embedded
  root = \"/sluice\"                   chroot / key prefix (default \"/sluice\")
  session_timeout_ms = 18000         optional (Kafka's zookeeper.session.timeout.ms)
  connect_timeout_ms = 18000         optional (default: the session timeout)

  [config]                           Kafka broker configs: Kafka's names, defaults, precedence
  \"num.partitions\" = 1
  \"default.replication.factor\" = 1
  \"log.retention.hours\" = 168        log.retention.ms > .minutes > .hours
  \"message.max.bytes\" = 1048588

Under [config], values may be strings, integers, floats or booleans. Keys duplicating a
top-level setting (broker.id, listeners, advertised.listeners, log.dirs, zookeeper.connect)
are refused. `--check-config` prints every supported key with its effective value.
Examples: config/single-node.toml, config/zookeeper-node.toml, config/etcd-node.toml.

ADMIN TOOLS (any Kafka-compatible cluster; Kafka's script flags)
  sluice topics create|list|describe|alter|delete --bootstrap-server HOST:PORT ...
  sluice produce --bootstrap-server HOST:PORT --topic T [--key-separator SEP] [--file F]
  sluice consume --bootstrap-server HOST:PORT --topic T [--group G] [--from-beginning] ...
  sluice groups list|describe|reset-offsets|delete --bootstrap-server HOST:PORT ...
Exit status: 0 success, 1 the operation failed (the message says why), 2 bad usage.";

/// The `sluice` command line.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a Kafka-compatible, replicated, partitioned log broker",
    long_about = LONG_ABOUT
)]
#[command(subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// The broker's config file (TOML; its keys are listed under --help).
    #[arg(short, long, value_name = "FILE", required = true)]
    pub config: Option<PathBuf>,

    /// Validate the config file, print the effective configuration (every key with its
    /// value) and exit: status 0 if the file is valid, non-zero with the error otherwise.
    /// Starts nothing.
    #[arg(long)]
    pub check_config: bool,

    /// An admin tool instead of a broker.
    #[command(subcommand)]
    pub tool: Option<Tool>,
}

/// The admin tools.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Tool {
    /// Create, list, describe, alter or delete topics (kafka-topics).
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// Produce lines from stdin or a file, one record per line (kafka-console-producer).
    Produce(ProduceArgs),
    /// Print records (kafka-console-consumer).
    Consume(ConsumeArgs),
    /// List, describe, delete consumer groups and reset their offsets (kafka-consumer-groups).
    #[command(subcommand)]
    Groups(GroupsCommand),
}

/// Where the cluster is, and client properties.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct Connect {
    /// A broker to bootstrap from (HOST:PORT[,HOST:PORT...]).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    pub bootstrap_server: String,
    /// A client property (Kafka's name), repeatable: --command-property request.timeout.ms=5000.
    #[arg(long = "command-property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
}

/// `sluice topics ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TopicsCommand {
    /// Create a topic.
    Create {
        #[command(flatten)]
        connect: Connect,
        #[arg(long)]
        topic: String,
        /// Default: the broker's num.partitions.
        #[arg(long)]
        partitions: Option<i32>,
        /// Default: the broker's default.replication.factor.
        #[arg(long)]
        replication_factor: Option<i16>,
        /// A topic config, repeatable: --config retention.ms=60000.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Succeed if the topic exists already.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topic names.
    List {
        #[command(flatten)]
        connect: Connect,
        /// Internal topics (__consumer_offsets) too.
        #[arg(long)]
        include_internal: bool,
    },
    /// Partitions, leaders, replicas, ISR and configs of topics (all if none is named).
    Describe {
        #[command(flatten)]
        connect: Connect,
        #[arg(long)]
        topic: Option<String>,
    },
    /// Add partitions, set or delete configs.
    Alter {
        #[command(flatten)]
        connect: Connect,
        #[arg(long)]
        topic: String,
        /// The new total number of partitions.
        #[arg(long)]
        partitions: Option<i32>,
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
    },
    /// Delete a topic.
    Delete {
        #[command(flatten)]
        connect: Connect,
        #[arg(long)]
        topic: String,
        /// Succeed if the topic does not exist.
        #[arg(long)]
        if_exists: bool,
    },
}

/// `sluice produce ...`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub connect: Connect,
    #[arg(long)]
    pub topic: String,
    /// Lines are KEY<SEP>VALUE (the first SEP splits; a line without it is an error).
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Read lines from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Into this partition (default: by key, round robin without).
    #[arg(long)]
    pub partition: Option<i32>,
    /// A producer property, repeatable: --producer-property linger.ms=20.
    #[arg(long = "producer-property", value_name = "KEY=VALUE")]
    pub producer_properties: Vec<String>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long)]
    pub compression_codec: Option<String>,
    /// all, 1 or 0.
    #[arg(long)]
    pub acks: Option<String>,
    /// Print a progress line to stderr every second.
    #[arg(long)]
    pub progress: bool,
}

/// `sluice consume ...`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub connect: Connect,
    #[arg(long)]
    pub topic: String,
    /// Consume as a member of this group (committing offsets); without it, every partition
    /// is read and nothing is committed.
    #[arg(long)]
    pub group: Option<String>,
    /// Start at the first offset where nothing is committed (default: the end).
    #[arg(long)]
    pub from_beginning: bool,
    /// Read only this partition (with --offset).
    #[arg(long)]
    pub partition: Option<i32>,
    /// earliest, latest or an offset (needs --partition).
    #[arg(long)]
    pub offset: Option<String>,
    /// Start at the first record at or after this time (ms since the epoch).
    #[arg(long, value_name = "MS")]
    pub from_timestamp: Option<i64>,
    /// Stop after this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Stop when no record came for this long.
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// How to print a record: %t topic, %p partition, %o offset, %k key, %v value,
    /// %T timestamp, %h headers, \n \t; default "%v".
    #[arg(long, default_value = "%v")]
    pub format: String,
    /// A consumer property, repeatable.
    #[arg(long = "consumer-property", value_name = "KEY=VALUE")]
    pub consumer_properties: Vec<String>,
    /// Print a progress line to stderr every second.
    #[arg(long)]
    pub progress: bool,
}

/// `sluice groups ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum GroupsCommand {
    /// List group ids.
    List {
        #[command(flatten)]
        connect: Connect,
        /// Print the state and protocol type too.
        #[arg(long)]
        state: bool,
    },
    /// Offsets and lag per partition (CURRENT-OFFSET, LOG-END-OFFSET, LAG), or the members.
    Describe {
        #[command(flatten)]
        connect: Connect,
        #[arg(long)]
        group: String,
        /// The members instead of the offsets.
        #[arg(long)]
        members: bool,
    },
    /// Set a group's committed offsets (the group must have no active members). Prints the
    /// plan; --execute applies it.
    ResetOffsets {
        #[command(flatten)]
        connect: Connect,
        #[arg(long)]
        group: String,
        /// The topic (TOPIC or TOPIC:PARTITION[,PARTITION...]); repeatable.
        #[arg(long, required_unless_present = "all_topics")]
        topic: Vec<String>,
        /// Every topic the group has offsets for.
        #[arg(long)]
        all_topics: bool,
        #[arg(long, group = "target")]
        to_earliest: bool,
        #[arg(long, group = "target")]
        to_latest: bool,
        #[arg(long, group = "target", value_name = "OFFSET")]
        to_offset: Option<i64>,
        /// Milliseconds since the epoch.
        #[arg(long, group = "target", value_name = "MS")]
        to_timestamp: Option<i64>,
        /// Apply the plan (without it, only print it).
        #[arg(long)]
        execute: bool,
    },
    /// Delete groups (they must be empty).
    Delete {
        #[command(flatten)]
        connect: Connect,
        #[arg(long)]
        group: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_flags() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from(["sluice", "--config", "config/single-node.toml"])?;
        assert_eq!(cli.config, Some(PathBuf::from("config/single-node.toml")));
        assert!(!cli.check_config);
        let cli = Cli::try_parse_from(["sluice", "-c", "x.toml", "--check-config"])?;
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
        assert!(cli.check_config);
        // A tool needs no config file.
        let cli = Cli::try_parse_from([
            "sluice",
            "topics",
            "create",
            "--bootstrap-server",
            "h:1",
            "--topic",
            "t",
            "--partitions",
            "3",
        ])?;
        assert!(cli.config.is_none());
        assert!(matches!(
            cli.tool,
            Some(Tool::Topics(TopicsCommand::Create {
                partitions: Some(3),
                ..
            }))
        ));
        // Only one reset target.
        assert!(Cli::try_parse_from([
            "sluice",
            "groups",
            "reset-offsets",
            "--group",
            "g",
            "--all-topics",
            "--to-earliest",
            "--to-latest",
        ])
        .is_err());
        Ok(())
    }

    #[test]
    fn config_is_required() {
        let err = Cli::try_parse_from(["sluice"]).err().map(|e| e.kind());
        assert_eq!(err, Some(clap::error::ErrorKind::MissingRequiredArgument));
        let err = Cli::try_parse_from(["sluice", "--check-config"])
            .err()
            .map(|e| e.kind());
        assert_eq!(err, Some(clap::error::ErrorKind::MissingRequiredArgument));
    }

    #[test]
    fn help_documents_flags_and_file() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "--config <FILE>",
            "--check-config",
            "--version",
            "--help",
            "broker_id",
            "listen",
            "advertised",
            "data_dir",
            "log_level",
            "[coordination]",
            "backend",
            "endpoints",
            "root",
            "session_timeout_ms",
            "connect_timeout_ms",
            "[config]",
        ] {
            assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
        }
        let version = Cli::command().render_version();
        assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    }
}
