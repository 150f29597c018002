//! Configs: a topic's effective configs with their sources, the broker's own (the
//! defaults behind topic configs), and altering a topic's overrides — all answered by
//! the topic registry, which owns the overrides and the broker defaults.

use std::collections::BTreeMap;

use super::{ask, Engine, RequestContext};
use crate::auth::acl::Operation;
use crate::broker::{
    AlterTopicConfigs, BrokerConfigs, ConfigChange, ConfigsWithOverrides, TopicConfigs,
};
use crate::error::BrokerResult;
use crate::topic_config::ConfigEntry;

/// A topic's effective configs (DescribeConfigs on it).
pub async fn topic_configs(
    engine: &Engine,
    ctx: &RequestContext,
    topic: &str,
) -> BrokerResult<Vec<ConfigEntry>> {
    engine.authorize_topic(ctx, Operation::DescribeConfigs, topic)?;
    engine
        .ask_broker(TopicConfigs {
            name: topic.to_string(),
        })
        .await
}

/// The effective configs of a topic with `overrides` (one being created, or only
/// validated), with their sources.
pub async fn configs_with_overrides(
    engine: &Engine,
    _ctx: &RequestContext,
    overrides: BTreeMap<String, String>,
) -> BrokerResult<Vec<ConfigEntry>> {
    ask(&engine.broker, ConfigsWithOverrides { overrides }).await
}

/// The broker's configs (DescribeConfigs on the cluster).
pub async fn broker_configs(
    engine: &Engine,
    ctx: &RequestContext,
) -> BrokerResult<Vec<ConfigEntry>> {
    engine.authorize_cluster(ctx, Operation::DescribeConfigs)?;
    ask(&engine.broker, BrokerConfigs).await
}

/// Applies `changes` to `topic`'s overrides all together, or none of them
/// (AlterConfigs on the topic).
pub async fn alter_topic_configs(
    engine: &Engine,
    ctx: &RequestContext,
    topic: &str,
    changes: Vec<ConfigChange>,
    validate_only: bool,
) -> BrokerResult<()> {
    engine.authorize_topic(ctx, Operation::AlterConfigs, topic)?;
    engine
        .ask_broker(AlterTopicConfigs {
            name: topic.to_string(),
            changes,
            validate_only,
        })
        .await
}
