//! `troupe users`: users and their SCRAM credentials, over the broker's
//! `/v3/clusters/{c}/users` — what Kafka does with `kafka-configs.sh --entity-type
//! users --alter --add-config 'SCRAM-SHA-256=[password=…]'` and
//! `--describe`. A password is read from `--password` or, better, from stdin
//! (`--password-stdin`), and never printed.

use std::io::Read;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::{encode, CliError, Client};

#[derive(Args, Debug)]
pub struct UsersArgs {
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Args, Debug)]
pub struct PasswordArgs {
    /// The password (it shows in the process list: prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from stdin's first line.
    #[arg(long)]
    pub password_stdin: bool,
    /// SCRAM-SHA-256 and/or SCRAM-SHA-512 (repeatable; both unless given).
    #[arg(long = "mechanism")]
    pub mechanisms: Vec<String>,
    /// PBKDF2 iterations (4096 to 16384).
    #[arg(long)]
    pub iterations: Option<u32>,
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Every user, with its mechanisms and iterations.
    List,
    /// One user.
    Describe { name: String },
    /// A new user (refused if it exists).
    Create {
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Set a user's password (creating the user if it does not exist).
    SetPassword {
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Delete a user, or only its credential for one mechanism.
    Delete {
        name: String,
        #[arg(long)]
        mechanism: Option<String>,
    },
}

fn password_body(args: PasswordArgs) -> Result<Value, CliError> {
    let password = match (args.password, args.password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| CliError::Input(format!("reading the password from stdin: {e}")))?;
            text.lines().next().unwrap_or_default().to_string()
        }
        (None, false) => {
            return Err(CliError::Input(
                "give the password with --password or --password-stdin".into(),
            ))
        }
    };
    let mut body = json!({ "password": password });
    if !args.mechanisms.is_empty() {
        body["mechanisms"] = json!(args.mechanisms);
    }
    if let Some(i) = args.iterations {
        body["iterations"] = json!(i);
    }
    Ok(body)
}

fn print_user(user: &Value) {
    let credentials: Vec<String> = user["credentials"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{} (iterations {})",
                c["mechanism"].as_str().unwrap_or("?"),
                c["iterations"]
            )
        })
        .collect();
    println!(
        "{:<24} {}",
        user["user_name"].as_str().unwrap_or("?"),
        credentials.join(", ")
    );
}

pub fn run(client: &Client, args: UsersArgs) -> Result<(), CliError> {
    let cluster = client.cluster_id()?;
    let base = format!("/v3/clusters/{cluster}/users");
    let user_path = |name: &str| format!("{base}/{}", encode(name));
    match args.command {
        UsersCommand::List => {
            let list = client.get(&base)?;
            println!("{:<24} CREDENTIALS", "USER");
            for user in list["data"].as_array().into_iter().flatten() {
                print_user(user);
            }
        }
        UsersCommand::Describe { name } => print_user(&client.get(&user_path(&name))?),
        UsersCommand::Create { name, password } => {
            let mut body = password_body(password)?;
            body["user_name"] = json!(name);
            client.send_json("POST", &base, "application/json", &body)?;
            println!("Created user {name}.");
        }
        UsersCommand::SetPassword { name, password } => {
            let body = password_body(password)?;
            client.send_json("PUT", &user_path(&name), "application/json", &body)?;
            println!("Set the password of user {name}.");
        }
        UsersCommand::Delete { name, mechanism } => {
            let path = match mechanism {
                Some(m) => format!("{}?mechanism={}", user_path(&name), encode(&m)),
                None => user_path(&name),
            };
            client.delete(&path)?;
            println!("Deleted user {name}.");
        }
    }
    Ok(())
}
