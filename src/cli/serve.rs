//! `troupe serve`: run a broker.

use std::path::PathBuf;

use clap::Args;

use crate::settings::docs::help_listing;
use troupe_actors::auth::ScramMechanism;
use troupe_actors::requests::users::{BootstrapUser, DEFAULT_ITERATIONS};

use crate::settings::{parse_key_value, CliOverrides, Settings};

/// `-h` stays short; `--help` ends with every configuration key, from the key table.
#[derive(Args, Debug)]
#[command(
    after_help = "Run with --help for every configuration key.",
    after_long_help = help_listing()
)]
pub struct ServeArgs {
    /// A TOML file of broker settings (config/server.toml is a commented example), on
    /// top of the built-in defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where partitions and metadata live (log.dirs).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// HOST:PORT for REST, WebSocket and the dashboard (listeners); port 0 picks a free one.
    #[arg(long)]
    pub listen: Option<String>,
    /// HOST:PORT for Kafka clients (the PLAINTEXT entry of listeners); port 0 picks a free one.
    #[arg(long)]
    pub kafka_listen: Option<String>,
    /// HOST:PORT for the controller listener (the CONTROLLER entry of listeners): the
    /// metadata quorum and brokers' registrations, on controllers of a multi-node cluster.
    #[arg(long)]
    pub controller_listen: Option<String>,
    /// Set any broker config key, as kafka-server-start.sh --override (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub overrides: Vec<(String, String)>,
    /// A user to create at startup unless it exists, in the syntax of Kafka's
    /// `kafka-storage.sh format --add-scram` (repeatable):
    /// 'SCRAM-SHA-256=[name=admin,password=admin-secret]' (`iterations=N` optional).
    #[arg(long = "add-scram", value_name = "MECHANISM=[name=N,password=P]", value_parser = parse_add_scram)]
    pub add_scram: Vec<BootstrapUser>,
}

/// `SCRAM-SHA-256=[name=alice,password=secret,iterations=8192]`, as Kafka's
/// `--add-scram` (a password holding `,` or `]` is quoted: `password="a,b"`).
pub fn parse_add_scram(raw: &str) -> Result<BootstrapUser, String> {
    let (mechanism, rest) = raw
        .split_once('=')
        .ok_or_else(|| "expected MECHANISM=[name=NAME,password=PASSWORD]".to_string())?;
    let mechanism = ScramMechanism::parse(mechanism)
        .ok_or_else(|| format!("{mechanism} is not SCRAM-SHA-256 or SCRAM-SHA-512"))?;
    let inner = rest
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| "the user's settings go in [ ]".to_string())?;
    let (mut name, mut password, mut iterations) = (None, None, DEFAULT_ITERATIONS);
    let mut rest = inner;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("'{rest}' is not KEY=VALUE"))?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted
                    .find('"')
                    .ok_or_else(|| format!("{key}'s quote is not closed"))?;
                let after = quoted[end + 1..]
                    .strip_prefix(',')
                    .unwrap_or(&quoted[end + 1..]);
                (&quoted[..end], after)
            }
            None => match after.split_once(',') {
                Some((value, after)) => (value, after),
                None => (after, ""),
            },
        };
        match key.trim() {
            "name" => name = Some(value.to_string()),
            "password" => password = Some(value.to_string()),
            "iterations" => {
                iterations = value
                    .parse()
                    .map_err(|_| format!("iterations '{value}' is not a number"))?
            }
            other => return Err(format!("'{other}' is not name, password or iterations")),
        }
        rest = after;
    }
    Ok(BootstrapUser {
        name: name.ok_or("no name=")?,
        mechanism,
        password: password.ok_or("no password=")?,
        iterations,
    })
}

pub fn run(args: ServeArgs) -> i32 {
    let cli = CliOverrides {
        config_file: args.config,
        overrides: args.overrides,
        data_dir: args.data_dir,
        listen: args.listen,
        kafka_listen: args.kafka_listen,
        controller_listen: args.controller_listen,
    };
    let settings = match Settings::load(&cli) {
        Ok(mut s) => {
            s.add_scram = args.add_scram;
            s
        }
        Err(e) => {
            log::error!("{e}");
            return 2;
        }
    };
    let system = actix_web::rt::System::new();
    match system.block_on(crate::server::run(settings)) {
        Ok(()) => 0,
        Err(e) => {
            log::error!("{e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_scram_reads_kafkas_syntax() {
        let user = parse_add_scram("SCRAM-SHA-512=[name=alice,password=\"a,b]c\",iterations=8192]")
            .unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.password, "a,b]c");
        assert_eq!(user.mechanism, ScramMechanism::Sha512);
        assert_eq!(user.iterations, 8192);
        assert!(!format!("{user:?}").contains("a,b"));
        let plain = parse_add_scram("scram-sha-256=[name=bob,password=pw]").unwrap();
        assert_eq!(plain.iterations, DEFAULT_ITERATIONS);
        assert!(parse_add_scram("SCRAM-SHA-1=[name=a,password=b]").is_err());
        assert!(parse_add_scram("SCRAM-SHA-256=[name=a]").is_err());
        assert!(parse_add_scram("SCRAM-SHA-256=name=a,password=b").is_err());
        assert!(parse_add_scram("SCRAM-SHA-256=[name=a,password=b,salt=x]").is_err());
    }
}
