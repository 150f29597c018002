//! Kafka's ACL model (`kafka.security.authorizer.AclAuthorizer`, KIP-290 patterns):
//! an ACL binds a principal (`User:alice`, `User:*`), a host (`*` or an address), an
//! operation and ALLOW or DENY to a resource pattern — a resource type (Topic, Group,
//! Cluster, TransactionalId), a name, and LITERAL (that name; `*` is every resource of
//! the type) or PREFIXED (names starting with it). [`Acls::authorize`] decides as
//! Kafka's authorizer does: super users may do anything; a matching DENY wins over
//! any ALLOW; an ALLOW of the operation, or of one that implies it (Read, Write,
//! Delete and Alter imply Describe; AlterConfigs implies DescribeConfigs; All implies
//! everything), lets it through; a resource that no ACL matches at all is allowed only
//! with `allow.everyone.if.no.acl.found`. [`AclFilter`] is Kafka's
//! `AclBindingFilter`: what DescribeAcls, DeleteAcls and the REST search take.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

macro_rules! kafka_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant,)* }

        impl $name {
            pub const ALL_VALUES: &'static [$name] = &[$($name::$variant,)*];

            /// Kafka's number for it (the wire protocol's INT8).
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code,)* }
            }

            pub fn of_code(code: i8) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// Kafka's name (`TOPIC`, `PREFIXED`, `DESCRIBE_CONFIGS`).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// From Kafka's name in any case, `-` or `_` alike (`describe-configs`).
            pub fn parse(text: &str) -> Option<$name> {
                let wanted = text.trim().to_ascii_uppercase().replace('-', "_");
                Self::ALL_VALUES.iter().copied().find(|v| v.name() == wanted)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_enum! {
    /// What an ACL is about. `Any` only in filters.
    ResourceType {
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
    }
}

kafka_enum! {
    /// How an ACL's name matches. `Any` and `Match` only in filters.
    PatternType {
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
}

kafka_enum! {
    /// What is done. `Any` only in filters.
    Operation {
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
    }
}

kafka_enum! {
    /// ALLOW or DENY. `Any` only in filters.
    Permission {
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
}

/// The name of the one cluster resource (Kafka's `kafka-cluster`).
pub const CLUSTER_RESOURCE: &str = "kafka-cluster";
/// A literal name or principal or host that matches every one.
pub const WILDCARD: &str = "*";

/// One ACL (Kafka's `AclBinding`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Acl {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `User:alice`, or `User:*` for every user.
    pub principal: String,
    /// An address, or `*` for every one.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl Acl {
    /// An ACL that can be stored: concrete type, pattern, operation and permission, a
    /// principal `Type:name`, a host that is `*` or an address, and for the cluster the
    /// cluster's name.
    pub fn check(&self) -> Result<(), String> {
        if self.resource_type == ResourceType::Any {
            return Err(
                "the resource type must be TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID".into(),
            );
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err("the pattern type must be LITERAL or PREFIXED".into());
        }
        if matches!(self.operation, Operation::Any) {
            return Err("the operation must be a concrete one (READ, WRITE, …, or ALL)".into());
        }
        if matches!(self.permission, Permission::Any) {
            return Err("the permission must be ALLOW or DENY".into());
        }
        if self.resource_name.is_empty() {
            return Err("the resource name is empty".into());
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => {
                return Err(format!(
                    "principal '{}' is not Type:name (User:alice, User:*)",
                    self.principal
                ))
            }
        }
        if self.host != WILDCARD && self.host.parse::<IpAddr>().is_err() {
            return Err(format!("host '{}' is not * or an IP address", self.host));
        }
        if self.resource_type == ResourceType::Cluster && self.resource_name != CLUSTER_RESOURCE {
            return Err(format!("the cluster resource is named {CLUSTER_RESOURCE}"));
        }
        Ok(())
    }

    /// Whether this ACL's pattern covers the resource `(kind, name)`.
    fn covers(&self, kind: ResourceType, name: &str) -> bool {
        self.resource_type == kind
            && match self.pattern_type {
                PatternType::Literal => {
                    self.resource_name == WILDCARD || self.resource_name == name
                }
                PatternType::Prefixed => name.starts_with(&self.resource_name),
                _ => false,
            }
    }

    fn applies_to(&self, principal: &str, host: Option<IpAddr>) -> bool {
        let principal_matches = self.principal == principal
            || (self.principal.ends_with(":*")
                && principal.split_once(':').map(|(k, _)| k)
                    == self.principal.split_once(':').map(|(k, _)| k));
        let host_matches = self.host == WILDCARD
            || host.is_some_and(|h| self.host.parse::<IpAddr>().ok() == Some(h));
        principal_matches && host_matches
    }
}

/// Kafka's `AclBindingFilter`: each field `None` or `Any` matches everything; a
/// pattern type of MATCH finds every ACL that would cover the named resource
/// (literal, wildcard and prefixes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern_type: Option<PatternType>,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl AclFilter {
    pub fn matches(&self, acl: &Acl) -> bool {
        let resource_type = self.resource_type.filter(|t| *t != ResourceType::Any);
        if resource_type.is_some_and(|t| t != acl.resource_type) {
            return false;
        }
        let pattern = self.pattern_type.unwrap_or(PatternType::Any);
        let names = match (&self.resource_name, pattern) {
            (None, PatternType::Any | PatternType::Match) => true,
            (None, p) => p == acl.pattern_type,
            (Some(name), PatternType::Any) => *name == acl.resource_name,
            (Some(name), PatternType::Match) => match acl.pattern_type {
                PatternType::Literal => acl.resource_name == *name || acl.resource_name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&acl.resource_name),
                _ => false,
            },
            (Some(name), p) => p == acl.pattern_type && *name == acl.resource_name,
        };
        names
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && self
                .operation
                .filter(|o| *o != Operation::Any)
                .is_none_or(|o| o == acl.operation)
            && self
                .permission
                .filter(|p| *p != Permission::Any)
                .is_none_or(|p| p == acl.permission)
    }
}

/// An operation the authorizer refused: who, what, on which resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{principal} is not authorized to {operation} {resource_type} '{name}'")]
pub struct Denied {
    pub principal: String,
    pub operation: Operation,
    pub resource_type: ResourceType,
    pub name: String,
}

impl Denied {
    /// Kafka's code for it: TOPIC_, GROUP_, CLUSTER_ or TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
    pub fn kind(&self) -> crate::error_kind::ErrorKind {
        use crate::error_kind::ErrorKind as K;
        match self.resource_type {
            ResourceType::Topic => K::TopicAuthorizationFailed,
            ResourceType::Group => K::GroupAuthorizationFailed,
            ResourceType::TransactionalId => K::TransactionalIdAuthorizationFailed,
            ResourceType::Cluster | ResourceType::Any => K::ClusterAuthorizationFailed,
        }
    }
}

/// How the authorizer decides beyond the ACLs (`super.users`,
/// `allow.everyone.if.no.acl.found`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// Principals (`User:admin`) allowed everything.
    pub super_users: Vec<String>,
    pub allow_if_no_acl: bool,
}

impl AuthorizerConfig {
    fn is_super(&self, who: Asker<'_>) -> bool {
        self.super_users.iter().any(|s| s == who.principal)
    }
}

/// Who asks the authorizer: a principal (`User:alice`) from an address, if known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asker<'a> {
    pub principal: &'a str,
    pub host: Option<IpAddr>,
}

/// The operations an ALLOW of `granted` lets through.
fn implies(granted: Operation, wanted: Operation) -> bool {
    granted == wanted
        || granted == Operation::All
        || (wanted == Operation::Describe
            && matches!(
                granted,
                Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
            ))
        || (wanted == Operation::DescribeConfigs && granted == Operation::AlterConfigs)
}

/// Every ACL of the cluster, and the decisions over them.
pub trait Acls {
    fn acls(&self) -> &[Acl];

    /// The ACLs whose pattern covers `(kind, name)`.
    fn covering<'a>(
        &'a self,
        kind: ResourceType,
        name: &'a str,
    ) -> Box<dyn Iterator<Item = &'a Acl> + 'a> {
        Box::new(self.acls().iter().filter(move |a| a.covers(kind, name)))
    }

    /// Whether `who` may do `operation` on `(kind, name)`.
    fn authorize(
        &self,
        config: &AuthorizerConfig,
        who: Asker<'_>,
        operation: Operation,
        kind: ResourceType,
        name: &str,
    ) -> bool {
        if config.is_super(who) {
            return true;
        }
        let mut any = false;
        let mut allowed = false;
        for acl in self.covering(kind, name) {
            any = true;
            if !acl.applies_to(who.principal, who.host) {
                continue;
            }
            match acl.permission {
                Permission::Deny
                    if acl.operation == operation || acl.operation == Operation::All =>
                {
                    return false;
                }
                Permission::Allow if implies(acl.operation, operation) => allowed = true,
                _ => {}
            }
        }
        allowed || (!any && config.allow_if_no_acl)
    }

    /// Whether `principal` may do `operation` on some resource of type `kind`
    /// (Kafka's `authorizeByResourceType`): an ALLOW of it whose own resource is
    /// not denied, or no ACL of the type at all with `allow.everyone.if.no.acl.found`.
    fn authorize_any(
        &self,
        config: &AuthorizerConfig,
        who: Asker<'_>,
        operation: Operation,
        kind: ResourceType,
    ) -> bool {
        let of_kind = || self.acls().iter().filter(|a| a.resource_type == kind);
        if config.is_super(who) || (config.allow_if_no_acl && of_kind().next().is_none()) {
            return true;
        }
        of_kind().any(|acl| {
            acl.permission == Permission::Allow
                && implies(acl.operation, operation)
                && acl.applies_to(who.principal, who.host)
                && self.authorize(config, who, operation, kind, &acl.resource_name)
        })
    }
}

/// The cluster's ACLs as the metadata image holds them: each with its id, indexed by
/// the resource they cover so a decision reads only the ACLs that may apply (a
/// literal name's, the type's wildcard, and the prefixed ones), however many there are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclTable {
    pub ids: Vec<String>,
    pub acls: Vec<Acl>,
    /// Type → literal name → positions in `acls` (the wildcard `*` is a name here).
    literal: HashMap<ResourceType, HashMap<String, Vec<usize>>>,
    /// Positions of PREFIXED ACLs.
    prefixed: Vec<usize>,
}

impl AclTable {
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (&'a String, &'a Acl)>) -> AclTable {
        let (ids, acls): (Vec<String>, Vec<Acl>) = entries
            .into_iter()
            .map(|(id, acl)| (id.clone(), acl.clone()))
            .unzip();
        let mut literal: HashMap<ResourceType, HashMap<String, Vec<usize>>> = HashMap::new();
        let mut prefixed = Vec::new();
        for (i, acl) in acls.iter().enumerate() {
            match acl.pattern_type {
                PatternType::Prefixed => prefixed.push(i),
                _ => literal
                    .entry(acl.resource_type)
                    .or_default()
                    .entry(acl.resource_name.clone())
                    .or_default()
                    .push(i),
            }
        }
        AclTable {
            ids,
            acls,
            literal,
            prefixed,
        }
    }

    /// The ACLs `filter` matches, with their ids.
    pub fn matching<'a>(
        &'a self,
        filter: &'a AclFilter,
    ) -> impl Iterator<Item = (&'a String, &'a Acl)> + 'a {
        self.ids
            .iter()
            .zip(&self.acls)
            .filter(move |(_, acl)| filter.matches(acl))
    }
}

impl Acls for AclTable {
    fn acls(&self) -> &[Acl] {
        &self.acls
    }

    fn covering<'a>(
        &'a self,
        kind: ResourceType,
        name: &'a str,
    ) -> Box<dyn Iterator<Item = &'a Acl> + 'a> {
        let literal = |n: &str| {
            self.literal
                .get(&kind)
                .and_then(|names| names.get(n))
                .into_iter()
                .flatten()
        };
        let wildcard = (name != WILDCARD)
            .then(|| literal(WILDCARD))
            .into_iter()
            .flatten();
        let named = literal(name).chain(wildcard);
        Box::new(
            named
                .chain(self.prefixed.iter())
                .map(|&i| &self.acls[i])
                .filter(move |acl| acl.covers(kind, name)),
        )
    }
}

impl Acls for [Acl] {
    fn acls(&self) -> &[Acl] {
        self
    }
}

impl Acls for Vec<Acl> {
    fn acls(&self) -> &[Acl] {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by(principal: &str) -> Asker<'_> {
        Asker {
            principal,
            host: None,
        }
    }

    fn acl(
        kind: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        operation: Operation,
        permission: Permission,
    ) -> Acl {
        Acl {
            resource_type: kind,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission,
        }
    }

    use Operation as O;
    use PatternType as P;
    use Permission as A;
    use ResourceType as R;

    #[test]
    fn deny_wins_prefixes_match_and_operations_imply_describe() {
        let acls = vec![
            acl(
                R::Topic,
                "orders",
                P::Literal,
                "User:alice",
                O::Read,
                A::Allow,
            ),
            acl(
                R::Topic,
                "pay-",
                P::Prefixed,
                "User:alice",
                O::Write,
                A::Allow,
            ),
            acl(
                R::Topic,
                "pay-secret",
                P::Literal,
                "User:alice",
                O::All,
                A::Deny,
            ),
            acl(R::Topic, "*", P::Literal, "User:*", O::Describe, A::Allow),
            acl(R::Group, "g", P::Literal, "User:bob", O::Read, A::Allow),
        ];
        let config = AuthorizerConfig::default();
        let may =
            |who: &str, op, kind, name: &str| acls.authorize(&config, by(who), op, kind, name);
        assert!(may("User:alice", O::Read, R::Topic, "orders"));
        assert!(!may("User:alice", O::Write, R::Topic, "orders"));
        assert!(
            may("User:alice", O::Describe, R::Topic, "orders"),
            "Read implies Describe"
        );
        assert!(may("User:alice", O::Write, R::Topic, "pay-in"), "prefixed");
        assert!(
            !may("User:alice", O::Write, R::Topic, "pay-secret"),
            "DENY wins"
        );
        assert!(
            !may("User:alice", O::Describe, R::Topic, "pay-secret"),
            "DENY All covers Describe"
        );
        assert!(
            may("User:carol", O::Describe, R::Topic, "anything"),
            "User:* and the * name"
        );
        assert!(!may("User:carol", O::Read, R::Topic, "orders"));
        assert!(may("User:bob", O::Read, R::Group, "g"));
        assert!(
            !may("User:bob", O::Read, R::Group, "h"),
            "no ACL found: denied by default"
        );
        // The image's indexed table decides exactly as the plain list does.
        let ids: Vec<String> = (0..acls.len()).map(|i| i.to_string()).collect();
        let table = AclTable::from_entries(ids.iter().zip(&acls));
        for who in ["User:alice", "User:bob", "User:carol"] {
            for &op in Operation::ALL_VALUES {
                for kind in [R::Topic, R::Group] {
                    for name in ["orders", "pay-in", "pay-secret", "pay-", "g", "h", "*"] {
                        assert_eq!(
                            table.authorize(&config, by(who), op, kind, name),
                            acls.authorize(&config, by(who), op, kind, name),
                            "{who} {op} {kind} {name}"
                        );
                    }
                }
            }
        }
        let open = AuthorizerConfig {
            allow_if_no_acl: true,
            ..Default::default()
        };
        assert!(acls.authorize(&open, by("User:bob"), O::Read, R::Group, "h"));
        // A resource with ACLs follows them, whatever the default.
        assert!(acls.authorize(&open, by("User:bob"), O::Read, R::Group, "g"));
        assert!(!acls.authorize(&open, by("User:carol"), O::Read, R::Group, "g"));
        let supers = AuthorizerConfig {
            super_users: vec!["User:root".into()],
            ..Default::default()
        };
        assert!(acls.authorize(&supers, by("User:root"), O::Write, R::Topic, "pay-secret"));
    }

    #[test]
    fn hosts_and_alter_configs_implying_describe_configs() {
        let mut only_here = acl(
            R::Cluster,
            CLUSTER_RESOURCE,
            P::Literal,
            "User:ops",
            O::AlterConfigs,
            A::Allow,
        );
        only_here.host = "10.0.0.5".into();
        let acls = vec![only_here];
        let config = AuthorizerConfig::default();
        let here: IpAddr = "10.0.0.5".parse().unwrap();
        let there: IpAddr = "10.0.0.6".parse().unwrap();
        let may = |host, op| {
            acls.authorize(
                &config,
                Asker {
                    principal: "User:ops",
                    host: Some(host),
                },
                op,
                R::Cluster,
                CLUSTER_RESOURCE,
            )
        };
        assert!(may(here, O::AlterConfigs));
        assert!(may(here, O::DescribeConfigs));
        assert!(!may(here, O::Describe));
        assert!(!may(there, O::AlterConfigs));
    }

    #[test]
    fn filters_find_what_kafka_finds_and_bad_acls_are_refused() {
        let acls = [
            acl(
                R::Topic,
                "orders",
                P::Literal,
                "User:alice",
                O::Read,
                A::Allow,
            ),
            acl(R::Topic, "ord", P::Prefixed, "User:bob", O::Write, A::Allow),
            acl(R::Topic, "*", P::Literal, "User:*", O::Describe, A::Allow),
            acl(
                R::Group,
                "orders",
                P::Literal,
                "User:alice",
                O::Read,
                A::Allow,
            ),
        ];
        let count = |f: AclFilter| acls.iter().filter(|a| f.matches(a)).count();
        assert_eq!(count(AclFilter::default()), 4);
        assert_eq!(
            count(AclFilter {
                resource_type: Some(R::Topic),
                ..Default::default()
            }),
            3
        );
        assert_eq!(
            count(AclFilter {
                resource_type: Some(R::Topic),
                resource_name: Some("orders".into()),
                pattern_type: Some(P::Match),
                ..Default::default()
            }),
            3,
            "literal, prefix and wildcard all cover orders"
        );
        assert_eq!(
            count(AclFilter {
                resource_name: Some("orders".into()),
                ..Default::default()
            }),
            2,
            "ANY pattern: exactly that name"
        );
        assert_eq!(
            count(AclFilter {
                pattern_type: Some(P::Prefixed),
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            count(AclFilter {
                principal: Some("User:alice".into()),
                operation: Some(O::Read),
                permission: Some(A::Allow),
                ..Default::default()
            }),
            2
        );
        let good = acl(R::Topic, "t", P::Literal, "User:a", O::Read, A::Allow);
        assert!(good.check().is_ok());
        for bad in [
            Acl {
                resource_type: R::Any,
                ..good.clone()
            },
            Acl {
                pattern_type: P::Match,
                ..good.clone()
            },
            Acl {
                operation: O::Any,
                ..good.clone()
            },
            Acl {
                permission: A::Any,
                ..good.clone()
            },
            Acl {
                principal: "alice".into(),
                ..good.clone()
            },
            Acl {
                host: "example.com".into(),
                ..good.clone()
            },
            Acl {
                resource_type: R::Cluster,
                ..good.clone()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        assert_eq!(
            Operation::parse("describe-configs"),
            Some(O::DescribeConfigs)
        );
        assert_eq!(Operation::of_code(8), Some(O::Describe));
        assert_eq!(ResourceType::Topic.code(), 2);
        assert_eq!(serde_json::to_string(&P::Prefixed).unwrap(), "\"PREFIXED\"");
    }
}
