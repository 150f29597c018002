//! Kafka's client quotas: produce and fetch bytes per second for a user, a client id
//! or both (`producer_byte_rate`, `consumer_byte_rate`), stored in the cluster
//! metadata (Kafka's ClientQuotaRecord; [`QuotaTable`] in the image) and enforced as
//! Kafka's `ClientQuotaManager` does: the bytes of each request are added to a rate
//! over a window of samples (`WINDOW_SAMPLES` of one second), and a client above its
//! quota is answered only after the delay that brings its rate back to it —
//! `(rate − quota) ÷ quota × window` — which the answer reports as its throttle time.
//!
//! Which quota applies is Kafka's order of precedence, most specific first: user and
//! client id; user and the default client id; the user; the default user and the
//! client id; the default user and default client id; the default user; the client
//! id; the default client id. The rate is kept per entity that matched, with a
//! default's name replaced by the client's own (a default user quota is each user's).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum QuotaKind {
    /// Bytes produced per second (`producer_byte_rate`).
    Producer,
    /// Bytes fetched per second (`consumer_byte_rate`).
    Consumer,
}

impl QuotaKind {
    pub const ALL: [QuotaKind; 2] = [QuotaKind::Producer, QuotaKind::Consumer];

    /// Kafka's quota key.
    pub fn key(self) -> &'static str {
        match self {
            QuotaKind::Producer => "producer_byte_rate",
            QuotaKind::Consumer => "consumer_byte_rate",
        }
    }

    pub fn of_key(key: &str) -> Option<QuotaKind> {
        QuotaKind::ALL.into_iter().find(|k| k.key() == key)
    }
}

/// One part of a quota's entity: a name, or the default (Kafka's null name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EntityName {
    Default,
    Name(String),
}

impl EntityName {
    /// As Kafka's tools write it: the name, or `<default>`.
    pub fn display(&self) -> &str {
        match self {
            EntityName::Default => "<default>",
            EntityName::Name(n) => n,
        }
    }
}

/// Whom a quota is for: a user, a client id, or both.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QuotaEntity {
    pub user: Option<EntityName>,
    pub client_id: Option<EntityName>,
}

impl QuotaEntity {
    /// Names at least one of a user and a client id.
    pub fn check(&self) -> Result<(), String> {
        if self.user.is_none() && self.client_id.is_none() {
            return Err("a quota entity names a user, a client id, or both".into());
        }
        for name in [&self.user, &self.client_id].into_iter().flatten() {
            if matches!(name, EntityName::Name(n) if n.is_empty()) {
                return Err("an entity name is empty (the default is <default>)".into());
            }
        }
        Ok(())
    }
}

/// A quota set (`Some`) or removed (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaChange {
    pub entity: QuotaEntity,
    pub kind: QuotaKind,
    /// Bytes per second.
    pub rate: Option<u64>,
}

/// Every quota of the cluster, as the image holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaTable {
    pub quotas: BTreeMap<QuotaEntity, BTreeMap<QuotaKind, u64>>,
}

impl QuotaTable {
    /// The quota of `kind` for `user` (`None`: unauthenticated) with `client_id`, and
    /// the entity whose rate it limits (defaults replaced by the client's names).
    pub fn quota_for(
        &self,
        kind: QuotaKind,
        user: Option<&str>,
        client_id: &str,
    ) -> Option<(QuotaEntity, u64)> {
        if self.quotas.is_empty() {
            return None;
        }
        use EntityName::{Default as D, Name};
        let user = user.unwrap_or(crate::auth::ANONYMOUS);
        let u = || Some(Name(user.to_string()));
        let c = || Some(Name(client_id.to_string()));
        let candidates = [
            (u(), c()),
            (u(), Some(D)),
            (u(), None),
            (Some(D), c()),
            (Some(D), Some(D)),
            (Some(D), None),
            (None, c()),
            (None, Some(D)),
        ];
        candidates.into_iter().find_map(|(user_part, client_part)| {
            let entity = QuotaEntity {
                user: user_part,
                client_id: client_part,
            };
            let rate = *self.quotas.get(&entity)?.get(&kind)?;
            // The rate is kept for the client's own names where a default matched.
            let own = QuotaEntity {
                user: entity.user.as_ref().map(|_| Name(user.to_string())),
                client_id: entity
                    .client_id
                    .as_ref()
                    .map(|_| Name(client_id.to_string())),
            };
            Some((own, rate))
        })
    }
}

/// Samples of one second each that a rate is measured over (Kafka's
/// `quota.window.num` = 11, `quota.window.size.seconds` = 1).
pub const WINDOW_SAMPLES: usize = 11;
const SAMPLE: Duration = Duration::from_secs(1);
/// The longest a response is held back (Kafka caps a throttle at its window too).
pub const MAX_THROTTLE: Duration = Duration::from_secs(30);

/// One entity's bytes per sample, oldest first.
#[derive(Debug)]
struct Sensor {
    samples: Vec<(Instant, u64)>,
    throttled: Duration,
    /// The quota at the last request, and the rate then.
    quota: u64,
    rate: f64,
}

impl Sensor {
    /// Adds `bytes` at `now`; the rate in bytes per second over the window.
    fn record(&mut self, now: Instant, bytes: u64) -> f64 {
        let window = SAMPLE * WINDOW_SAMPLES as u32;
        self.samples
            .retain(|(start, _)| now.saturating_duration_since(*start) < window);
        match self.samples.last_mut() {
            Some((start, total)) if now.saturating_duration_since(*start) < SAMPLE => {
                *total += bytes
            }
            _ => self.samples.push((now, bytes)),
        }
        let total: u64 = self.samples.iter().map(|(_, b)| b).sum();
        total as f64 / self.window(now).as_secs_f64()
    }

    /// Kafka's window a rate is measured over: the time since the oldest sample
    /// began, but never less than all the samples but one (so a first burst is
    /// spread over the window, not read as an enormous rate).
    fn window(&self, now: Instant) -> Duration {
        let first = self.samples.first().map_or(now, |(s, _)| *s);
        now.saturating_duration_since(first)
            .max(SAMPLE * (WINDOW_SAMPLES as u32 - 1))
    }
}

/// What `/metrics` shows of one entity's quota.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaUse {
    pub kind: QuotaKind,
    pub entity: QuotaEntity,
    pub quota: u64,
    /// The rate at the last request, bytes per second.
    pub rate: f64,
    /// Time answers were held back, in total.
    pub throttled: Duration,
}

/// The rates of every entity with a quota, and the delays they earn. One per node.
#[derive(Debug, Default)]
pub struct QuotaManager {
    sensors: Mutex<HashMap<(QuotaKind, QuotaEntity), Sensor>>,
}

impl QuotaManager {
    /// Records `bytes` of `kind` for the client, under `table`'s quota for it; the
    /// delay its answer waits (zero within its quota, or with none).
    pub fn record(
        &self,
        table: &QuotaTable,
        kind: QuotaKind,
        user: Option<&str>,
        client_id: &str,
        bytes: u64,
    ) -> Duration {
        let Some((entity, quota)) = table.quota_for(kind, user, client_id) else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let mut sensors = match self.sensors.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let sensor = sensors.entry((kind, entity)).or_insert_with(|| Sensor {
            samples: Vec::new(),
            throttled: Duration::ZERO,
            quota,
            rate: 0.0,
        });
        sensor.quota = quota;
        let rate = sensor.record(now, bytes);
        sensor.rate = rate;
        let quota = quota.max(1) as f64;
        if rate <= quota {
            return Duration::ZERO;
        }
        let delay = sensor
            .window(now)
            .mul_f64((rate - quota) / quota)
            .min(MAX_THROTTLE);
        sensor.throttled += delay;
        delay
    }

    /// Each entity's quota, last rate and time throttled.
    pub fn usage(&self) -> Vec<QuotaUse> {
        let sensors = match self.sensors.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut all: Vec<QuotaUse> = sensors
            .iter()
            .map(|((kind, entity), sensor)| QuotaUse {
                kind: *kind,
                entity: entity.clone(),
                quota: sensor.quota,
                rate: sensor.rate,
                throttled: sensor.throttled,
            })
            .collect();
        all.sort_by(|a, b| (a.kind, &a.entity).cmp(&(b.kind, &b.entity)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<EntityName>, client_id: Option<EntityName>) -> QuotaEntity {
        QuotaEntity { user, client_id }
    }
    fn name(n: &str) -> Option<EntityName> {
        Some(EntityName::Name(n.into()))
    }

    #[test]
    fn the_most_specific_quota_applies_and_defaults_are_per_client() {
        let mut table = QuotaTable::default();
        let mut set = |e: QuotaEntity, rate| {
            table
                .quotas
                .entry(e)
                .or_default()
                .insert(QuotaKind::Producer, rate);
        };
        set(entity(Some(EntityName::Default), None), 100);
        set(entity(name("alice"), None), 200);
        set(entity(name("alice"), name("etl")), 300);
        set(entity(None, name("legacy")), 400);
        let q = |user, client| table.quota_for(QuotaKind::Producer, user, client);
        assert_eq!(
            q(Some("alice"), "etl"),
            Some((entity(name("alice"), name("etl")), 300))
        );
        assert_eq!(
            q(Some("alice"), "other"),
            Some((entity(name("alice"), None), 200))
        );
        assert_eq!(
            q(Some("bob"), "legacy"),
            Some((entity(name("bob"), None), 100)),
            "the default user's quota, kept per user, before the client id's"
        );
        assert_eq!(
            table.quota_for(QuotaKind::Consumer, Some("alice"), "etl"),
            None
        );
        table
            .quotas
            .remove(&entity(Some(EntityName::Default), None));
        assert_eq!(
            table.quota_for(QuotaKind::Producer, Some("bob"), "legacy"),
            Some((entity(None, name("legacy")), 400))
        );
        assert!(entity(None, None).check().is_err());
        assert!(entity(name(""), None).check().is_err());
    }

    #[test]
    fn a_client_above_its_quota_is_delayed_in_proportion() {
        let mut table = QuotaTable::default();
        table
            .quotas
            .entry(entity(name("alice"), None))
            .or_default()
            .insert(QuotaKind::Producer, 1000);
        let manager = QuotaManager::default();
        let delay = |bytes| manager.record(&table, QuotaKind::Producer, Some("alice"), "c", bytes);
        assert_eq!(delay(500), Duration::ZERO, "within the quota");
        // 20,500 bytes over the 10 s a young window counts: 2,050 B/s, 1.05 × the
        // quota too much, so 1.05 × the window's 10 s.
        let held = delay(20_000);
        assert!(
            held >= Duration::from_millis(10_400) && held <= Duration::from_millis(10_600),
            "{held:?}"
        );
        assert_eq!(
            manager.record(&table, QuotaKind::Producer, Some("bob"), "c", 1 << 30),
            Duration::ZERO,
            "no quota, no delay"
        );
        let usage = manager.usage();
        assert_eq!(usage.len(), 1);
        assert_eq!(usage[0].quota, 1000);
        assert!(usage[0].throttled >= Duration::from_millis(10_400));
    }
}
