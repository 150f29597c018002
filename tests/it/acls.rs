//! ACLs in the cluster metadata (issue 16), managed over Confluent v3's ACL API:
//! created one at a time and in batches, searched with Kafka's filters (MATCH
//! included), refused when malformed, deleted by filter, and kept across a restart.
//! (Enforcement on every path comes with the authorizer's wiring.)

use serde_json::{json, Value};

use crate::broker::{delete, get, post_json, TestBroker};

fn acl(kind: &str, name: &str, pattern: &str, principal: &str, op: &str, perm: &str) -> Value {
    json!({"resource_type": kind, "resource_name": name, "pattern_type": pattern,
           "principal": principal, "host": "*", "operation": op, "permission": perm})
}

fn found(b: &TestBroker, query: &str) -> Vec<(String, String, String, String)> {
    let (status, body) = get(&b.v3(&format!("/acls{query}")));
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<_> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["resource_name"].as_str().unwrap().to_string(),
                a["principal"].as_str().unwrap().to_string(),
                a["operation"].as_str().unwrap().to_string(),
                a["permission"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn acls_are_created_searched_deleted_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let (status, body) = post_json(
        &b.v3("/acls"),
        &acl("TOPIC", "orders", "LITERAL", "User:alice", "READ", "ALLOW"),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = post_json(
        &b.v3("/acls:batch"),
        &json!({"data": [
            acl("topic", "ord", "prefixed", "User:bob", "write", "allow"),
            acl("TOPIC", "*", "LITERAL", "User:*", "DESCRIBE", "ALLOW"),
            acl("GROUP", "billing", "LITERAL", "User:alice", "READ", "ALLOW"),
            acl("TOPIC", "orders", "LITERAL", "User:mallory", "ALL", "DENY"),
            acl("CLUSTER", "kafka-cluster", "LITERAL", "User:ops", "ALTER_CONFIGS", "ALLOW"),
        ]}),
    );
    assert_eq!(status, 204, "{body}");
    // The same ACL again changes nothing.
    let (status, _) = post_json(
        &b.v3("/acls"),
        &acl("TOPIC", "orders", "LITERAL", "User:alice", "READ", "ALLOW"),
    );
    assert_eq!(status, 201);
    assert_eq!(found(&b, "").len(), 6);

    // Refusals: each names what is wrong, and nothing is stored.
    for (bad, why) in [
        (
            acl("TOPIC", "t", "LITERAL", "User:a", "FLY", "ALLOW"),
            "not a operation",
        ),
        (
            acl("TOPIC", "t", "MATCH", "User:a", "READ", "ALLOW"),
            "LITERAL or PREFIXED",
        ),
        (
            acl("TOPIC", "t", "LITERAL", "alice", "READ", "ALLOW"),
            "Type:name",
        ),
        (
            acl("CLUSTER", "mine", "LITERAL", "User:a", "ALTER", "ALLOW"),
            "kafka-cluster",
        ),
        (json!({"resource_type": "TOPIC"}), "missing field"),
    ] {
        let (status, body) = post_json(&b.v3("/acls"), &bad);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["message"].as_str().unwrap_or("").contains(why),
            "{bad}: {body}"
        );
    }
    let mut host = acl("TOPIC", "t", "LITERAL", "User:a", "READ", "ALLOW");
    host["host"] = json!("example.com");
    assert_eq!(post_json(&b.v3("/acls"), &host).0, 400);
    assert_eq!(found(&b, "").len(), 6);

    // Kafka's filters.
    assert_eq!(found(&b, "?principal=User:alice").len(), 2);
    assert_eq!(found(&b, "?resource_type=GROUP").len(), 1);
    let covering = found(
        &b,
        "?resource_type=TOPIC&resource_name=orders&pattern_type=MATCH",
    );
    let mut principals: Vec<&str> = covering.iter().map(|a| a.1.as_str()).collect();
    principals.sort();
    assert_eq!(
        principals,
        ["User:*", "User:alice", "User:bob", "User:mallory"],
        "literal, wildcard and prefix ACLs all cover orders"
    );
    assert_eq!(found(&b, "?permission=DENY").len(), 1);
    let (status, _) = get(&b.v3("/acls?operation=FLY"));
    assert_eq!(status, 400);
    let (status, _) = get(&b.v3("/acls?colour=red"));
    assert_eq!(status, 400);

    // Deleting: resource_type required; the answer lists what went.
    let (status, _) = delete(&b.v3("/acls?principal=User:alice"));
    assert_eq!(status, 400);
    let (status, deleted) = delete(&b.v3("/acls?resource_type=ANY&principal=User:alice"));
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["data"].as_array().unwrap().len(), 2);
    assert_eq!(found(&b, "").len(), 4);
    assert!(found(&b, "?principal=User:alice").is_empty());

    b.stop();
    let b = TestBroker::start(dir.path());
    assert_eq!(
        found(&b, "").len(),
        4,
        "ACLs are metadata: they survive a restart"
    );
    assert_eq!(found(&b, "?permission=DENY")[0].1, "User:mallory");
}

/// Kafka's ACL APIs, through confluent-kafka's AdminClient (what `kafka-acls.sh`
/// does): create, describe with filters, delete; REST sees the same ACLs.
#[test]
fn kafka_admin_clients_create_describe_and_delete_acls() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let out = crate::kafka::python(
        &b,
        r#"
from confluent_kafka.admin import (AdminClient, AclBinding, AclBindingFilter, ResourceType,
    ResourcePatternType, AclOperation, AclPermissionType)
a = AdminClient({'bootstrap.servers': BOOTSTRAP})
bindings = [
    AclBinding(ResourceType.TOPIC, 'orders', ResourcePatternType.LITERAL, 'User:alice', '*',
               AclOperation.READ, AclPermissionType.ALLOW),
    AclBinding(ResourceType.TOPIC, 'pay-', ResourcePatternType.PREFIXED, 'User:bob', '*',
               AclOperation.WRITE, AclPermissionType.ALLOW),
    AclBinding(ResourceType.GROUP, 'billing', ResourcePatternType.LITERAL, 'User:alice', '10.0.0.1',
               AclOperation.READ, AclPermissionType.DENY),
]
created = {str(b.name): (f.result(30) is None) for b, f in a.create_acls(bindings).items()}
every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                         AclOperation.ANY, AclPermissionType.ANY)
described = sorted([b.name, b.principal, b.host, b.operation.name, b.permission_type.name]
                   for b in a.describe_acls(every).result(30))
alice = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, 'User:alice', None,
                         AclOperation.ANY, AclPermissionType.ANY)
deleted = {}
for f, fut in a.delete_acls([alice]).items():
    deleted = sorted(b.name for b in fut.result(30))
left = sorted(b.name for b in a.describe_acls(every).result(30))
print(json.dumps({'created': created, 'described': described, 'deleted': deleted, 'left': left}))
"#,
    );
    assert_eq!(
        out["created"],
        json!({"orders": true, "pay-": true, "billing": true}),
        "{out}"
    );
    assert_eq!(
        out["described"],
        json!([
            ["billing", "User:alice", "10.0.0.1", "READ", "DENY"],
            ["orders", "User:alice", "*", "READ", "ALLOW"],
            ["pay-", "User:bob", "*", "WRITE", "ALLOW"]
        ]),
        "{out}"
    );
    assert_eq!(out["deleted"], json!(["billing", "orders"]), "{out}");
    assert_eq!(out["left"], json!(["pay-"]), "{out}");
    let rest = found(&b, "");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].0, "pay-");
}

/// `troupe acls`, as `kafka-acls.sh` is used: add for two principals and two
/// operations, list what covers a topic, remove by principal.
#[test]
fn troupe_acls_adds_lists_and_removes() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let troupe = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_troupe"))
            .args(["--bootstrap-server", &b.url("")])
            .args(["acls"])
            .args(args)
            .output()
            .expect("troupe runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = troupe(&[
        "add",
        "--allow-principal",
        "User:alice",
        "--allow-principal",
        "User:bob",
        "--operation",
        "Read",
        "--operation",
        "Describe",
        "--topic",
        "orders",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("Added 4 ACL(s)"), "{out}");
    let (code, _, err) = troupe(&[
        "add",
        "--deny-principal",
        "User:mallory",
        "--operation",
        "All",
        "--topic",
        "ord",
        "--resource-pattern-type",
        "prefixed",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (_, listed, _) = troupe(&["list", "--topic", "orders"]);
    assert_eq!(listed.lines().count(), 1 + 5, "{listed}");
    assert!(
        listed.contains("User:mallory") && listed.contains("PREFIXED"),
        "{listed}"
    );
    let (code, _, err) = troupe(&[
        "add",
        "--allow-principal",
        "User:x",
        "--operation",
        "Fly",
        "--topic",
        "t",
    ]);
    assert_eq!(code, Some(1), "{err}");
    let (code, _, err) = troupe(&["remove"]);
    assert_eq!(code, Some(4), "{err}");
    let (code, out, _) = troupe(&["remove", "--principal", "User:bob"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Removed 2 ACL(s)"), "{out}");
    assert_eq!(found(&b, "").len(), 3);
}
