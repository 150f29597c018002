//! `troupe cluster describe`, like Kafka's `kafka-metadata-quorum.sh describe`: the
//! brokers and their states, the active controller and the metadata quorum, over the
//! broker's `GET /v3/clusters/{c}/quorum`.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::{CliError, Client};

#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Brokers (id, listeners, alive/fenced/shutting down), the active controller,
    /// and the quorum: leader, term, and each voter's lag as the leader sees it.
    Describe,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub fn run(client: &Client, args: ClusterArgs) -> Result<(), CliError> {
    let ClusterCommand::Describe = args.command;
    let cluster = client.cluster_id()?;
    let d = client.get(&format!("/v3/clusters/{cluster}/quorum"))?;
    let quorum = &d["quorum"];
    println!("ClusterId:              {}", text(&d["cluster_id"]));
    println!("ActiveController:       {}", text(&d["controller_id"]));
    println!("LeaderId:               {}", text(&quorum["leader"]));
    println!("LeaderEpoch (term):     {}", text(&quorum["term"]));
    println!(
        "MetadataOffset:         {} (applied by node {})",
        text(&d["metadata_offset"]),
        text(&d["node_id"])
    );
    println!("\n{:<8} {:<12} LISTENERS", "BROKER", "STATE");
    for b in d["brokers"].as_array().into_iter().flatten() {
        let endpoints: Vec<String> = b["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        println!(
            "{:<8} {:<12} {}",
            text(&b["id"]),
            text(&b["state"]),
            endpoints.join(",")
        );
    }
    println!(
        "\n{:<8} {:<24} {:>14} {:>10}",
        "VOTER", "ADDRESS", "MATCHED-INDEX", "LAG"
    );
    for (id, v) in quorum["voters"].as_object().into_iter().flatten() {
        println!(
            "{:<8} {:<24} {:>14} {:>10}",
            id,
            text(&v["addr"]),
            text(&v["matched_index"]),
            text(&v["lag_entries"])
        );
    }
    Ok(())
}
