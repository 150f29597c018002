//! `troupe topics create|list|describe|delete|alter`, like kafka-topics.sh, over the
//! v3 REST API.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::{CliError, Client};
use crate::settings::parse_key_value;

#[derive(Args, Debug)]
pub struct TopicsArgs {
    #[command(subcommand)]
    pub command: TopicsCommand,
}

#[derive(Subcommand, Debug)]
pub enum TopicsCommand {
    /// Create a topic.
    Create {
        #[arg(long)]
        topic: String,
        /// Partition count (default: the broker's num.partitions).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long)]
        replication_factor: Option<i16>,
        /// A topic config, e.g. --config retention.ms=60000 (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topic names (internal ones such as __consumer_offsets included, as
    /// kafka-topics does).
    List {
        /// Leave internal topics out.
        #[arg(long)]
        exclude_internal: bool,
    },
    /// Show a topic's partitions, offsets and configs.
    Describe {
        #[arg(long)]
        topic: String,
    },
    /// Delete a topic and its data.
    Delete {
        #[arg(long)]
        topic: String,
    },
    /// Raise the partition count, set or remove configs.
    Alter {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partitions: Option<i32>,
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Remove a topic-level config, back to the broker default (repeatable).
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
    },
}

pub fn run(client: &Client, args: TopicsArgs) -> Result<(), CliError> {
    let cluster = client.cluster_id()?;
    let topics = format!("/v3/clusters/{cluster}/topics");
    match args.command {
        TopicsCommand::Create {
            topic,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut body = json!({ "topic_name": topic });
            if let Some(p) = partitions {
                body["partitions_count"] = json!(p);
            }
            if let Some(r) = replication_factor {
                body["replication_factor"] = json!(r);
            }
            body["configs"] = json!(configs
                .iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect::<Vec<_>>());
            let created = client
                .send_json("POST", &topics, "application/json", &body)?
                .unwrap_or(Value::Null);
            println!(
                "Created topic {} with {} partition(s).",
                topic, created["partitions_count"]
            );
        }
        TopicsCommand::List { exclude_internal } => {
            let list = client.get(&topics)?;
            for t in list["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| !(exclude_internal && t["is_internal"] == true))
            {
                println!("{}", t["topic_name"].as_str().unwrap_or_default());
            }
        }
        TopicsCommand::Describe { topic } => {
            let t = client.get(&format!("{topics}/{topic}"))?;
            let configs = client.get(&format!("{topics}/{topic}/configs"))?;
            let overrides: Vec<String> = configs["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["source"] == "DYNAMIC_TOPIC_CONFIG")
                .map(|c| {
                    format!(
                        "{}={}",
                        c["name"].as_str().unwrap_or_default(),
                        c["value"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            println!(
                "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
                topic,
                t["topic_id"].as_str().unwrap_or_default(),
                t["partitions_count"],
                t["replication_factor"],
                overrides.join(",")
            );
            let partitions = client.get(&format!("{topics}/{topic}/partitions"))?;
            for p in partitions["data"].as_array().into_iter().flatten() {
                println!(
                    "\tTopic: {}\tPartition: {}\tLeader: {}\tLogStartOffset: {}\tHighWatermark: {}\tSizeBytes: {}",
                    topic,
                    p["partition_id"],
                    if p["online"] == true { "1".to_string() } else { "none".to_string() },
                    p["log_start_offset"],
                    p["high_watermark"],
                    p["size_bytes"]
                );
            }
        }
        TopicsCommand::Delete { topic } => {
            client.delete(&format!("{topics}/{topic}"))?;
            println!("Deleted topic {topic}.");
        }
        TopicsCommand::Alter {
            topic,
            partitions,
            configs,
            delete_configs,
        } => {
            if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
                return Err(CliError::Input(
                    "nothing to alter: give --partitions, --config or --delete-config".into(),
                ));
            }
            if let Some(p) = partitions {
                client.send_json(
                    "PATCH",
                    &format!("{topics}/{topic}"),
                    "application/json",
                    &json!({"partitions_count": p}),
                )?;
                println!("Topic {topic} now has {p} partitions.");
            }
            let mut data: Vec<Value> = configs
                .iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect();
            data.extend(
                delete_configs
                    .iter()
                    .map(|k| json!({"name": k, "operation": "DELETE"})),
            );
            if !data.is_empty() {
                client.send_json(
                    "POST",
                    &format!("{topics}/{topic}/configs:alter"),
                    "application/json",
                    &json!({"data": data}),
                )?;
                println!("Updated {} config(s) of topic {topic}.", data.len());
            }
        }
    }
    Ok(())
}
