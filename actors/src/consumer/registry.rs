//! `ConsumerRegistry`: finds a broker's consumer instances by group and name,
//! creates them (bounded by `consumer.instances.max`), and forgets them when they
//! close — deleted by their client or idle past `consumer.instance.timeout.ms` — or
//! die: an instance that panicked is ended, not restarted (see [`super`]), and the
//! registry drops a dead address the first time it meets it, so a lookup never hands
//! one out.
//!
//! The registry itself is supervised ([`crate::supervision`]): a restart keeps its map
//! (the live instances in it stay valid); once its budget is spent it answers every
//! request with why.

use std::collections::HashMap;

use actix::prelude::*;

use super::messages::*;
use super::{ConsumerError, ConsumerInstance, InstanceLinks};
use crate::broker_config::ConsumerConfig;
use crate::clock::Clock;
use crate::error::BrokerError;
use crate::group::manager::validate_group_id;
use crate::group::GroupManager;
use crate::requests::Routes;
use crate::supervision::{self, ActorKind, RestartPolicy, Supervise, Supervision};

pub struct ConsumerRegistry {
    config: ConsumerConfig,
    routes: Routes,
    groups: Addr<GroupManager>,
    instances: HashMap<(String, String), Addr<ConsumerInstance>>,
    /// Handed to every instance.
    clock: Clock,
    supervision: Supervision,
}

impl ConsumerRegistry {
    pub fn new(
        config: ConsumerConfig,
        routes: Routes,
        groups: Addr<GroupManager>,
        clock: Clock,
        restarts: RestartPolicy,
    ) -> Self {
        ConsumerRegistry {
            config,
            routes,
            groups,
            instances: HashMap::new(),
            clock,
            supervision: Supervision::new(ActorKind::ConsumerRegistry, restarts),
        }
    }

    /// Starts the registry under the supervision policy.
    pub fn start_supervised(self) -> Addr<ConsumerRegistry> {
        supervision::start(self)
    }

    /// `Err` with the reason while the registry is down (its restart budget spent).
    fn check_up(&self) -> ConsumerResult<()> {
        match self.supervision.down() {
            None => Ok(()),
            Some(reason) => Err(ConsumerError::Broker(BrokerError::Unavailable(format!(
                "the consumer registry is down: {reason}"
            )))),
        }
    }

    /// Drops the instances that are gone without closing (they panicked).
    fn forget_dead(&mut self) {
        self.instances.retain(|(group_id, name), addr| {
            let alive = addr.connected();
            if !alive {
                log::warn!("consumer instance {group_id}/{name} is gone; forgotten");
            }
            alive
        });
    }

    /// The instance under `key` if it is alive; a dead one is forgotten.
    fn live(&mut self, key: &(String, String)) -> Option<Addr<ConsumerInstance>> {
        let addr = self.instances.get(key)?;
        if addr.connected() {
            return Some(addr.clone());
        }
        log::warn!("consumer instance {}/{} is gone; forgotten", key.0, key.1);
        self.instances.remove(key);
        None
    }
}

impl Actor for ConsumerRegistry {
    type Context = Context<Self>;
}

impl Supervise for ConsumerRegistry {
    const KIND: ActorKind = ActorKind::ConsumerRegistry;
}

impl Supervised for ConsumerRegistry {
    fn restarting(&mut self, _: &mut Context<Self>) {
        let now = self.clock.monotonic();
        let _ = self.supervision.restarting_at(&self.name(), now);
        self.forget_dead();
    }
}

#[cfg(any(test, feature = "test-support"))]
supervision::answers_panic_hook!(ConsumerRegistry);

impl Handler<CreateInstance> for ConsumerRegistry {
    type Result = ConsumerResult<Addr<ConsumerInstance>>;

    fn handle(&mut self, msg: CreateInstance, ctx: &mut Context<Self>) -> Self::Result {
        self.check_up()?;
        validate_group_id(&msg.group_id)?;
        validate_group_id(&msg.name)
            .map_err(|_| ConsumerError::InvalidInstanceName(msg.name.clone()))?;
        self.forget_dead();
        let key = (msg.group_id.clone(), msg.name.clone());
        if self.instances.contains_key(&key) {
            return Err(ConsumerError::InstanceExists {
                group_id: msg.group_id,
                name: msg.name,
            });
        }
        if self.instances.len() >= self.config.max_instances {
            return Err(ConsumerError::TooManyInstances(self.config.max_instances));
        }
        let instance = supervision::start_temporary(ConsumerInstance::new(
            &msg.group_id,
            &msg.name,
            msg.settings,
            self.config.clone(),
            InstanceLinks {
                routes: self.routes.clone(),
                groups: self.groups.clone(),
                registry: ctx.address().recipient(),
                clock: self.clock.clone(),
            },
        ));
        log::info!("consumer instance {}/{} created", msg.group_id, msg.name);
        self.instances.insert(key, instance.clone());
        Ok(instance)
    }
}

impl Handler<FindInstance> for ConsumerRegistry {
    type Result = ConsumerResult<Addr<ConsumerInstance>>;

    fn handle(&mut self, msg: FindInstance, _: &mut Context<Self>) -> Self::Result {
        self.check_up()?;
        self.live(&(msg.group_id.clone(), msg.name.clone()))
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
