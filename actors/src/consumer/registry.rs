//! `ConsumerRegistry`: finds a broker's consumer instances by group and name,
//! creates them (bounded by `consumer.instances.max`), and forgets them when they
//! close — deleted by their client or idle past `consumer.instance.timeout.ms`.

use std::collections::HashMap;

use actix::prelude::*;

use super::messages::*;
use super::{ConsumerError, ConsumerInstance};
use crate::broker::Broker;
use crate::broker_config::ConsumerConfig;
use crate::group::manager::validate_group_id;
use crate::group::GroupManager;

pub struct ConsumerRegistry {
    config: ConsumerConfig,
    broker: Addr<Broker>,
    groups: Addr<GroupManager>,
    instances: HashMap<(String, String), Addr<ConsumerInstance>>,
}

impl ConsumerRegistry {
    pub fn new(config: ConsumerConfig, broker: Addr<Broker>, groups: Addr<GroupManager>) -> Self {
        ConsumerRegistry {
            config,
            broker,
            groups,
            instances: HashMap::new(),
        }
    }
}

impl Actor for ConsumerRegistry {
    type Context = Context<Self>;
}

impl Handler<CreateInstance> for ConsumerRegistry {
    type Result = ConsumerResult<Addr<ConsumerInstance>>;

    fn handle(&mut self, msg: CreateInstance, ctx: &mut Context<Self>) -> Self::Result {
        validate_group_id(&msg.group_id)?;
        validate_group_id(&msg.name)
            .map_err(|_| ConsumerError::InvalidInstanceName(msg.name.clone()))?;
        let key = (msg.group_id.clone(), msg.name.clone());
        if self.instances.get(&key).is_some_and(|a| a.connected()) {
            return Err(ConsumerError::InstanceExists {
                group_id: msg.group_id,
                name: msg.name,
            });
        }
        self.instances.retain(|_, a| a.connected());
        if self.instances.len() >= self.config.max_instances {
            return Err(ConsumerError::TooManyInstances(self.config.max_instances));
        }
        let instance = ConsumerInstance::new(
            &msg.group_id,
            &msg.name,
            msg.settings,
            self.config.clone(),
            self.broker.clone(),
            self.groups.clone(),
            ctx.address().recipient(),
        )
        .start();
        log::info!("consumer instance {}/{} created", msg.group_id, msg.name);
        self.instances.insert(key, instance.clone());
        Ok(instance)
    }
}

impl Handler<FindInstance> for ConsumerRegistry {
    type Result = ConsumerResult<Addr<ConsumerInstance>>;

    fn handle(&mut self, msg: FindInstance, _: &mut Context<Self>) -> Self::Result {
        self.instances
            .get(&(msg.group_id.clone(), msg.name.clone()))
            .filter(|a| a.connected())
            .cloned()
            .ok_or(ConsumerError::UnknownInstance {
                group_id: msg.group_id,
                name: msg.name,
            })
    }
}

impl Handler<InstanceClosed> for ConsumerRegistry {
    type Result = ();

    fn handle(&mut self, msg: InstanceClosed, _: &mut Context<Self>) {
        log::info!("consumer instance {}/{} closed", msg.group_id, msg.name);
        self.instances.remove(&(msg.group_id, msg.name));
    }
}
