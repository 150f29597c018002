//! Configs: a topic's effective configs with their sources, the broker's own (the
//! defaults behind topic configs), and altering a topic's overrides — all answered by
//! the topic registry, which owns the overrides and the broker defaults.

use std::collections::BTreeMap;

use super::{ask, Engine, RequestContext};
use crate::broker::{
    AlterTopicConfigs, BrokerConfigs, ConfigChange, ConfigsWithOverrides, TopicConfigs,
};
use crate::error::BrokerResult;
use crate::topic_config::ConfigEntry;

pub async fn topic_configs(
    engine: &Engine,
    _ctx: &RequestContext,
    topic: &str,
) -> BrokerResult<Vec<ConfigEntry>> {
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

pub async fn broker_configs(
    engine: &Engine,
    _ctx: &RequestContext,
) -> BrokerResult<Vec<ConfigEntry>> {
    ask(&engine.broker, BrokerConfigs).await
}

/// Applies `changes` to `topic`'s overrides all together, or none of them.
pub async fn alter_topic_configs(
    engine: &Engine,
    _ctx: &RequestContext,
    topic: &str,
    changes: Vec<ConfigChange>,
    validate_only: bool,
) -> BrokerResult<()> {
    engine
        .ask_broker(AlterTopicConfigs {
            name: topic.to_string(),
            changes,
            validate_only,
        })
        .await
}
