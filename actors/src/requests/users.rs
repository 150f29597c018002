//! Users and their SCRAM credentials, as Kafka keeps them (in the cluster metadata;
//! `kafka-configs.sh --entity-type users --alter --add-config 'SCRAM-SHA-256=[…]'`):
//! listed and described from the image (mechanisms and iterations only — a
//! credential's keys never leave the broker), created, given a new password and
//! deleted through the controller. A password becomes a credential here, with a
//! fresh salt, before anything is sent: no password travels or is stored.

use super::{Engine, RequestContext};
use crate::auth::{ScramCredential, ScramMechanism, UserCredentials};
use crate::broker::AlterUserScramCredentials;
use crate::controller::decisions::{CreateMode, ScramChanges};
use crate::controller::records::UserScramCredentialRecord;
use crate::error::{BrokerError, BrokerResult};

/// Kafka's default iterations (`kafka-configs.sh`): its minimum.
pub const DEFAULT_ITERATIONS: u32 = crate::auth::scram::MIN_ITERATIONS;

/// What is told of a user: its mechanisms and their iterations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDescription {
    pub name: String,
    pub credentials: Vec<CredentialInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialInfo {
    pub mechanism: ScramMechanism,
    pub iterations: u32,
}

/// Which credentials a password makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordSpec {
    /// Both SCRAM mechanisms unless told.
    pub mechanisms: Vec<ScramMechanism>,
    pub iterations: u32,
}

impl Default for PasswordSpec {
    fn default() -> Self {
        PasswordSpec {
            mechanisms: ScramMechanism::ALL.to_vec(),
            iterations: DEFAULT_ITERATIONS,
        }
    }
}

fn describe_one(name: &str, credentials: &UserCredentials) -> UserDescription {
    UserDescription {
        name: name.to_string(),
        credentials: credentials
            .iter()
            .map(|(mechanism, c)| CredentialInfo {
                mechanism: *mechanism,
                iterations: c.iterations,
            })
            .collect(),
    }
}

/// Every user, by name.
pub fn list(engine: &Engine, ctx: &RequestContext) -> BrokerResult<Vec<UserDescription>> {
    engine.check_admin(ctx, crate::auth::acl::Operation::Describe)?;
    Ok(engine
        .image()
        .users
        .iter()
        .map(|(name, credentials)| describe_one(name, credentials))
        .collect())
}

pub fn describe(
    engine: &Engine,
    ctx: &RequestContext,
    name: &str,
) -> BrokerResult<UserDescription> {
    engine.check_admin(ctx, crate::auth::acl::Operation::Describe)?;
    let image = engine.image();
    image
        .users
        .get(name)
        .map(|credentials| describe_one(name, credentials))
        .ok_or_else(|| BrokerError::UnknownUser(format!("no user '{name}'")))
}

/// A user name SCRAM, PLAIN and HTTP Basic can all carry: not empty, at most 255
/// bytes, no control characters, and no `:` (HTTP Basic ends the name there).
pub fn check_user_name(name: &str) -> BrokerResult<()> {
    let bad = |why: &str| {
        Err(BrokerError::UnacceptableCredential(format!(
            "user name '{}' {why}",
            name.escape_debug()
        )))
    };
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > 255 {
        return bad("is longer than 255 bytes");
    }
    if name.chars().any(|c| c.is_control()) {
        return bad("has a control character");
    }
    if name.contains(':') {
        return bad("has a ':' (HTTP Basic authentication could not carry it)");
    }
    Ok(())
}

fn credentials(
    name: &str,
    password: &str,
    spec: &PasswordSpec,
) -> BrokerResult<Vec<UserScramCredentialRecord>> {
    check_user_name(name)?;
    if spec.mechanisms.is_empty() {
        return Err(BrokerError::UnacceptableCredential(
            "no SCRAM mechanism named".into(),
        ));
    }
    spec.mechanisms
        .iter()
        .map(|mechanism| {
            ScramCredential::new(*mechanism, password, spec.iterations)
                .map(|credential| UserScramCredentialRecord {
                    name: name.to_string(),
                    mechanism: *mechanism,
                    credential,
                })
                .map_err(BrokerError::UnacceptableCredential)
        })
        .collect()
}

async fn alter(engine: &Engine, changes: ScramChanges) -> BrokerResult<()> {
    engine.ask_broker(AlterUserScramCredentials(changes)).await
}

/// A new user with `password`; one that exists is refused.
pub async fn create(
    engine: &Engine,
    ctx: &RequestContext,
    name: &str,
    password: &str,
    spec: &PasswordSpec,
) -> BrokerResult<UserDescription> {
    store_password(engine, ctx, name, password, spec, CreateMode::New).await?;
    log::info!("user '{name}' created");
    describe(engine, ctx, name)
}

/// Sets `name`'s password for the mechanisms `spec` names (creating the user if it
/// does not exist); its other mechanisms stay as they were.
pub async fn set_password(
    engine: &Engine,
    ctx: &RequestContext,
    name: &str,
    password: &str,
    spec: &PasswordSpec,
) -> BrokerResult<UserDescription> {
    store_password(engine, ctx, name, password, spec, CreateMode::Upsert).await?;
    log::info!("user '{name}': password set");
    describe(engine, ctx, name)
}

/// `password`'s credentials for `name`, committed as `create` says.
async fn store_password(
    engine: &Engine,
    ctx: &RequestContext,
    name: &str,
    password: &str,
    spec: &PasswordSpec,
    create: CreateMode,
) -> BrokerResult<()> {
    engine.check_admin(ctx, crate::auth::acl::Operation::Alter)?;
    let upsertions = credentials(name, password, spec)?;
    alter(
        engine,
        ScramChanges {
            upsertions,
            deletions: Vec::new(),
            create,
        },
    )
    .await
}

/// Removes `name`'s credential for `mechanism`, or the whole user.
pub async fn delete(
    engine: &Engine,
    ctx: &RequestContext,
    name: &str,
    mechanism: Option<ScramMechanism>,
) -> BrokerResult<()> {
    engine.check_admin(ctx, crate::auth::acl::Operation::Alter)?;
    let user = describe(engine, ctx, name)?;
    let deletions = match mechanism {
        Some(m) => vec![(name.to_string(), m)],
        None => user
            .credentials
            .iter()
            .map(|c| (name.to_string(), c.mechanism))
            .collect(),
    };
    alter(
        engine,
        ScramChanges {
            upsertions: Vec::new(),
            deletions,
            create: CreateMode::Upsert,
        },
    )
    .await?;
    log::info!("user '{name}' deleted");
    Ok(())
}

/// One credential of Kafka's AlterUserScramCredentials: the client salted the
/// password (`Hi(password, salt, iterations)`), so only that travels.
#[derive(Clone)]
pub struct SaltedUpsertion {
    pub name: String,
    pub mechanism: ScramMechanism,
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub salted_password: Vec<u8>,
}

/// The salted password stays out of debug output.
impl std::fmt::Debug for SaltedUpsertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} for user {}", self.mechanism, self.name)
    }
}

/// One user's credentials set (from salted passwords) and removed, together (Kafka's
/// AlterUserScramCredentials answers per user).
pub async fn alter_salted(
    engine: &Engine,
    ctx: &RequestContext,
    upsertions: Vec<SaltedUpsertion>,
    deletions: Vec<(String, ScramMechanism)>,
) -> BrokerResult<()> {
    engine.check_admin(ctx, crate::auth::acl::Operation::Alter)?;
    let mut records = Vec::with_capacity(upsertions.len());
    for u in upsertions {
        check_user_name(&u.name)?;
        if u.salt.is_empty() || u.salted_password.is_empty() {
            return Err(BrokerError::UnacceptableCredential(
                "an empty salt or salted password".into(),
            ));
        }
        let credential =
            ScramCredential::from_salted(u.mechanism, &u.salted_password, u.salt, u.iterations);
        records.push(UserScramCredentialRecord {
            name: u.name,
            mechanism: u.mechanism,
            credential,
        });
    }
    for (name, _) in &deletions {
        check_user_name(name)?;
    }
    alter(
        engine,
        ScramChanges {
            upsertions: records,
            deletions,
            create: CreateMode::Upsert,
        },
    )
    .await
}

/// One user `troupe serve --add-scram` names.
#[derive(Clone)]
pub struct BootstrapUser {
    pub name: String,
    pub mechanism: ScramMechanism,
    pub password: String,
    pub iterations: u32,
}

/// The password stays out of debug output.
impl std::fmt::Debug for BootstrapUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} for user {}", self.mechanism, self.name)
    }
}

/// The users `troupe serve --add-scram` names, created unless they exist (a
/// password changed since is kept): Kafka's `kafka-storage.sh format --add-scram`.
pub async fn bootstrap(engine: &Engine, users: &[BootstrapUser]) -> BrokerResult<()> {
    let mut upsertions = Vec::new();
    for user in users {
        let spec = PasswordSpec {
            mechanisms: vec![user.mechanism],
            iterations: user.iterations,
        };
        upsertions.extend(credentials(&user.name, &user.password, &spec)?);
    }
    if upsertions.is_empty() {
        return Ok(());
    }
    alter(
        engine,
        ScramChanges {
            upsertions,
            deletions: Vec::new(),
            create: CreateMode::IfAbsent,
        },
    )
    .await
}
