//! `troupe serve`: run a broker.

use std::path::PathBuf;

use clap::Args;

use crate::settings::docs::help_listing;
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
        Ok(s) => s,
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
