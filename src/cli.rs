//! The `sluice` command line: which config file to run, or to check.

use std::path::PathBuf;

use clap::Parser;

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
Examples: config/single-node.toml, config/zookeeper-node.toml, config/etcd-node.toml.";

/// The `sluice` command line.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a Kafka-compatible, replicated, partitioned log broker",
    long_about = LONG_ABOUT
)]
pub struct Cli {
    /// The broker's config file (TOML; its keys are listed under --help).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,

    /// Validate the config file, print the effective configuration (every key with its
    /// value) and exit: status 0 if the file is valid, non-zero with the error otherwise.
    /// Starts nothing.
    #[arg(long)]
    pub check_config: bool,
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
        assert_eq!(cli.config, PathBuf::from("config/single-node.toml"));
        assert!(!cli.check_config);
        let cli = Cli::try_parse_from(["sluice", "-c", "x.toml", "--check-config"])?;
        assert_eq!(cli.config, PathBuf::from("x.toml"));
        assert!(cli.check_config);
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
