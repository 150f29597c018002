//! `troupe groups list|describe|reset|delete`, like kafka-consumer-groups.sh, over the
//! v3 consumer-groups API.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::{CliError, Client};

#[derive(Args, Debug)]
pub struct GroupsArgs {
    #[command(subcommand)]
    pub command: GroupsCommand,
}

#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// List groups with their state and member count.
    List,
    /// Show a group's state, members, assignments and lag per partition.
    Describe {
        #[arg(long)]
        group: String,
    },
    /// Reset a group's committed offsets for a topic (the group must have no members).
    Reset {
        #[arg(long)]
        group: String,
        #[arg(long)]
        topic: String,
        /// Only these partitions (repeatable; default: all).
        #[arg(long = "partition")]
        partitions: Vec<i32>,
        #[arg(long, group = "to", required = true)]
        to_earliest: bool,
        #[arg(long, group = "to")]
        to_latest: bool,
        /// The first record at or after this time (ms since the epoch or ISO-8601).
        #[arg(long, group = "to")]
        to_datetime: Option<String>,
        /// This offset (clamped into each partition's range).
        #[arg(long, group = "to")]
        to_offset: Option<i64>,
    },
    /// Delete a group and its committed offsets (the group must have no members).
    Delete {
        #[arg(long)]
        group: String,
    },
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub fn run(client: &Client, args: GroupsArgs) -> Result<(), CliError> {
    let cluster = client.cluster_id()?;
    let groups = format!("/v3/clusters/{cluster}/consumer-groups");
    match args.command {
        GroupsCommand::List => {
            let list = client.get(&groups)?;
            println!("{:<40} {:<22} {:>7}", "GROUP", "STATE", "MEMBERS");
            for g in list["data"].as_array().into_iter().flatten() {
                println!(
                    "{:<40} {:<22} {:>7}",
                    text(&g["consumer_group_id"]),
                    text(&g["state"]),
                    text(&g["members_count"])
                );
            }
        }
        GroupsCommand::Describe { group } => {
            let g = client.get(&format!("{groups}/{group}"))?;
            println!(
                "Group: {}\tState: {}\tGeneration: {}\tAssignor: {}",
                group,
                text(&g["state"]),
                text(&g["generation_id"]),
                text(&g["partition_assignor"])
            );
            let consumers = client.get(&format!("{groups}/{group}/consumers"))?;
            println!("\n{:<60} {:<24} PARTITIONS", "CONSUMER-ID", "CLIENT-ID");
            for c in consumers["data"].as_array().into_iter().flatten() {
                let id = text(&c["consumer_id"]);
                let assigned =
                    client.get(&format!("{groups}/{group}/consumers/{id}/assignments"))?;
                let partitions: Vec<String> = assigned["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| format!("{}-{}", text(&a["topic_name"]), text(&a["partition_id"])))
                    .collect();
                println!(
                    "{:<60} {:<24} {}",
                    id,
                    text(&c["client_id"]),
                    partitions.join(",")
                );
            }
            let lags = client.get(&format!("{groups}/{group}/lags"))?;
            println!(
                "\n{:<30} {:>9} {:>15} {:>15} {:>10}  CONSUMER-ID",
                "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"
            );
            for l in lags["data"].as_array().into_iter().flatten() {
                let consumer = text(&l["consumer_id"]);
                println!(
                    "{:<30} {:>9} {:>15} {:>15} {:>10}  {}",
                    text(&l["topic_name"]),
                    text(&l["partition_id"]),
                    text(&l["current_offset"]),
                    text(&l["log_end_offset"]),
                    text(&l["lag"]),
                    if consumer.is_empty() {
                        "-".into()
                    } else {
                        consumer
                    }
                );
            }
        }
        GroupsCommand::Reset {
            group,
            topic,
            partitions,
            to_earliest: _,
            to_latest,
            to_datetime,
            to_offset,
        } => {
            let mut body = json!({ "topic_name": topic });
            if !partitions.is_empty() {
                body["partitions"] = json!(partitions);
            }
            match (to_latest, to_datetime, to_offset) {
                (true, _, _) => body["to"] = json!("latest"),
                (_, Some(t), _) => {
                    body["to"] = json!("timestamp");
                    body["timestamp"] = json!(t);
                }
                (_, _, Some(o)) => {
                    body["to"] = json!("offset");
                    body["offset"] = json!(o);
                }
                _ => body["to"] = json!("earliest"),
            }
            let reset = client
                .send_json(
                    "POST",
                    &format!("{groups}/{group}/offsets:reset"),
                    "application/json",
                    &body,
                )?
                .unwrap_or(Value::Null);
            println!("{:<30} {:>9} {:>12}", "TOPIC", "PARTITION", "NEW-OFFSET");
            for o in reset["data"].as_array().into_iter().flatten() {
                println!(
                    "{:<30} {:>9} {:>12}",
                    text(&o["topic_name"]),
                    text(&o["partition_id"]),
                    text(&o["offset"])
                );
            }
        }
        GroupsCommand::Delete { group } => {
            client.delete(&format!("{groups}/{group}"))?;
            println!("Deleted group {group}.");
        }
    }
    Ok(())
}
