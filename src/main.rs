//! `troupe`: the broker (`troupe serve`) and its command-line tools (`troupe topics`,
//! `troupe produce`, `troupe consume`, `troupe groups`, `troupe cluster`, `troupe users`, `troupe acls`),
//! in one binary.

mod cli;
mod server;
mod settings;
mod tls;

use clap::{Parser, Subcommand};

use cli::client::Client;

#[derive(Parser, Debug)]
#[command(
    name = "troupe",
    version,
    about = "A Kafka-style event streaming broker with REST, WebSocket and a dashboard"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The broker's REST address (for every command but serve).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8082")]
    bootstrap_server: String,
    /// NAME:PASSWORD of a user, for a broker with authentication.method=BASIC.
    #[arg(long, global = true, env = "TROUPE_USER", hide_env_values = true)]
    user: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a broker.
    Serve(cli::serve::ServeArgs),
    /// Create, list, describe, alter and delete topics.
    Topics(cli::topics::TopicsArgs),
    /// Produce records from stdin or a file, one per line.
    Produce(cli::produce::ProduceArgs),
    /// Print records as they arrive.
    Consume(cli::consume::ConsumeArgs),
    /// List, describe, reset and delete consumer groups.
    Groups(cli::groups::GroupsArgs),
    /// Describe the cluster: brokers, the active controller, the metadata quorum.
    Cluster(cli::cluster::ClusterArgs),
    /// List, describe, create and delete users, and set their passwords (SCRAM).
    Users(cli::users::UsersArgs),
    /// List, add and remove ACLs (like kafka-acls.sh).
    Acls(cli::acls::AclsArgs),
    /// Print the README's configuration table (--readme FILE rewrites it in place).
    #[command(hide = true)]
    ConfigDocs(cli::config_docs::ConfigDocsArgs),
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let client = Client::new(&cli.bootstrap_server).with_user(cli.user.as_deref());
    let outcome = match cli.command {
        Command::Serve(args) => std::process::exit(cli::serve::run(args)),
        Command::ConfigDocs(args) => std::process::exit(cli::config_docs::run(args)),
        Command::Topics(args) => cli::topics::run(&client, args),
        Command::Produce(args) => cli::produce::run(&client, args),
        Command::Consume(args) => cli::consume::run(&client, args),
        Command::Groups(args) => cli::groups::run(&client, args),
        Command::Cluster(args) => cli::cluster::run(&client, args),
        Command::Users(args) => cli::users::run(&client, args),
        Command::Acls(args) => cli::acls::run(&client, args),
    };
    if let Err(e) = outcome {
        eprintln!("troupe: {e}");
        std::process::exit(e.exit_code());
    }
}
