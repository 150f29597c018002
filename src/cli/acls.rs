//! `troupe acls`, like Kafka's `kafka-acls.sh`: list, add and remove ACLs over the
//! broker's `/v3/clusters/{c}/acls`.
//!
//! ```text
//! troupe acls list [--topic T | --group G | --cluster] [--principal User:alice]
//! troupe acls add --allow-principal User:alice --operation Read --topic orders
//! troupe acls add --deny-principal User:bob --operation All --topic pay- --resource-pattern-type prefixed
//! troupe acls remove --principal User:alice --topic orders
//! ```

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::{encode, CliError, Client};

#[derive(Args, Debug)]
pub struct AclsArgs {
    #[command(subcommand)]
    pub command: AclsCommand,
}

/// The resource an ACL is about, as kafka-acls.sh names it.
#[derive(Args, Debug, Clone, Default)]
pub struct ResourceArgs {
    #[arg(long, group = "resource")]
    pub topic: Option<String>,
    #[arg(long, group = "resource")]
    pub group: Option<String>,
    #[arg(long, group = "resource")]
    pub transactional_id: Option<String>,
    /// The cluster resource (kafka-cluster).
    #[arg(long, group = "resource")]
    pub cluster: bool,
    /// LITERAL (the default for add), PREFIXED, or for list and remove ANY or MATCH.
    #[arg(long)]
    pub resource_pattern_type: Option<String>,
}

impl ResourceArgs {
    fn resource(&self) -> Option<(&'static str, String)> {
        if let Some(t) = &self.topic {
            Some(("TOPIC", t.clone()))
        } else if let Some(g) = &self.group {
            Some(("GROUP", g.clone()))
        } else if let Some(t) = &self.transactional_id {
            Some(("TRANSACTIONAL_ID", t.clone()))
        } else if self.cluster {
            Some(("CLUSTER", "kafka-cluster".to_string()))
        } else {
            None
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum AclsCommand {
    /// ACLs, all or those of a resource and/or principal.
    List {
        #[command(flatten)]
        resource: ResourceArgs,
        #[arg(long)]
        principal: Option<String>,
    },
    /// Add ACLs: each principal given, each operation, on the resource.
    Add {
        #[command(flatten)]
        resource: ResourceArgs,
        #[arg(long = "allow-principal")]
        allow: Vec<String>,
        #[arg(long = "deny-principal")]
        deny: Vec<String>,
        /// Read, Write, Create, Delete, Alter, Describe, ClusterAction,
        /// DescribeConfigs, AlterConfigs, IdempotentWrite or All (repeatable).
        #[arg(long = "operation", required = true)]
        operations: Vec<String>,
        /// The host the ACL applies from (every host unless given).
        #[arg(long, default_value = "*")]
        host: String,
    },
    /// Remove the ACLs of a resource and/or principal.
    Remove {
        #[command(flatten)]
        resource: ResourceArgs,
        #[arg(long)]
        principal: Option<String>,
        #[arg(long)]
        operation: Option<String>,
    },
}

fn query(resource: &ResourceArgs, principal: Option<&str>, operation: Option<&str>) -> String {
    let mut parts: Vec<String> = Vec::new();
    match resource.resource() {
        Some((kind, name)) => {
            parts.push(format!("resource_type={kind}"));
            parts.push(format!("resource_name={}", encode(&name)));
            parts.push(format!(
                "pattern_type={}",
                resource
                    .resource_pattern_type
                    .as_deref()
                    .unwrap_or("LITERAL")
            ));
        }
        None => parts.push("resource_type=ANY".into()),
    }
    if let Some(p) = principal {
        parts.push(format!("principal={}", encode(p)));
    }
    if let Some(o) = operation {
        parts.push(format!("operation={}", encode(o)));
    }
    format!("?{}", parts.join("&"))
}

fn print(acls: &Value) {
    println!(
        "{:<18} {:<24} {:<10} {:<20} {:<16} {:<17} PERMISSION",
        "RESOURCE TYPE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION"
    );
    for a in acls["data"].as_array().into_iter().flatten() {
        let field = |k: &str| a[k].as_str().unwrap_or("?").to_string();
        println!(
            "{:<18} {:<24} {:<10} {:<20} {:<16} {:<17} {}",
            field("resource_type"),
            field("resource_name"),
            field("pattern_type"),
            field("principal"),
            field("host"),
            field("operation"),
            field("permission")
        );
    }
}

pub fn run(client: &Client, args: AclsArgs) -> Result<(), CliError> {
    let cluster = client.cluster_id()?;
    let base = format!("/v3/clusters/{cluster}/acls");
    match args.command {
        AclsCommand::List {
            resource,
            principal,
        } => {
            let mut q = query(&resource, principal.as_deref(), None);
            if resource.resource().is_some() && resource.resource_pattern_type.is_none() {
                // Like kafka-acls.sh --list: every ACL that covers the resource.
                q = q.replace("pattern_type=LITERAL", "pattern_type=MATCH");
            }
            print(&client.get(&format!("{base}{q}"))?);
        }
        AclsCommand::Add {
            resource,
            allow,
            deny,
            operations,
            host,
        } => {
            let Some((kind, name)) = resource.resource() else {
                return Err(CliError::Input(
                    "name the resource: --topic, --group, --transactional-id or --cluster".into(),
                ));
            };
            if allow.is_empty() && deny.is_empty() {
                return Err(CliError::Input(
                    "give --allow-principal or --deny-principal".into(),
                ));
            }
            let pattern = resource
                .resource_pattern_type
                .as_deref()
                .unwrap_or("LITERAL");
            let mut data = Vec::new();
            for (permission, principals) in [("ALLOW", &allow), ("DENY", &deny)] {
                for principal in principals {
                    for operation in &operations {
                        data.push(json!({
                            "resource_type": kind, "resource_name": name, "pattern_type": pattern,
                            "principal": principal, "host": host, "operation": operation,
                            "permission": permission,
                        }));
                    }
                }
            }
            let count = data.len();
            client.send_json(
                "POST",
                &format!("{base}:batch"),
                "application/json",
                &json!({ "data": data }),
            )?;
            println!("Added {count} ACL(s).");
        }
        AclsCommand::Remove {
            resource,
            principal,
            operation,
        } => {
            if resource.resource().is_none() && principal.is_none() {
                return Err(CliError::Input(
                    "name a resource or a principal: removing every ACL takes --principal or a resource".into(),
                ));
            }
            let q = query(&resource, principal.as_deref(), operation.as_deref());
            let deleted = client.delete(&format!("{base}{q}"))?.unwrap_or(Value::Null);
            let count = deleted["data"].as_array().map_or(0, Vec::len);
            println!("Removed {count} ACL(s).");
        }
    }
    Ok(())
}
