//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): what
//! `kafka-configs.sh --entity-type users` and the admin clients use for users' SCRAM
//! credentials — the same users REST and `troupe users` manage. Describe answers each
//! user's mechanisms and iterations (never a salt or key); Alter takes the salt and
//! salted password the client computed (no password travels) and applies each user's
//! changes on their own, as Kafka does: RESOURCE_NOT_FOUND for an unknown user,
//! DUPLICATE_RESOURCE for a user (or user and mechanism) named twice,
//! UNSUPPORTED_SASL_MECHANISM for a mechanism other than SCRAM-SHA-256/512,
//! UNACCEPTABLE_CREDENTIAL for iterations out of bounds or an empty name or salt.

use std::collections::{BTreeSet, HashMap};

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::auth::ScramMechanism;
use troupe_actors::requests::users::{self, SaltedUpsertion};
use troupe_actors::{BrokerError, ErrorKind};

use super::{error_code, Session};

fn text(s: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(s.into()))
}

pub fn describe(
    session: &Session,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let all = match users::list(&session.engine, &session.context) {
        Ok(all) => all,
        Err(e) => {
            return DescribeUserScramCredentialsResponse::default()
                .with_error_code(error_code(e.kind()))
                .with_error_message(text(e.to_string()))
        }
    };
    let wanted: Vec<String> = match request.users {
        Some(names) if !names.is_empty() => names.iter().map(|u| u.name.to_string()).collect(),
        _ => all.iter().map(|u| u.name.clone()).collect(),
    };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for name in &wanted {
        *counts.entry(name.as_str()).or_default() += 1;
    }
    let mut seen = BTreeSet::new();
    let mut results = Vec::new();
    for name in &wanted {
        if !seen.insert(name.as_str()) {
            continue;
        }
        let result = DescribeUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(name.clone()));
        let result = if counts[name.as_str()] > 1 {
            result
                .with_error_code(ErrorKind::DuplicateResource.kafka_code())
                .with_error_message(text(format!("user {name} is named more than once")))
        } else {
            match all.iter().find(|u| &u.name == name) {
                Some(user) => result.with_credential_infos(
                    user.credentials
                        .iter()
                        .map(|c| {
                            CredentialInfo::default()
                                .with_mechanism(c.mechanism.kafka_type())
                                .with_iterations(c.iterations as i32)
                        })
                        .collect(),
                ),
                None => result
                    .with_error_code(ErrorKind::ResourceNotFound.kafka_code())
                    .with_error_message(text(format!(
                        "attempt to describe a user credential that does not exist: {name}"
                    ))),
            }
        };
        results.push(result);
    }
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

pub async fn alter(
    session: &Session,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Per user: its changes, or why they are refused before anything is sent.
    let mut order: Vec<String> = Vec::new();
    let mut refused: HashMap<String, (ErrorKind, String)> = HashMap::new();
    let mut named: HashMap<(String, i8), usize> = HashMap::new();
    let mut upsertions: HashMap<String, Vec<SaltedUpsertion>> = HashMap::new();
    let mut deletions: HashMap<String, Vec<ScramMechanism>> = HashMap::new();
    let note = |name: &str, order: &mut Vec<String>| {
        if !order.iter().any(|n| n == name) {
            order.push(name.to_string());
        }
    };
    for d in &request.deletions {
        let name = d.name.to_string();
        note(&name, &mut order);
        *named.entry((name.clone(), d.mechanism)).or_default() += 1;
        match ScramMechanism::of_kafka_type(d.mechanism) {
            Some(m) => deletions.entry(name).or_default().push(m),
            None => {
                refused.entry(name).or_insert((
                    ErrorKind::UnsupportedSaslMechanism,
                    format!("unknown SCRAM mechanism {}", d.mechanism),
                ));
            }
        }
    }
    for u in &request.upsertions {
        let name = u.name.to_string();
        note(&name, &mut order);
        *named.entry((name.clone(), u.mechanism)).or_default() += 1;
        match ScramMechanism::of_kafka_type(u.mechanism) {
            Some(mechanism) => upsertions
                .entry(name.clone())
                .or_default()
                .push(SaltedUpsertion {
                    name,
                    mechanism,
                    iterations: u.iterations.max(0) as u32,
                    salt: u.salt.to_vec(),
                    salted_password: u.salted_password.to_vec(),
                }),
            None => {
                refused.entry(name).or_insert((
                    ErrorKind::UnsupportedSaslMechanism,
                    format!("unknown SCRAM mechanism {}", u.mechanism),
                ));
            }
        }
    }
    for ((name, mechanism), count) in &named {
        if *count > 1 {
            refused.insert(
                name.clone(),
                (
                    ErrorKind::DuplicateResource,
                    format!("user {name}'s mechanism {mechanism} is named more than once"),
                ),
            );
        }
    }
    let mut results = Vec::with_capacity(order.len());
    for name in order {
        let outcome = match refused.remove(&name) {
            Some(refusal) => Err(refusal),
            None => users::alter_salted(
                &session.engine,
                &session.context,
                upsertions.remove(&name).unwrap_or_default(),
                deletions
                    .remove(&name)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| (name.clone(), m))
                    .collect(),
            )
            .await
            .map_err(|e: BrokerError| (e.kind(), e.to_string())),
        };
        let result = AlterUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(name.clone()));
        results.push(match outcome {
            Ok(()) => result,
            Err((kind, message)) => {
                log::debug!("kafka: altering user {name}'s credentials: {message}");
                result
                    .with_error_code(error_code(kind))
                    .with_error_message(text(message))
            }
        });
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}
