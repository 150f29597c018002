//! SaslHandshake and SaslAuthenticate (KIP-43, KIP-152): a `SASL_PLAINTEXT` or
//! `SASL_SSL` connection picks a mechanism from `sasl.enabled.mechanisms`, then runs
//! its exchange in SaslAuthenticate rounds against the users' SCRAM credentials in
//! the metadata image (`troupe_actors::auth`). Until it succeeds the connection may
//! send only ApiVersions and these two (the connection enforces it, with frames
//! capped at `sasl.server.max.receive.size`). A failed exchange is answered
//! SASL_AUTHENTICATION_FAILED — no word of whether the user exists — after a delay
//! that grows with the address's failures, and the connection then closes, as
//! Kafka's does. Re-authentication (KIP-368) is not offered: the session lifetime is
//! 0, "no limit".

use bytes::Bytes;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::auth::{SaslMechanism, SaslServer, SaslStep};
use troupe_actors::ErrorKind;

use super::{Session, Since};

/// Where a connection is in authenticating.
#[derive(Default)]
pub enum AuthState {
    /// Nothing to do (not a SASL listener), or done.
    #[default]
    Authenticated,
    /// A SASL listener's connection before its handshake.
    AwaitingHandshake,
    /// After the handshake: the exchange's SaslAuthenticate rounds.
    Exchanging(SaslServer),
    /// Failed or out of turn: the connection closes once this answer is written.
    Failed,
}

impl AuthState {
    pub fn authenticated(&self) -> bool {
        matches!(self, AuthState::Authenticated)
    }
}

fn enabled(session: &Session) -> Vec<StrBytes> {
    session
        .config
        .sasl_mechanisms
        .iter()
        .map(|m| StrBytes::from_static_str(m.name()))
        .collect()
}

pub fn handshake(session: &mut Session, request: SaslHandshakeRequest) -> SaslHandshakeResponse {
    let response = SaslHandshakeResponse::default().with_mechanisms(enabled(session));
    if !matches!(session.auth, AuthState::AwaitingHandshake) {
        log::warn!(
            "kafka: {}: SaslHandshake out of turn (not a SASL listener, or already done)",
            peer(session)
        );
        session.auth = AuthState::Failed;
        return response.with_error_code(ErrorKind::IllegalSaslState.kafka_code());
    }
    let wanted = request.mechanism.as_str();
    match SaslMechanism::parse(wanted).filter(|m| session.config.sasl_mechanisms.contains(m)) {
        Some(mechanism) => {
            session.auth = AuthState::Exchanging(SaslServer::new(mechanism));
            response
        }
        None => {
            log::warn!(
                "kafka: {}: SASL mechanism {wanted:?} is not enabled",
                peer(session)
            );
            response.with_error_code(ErrorKind::UnsupportedSaslMechanism.kafka_code())
        }
    }
}

pub async fn authenticate(
    session: &mut Session,
    request: SaslAuthenticateRequest,
    version: i16,
) -> SaslAuthenticateResponse {
    let AuthState::Exchanging(server) = &mut session.auth else {
        log::warn!(
            "kafka: {}: SaslAuthenticate before SaslHandshake",
            peer(session)
        );
        session.auth = AuthState::Failed;
        return refusal(
            ErrorKind::IllegalSaslState,
            "SaslAuthenticate before SaslHandshake",
        );
    };
    let image = session.engine.image();
    let authenticator = session.engine.authenticator.clone();
    let address = session.context.client_address.map(|a| a.ip());
    let step = server
        .step(&request.auth_bytes, &image.users, &authenticator)
        .await;
    match step {
        Ok(SaslStep::Continue(challenge)) => SaslAuthenticateResponse::default()
            .with_auth_bytes(Bytes::from(challenge))
            .since(version, 1, |r| r.with_session_lifetime_ms(0)),
        Ok(SaslStep::Done { user, message }) => {
            log::info!(
                "kafka: {} authenticated as User:{user} on {}",
                peer(session),
                session.config.listener_name
            );
            authenticator.succeeded(address);
            session.context.user = Some(user);
            session.auth = AuthState::Authenticated;
            SaslAuthenticateResponse::default()
                .with_auth_bytes(Bytes::from(message))
                .since(version, 1, |r| r.with_session_lifetime_ms(0))
        }
        Err(failure) => {
            log::warn!(
                "kafka: {}: authentication failed: {}",
                peer(session),
                failure.reason
            );
            session.auth = AuthState::Failed;
            tokio::time::sleep(authenticator.failed(address)).await;
            refusal(
                ErrorKind::SaslAuthenticationFailed,
                "authentication failed: invalid user name or password",
            )
        }
    }
}

fn refusal(kind: ErrorKind, message: &str) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(kind.kafka_code())
        .with_error_message(Some(StrBytes::from_string(message.to_string())))
}

fn peer(session: &Session) -> String {
    session
        .context
        .client_address
        .map(|a| a.to_string())
        .unwrap_or_else(|| "a client".into())
}
