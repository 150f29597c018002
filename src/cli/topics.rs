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
    /// Show a topic's partitions (leader, replicas, ISR, offsets) and configs; every
    /// topic's without --topic.
    Describe {
        #[arg(long)]
        topic: Option<String>,
        /// Only partitions whose ISR is smaller than their replica set (as
        /// kafka-topics --under-replicated-partitions).
        #[arg(long)]
        under_replicated_partitions: bool,
    },
    /// Move a partition to other brokers, or change its replica count (as
    /// kafka-reassign-partitions): the new replicas catch up, then the ones left out
    /// are dropped. --replicas with the current ones cancels a move in progress.
    Reassign {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        /// Broker ids, comma-separated, the preferred leader first.
        #[arg(long, value_delimiter = ',', required = true)]
        replicas: Vec<i32>,
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
        TopicsCommand::Describe {
            topic,
            under_replicated_partitions,
        } => {
            let names = match topic {
                Some(t) => vec![t],
                None => client.get(&topics)?["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["topic_name"].as_str().map(str::to_string))
                    .collect(),
            };
            for topic in names {
                describe(client, &topics, &topic, under_replicated_partitions)?;
            }
        }
        TopicsCommand::Reassign {
            topic,
            partition,
            replicas,
        } => {
            let answer = client
                .send_json(
                    "POST",
                    &format!("{topics}/{topic}/partitions/{partition}/reassignment"),
                    "application/json",
                    &json!({ "replica_ids": replicas }),
                )?
                .unwrap_or_default();
            println!(
                "Reassignment of {topic}-{partition} to {} started (adding: [{}], removing: [{}]); `troupe topics describe --topic {topic}` shows its progress.",
                replicas.iter().map(i32::to_string).collect::<Vec<_>>().join(","),
                id_list(&answer["adding_replicas"]),
                id_list(&answer["removing_replicas"])
            );
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

/// kafka-topics --describe for one topic: its line, then a line per partition (only
/// the under-replicated ones, and no topic line, with `under_replicated`).
fn describe(
    client: &Client,
    topics: &str,
    topic: &str,
    under_replicated: bool,
) -> Result<(), CliError> {
    if !under_replicated {
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
    }
    let partitions = client.get(&format!("{topics}/{topic}/partitions"))?;
    for p in partitions["data"].as_array().into_iter().flatten() {
        let replicas = p["replica_ids"].as_array().map_or(0, Vec::len);
        let isr = p["isr_ids"].as_array().map_or(0, Vec::len);
        if under_replicated && isr >= replicas {
            continue;
        }
        let leader = match p["leader_id"].as_i64() {
            Some(l) if l >= 0 => l.to_string(),
            _ => "none".to_string(),
        };
        println!(
            "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}\tLogStartOffset: {}\tHighWatermark: {}\tSizeBytes: {}",
            topic,
            p["partition_id"],
            leader,
            id_list(&p["replica_ids"]),
            id_list(&p["isr_ids"]),
            p["log_start_offset"],
            p["high_watermark"],
            p["size_bytes"]
        );
    }
    Ok(())
}

/// A JSON list of broker ids as kafka-topics prints them: `1,2,3`.
fn id_list(v: &serde_json::Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
