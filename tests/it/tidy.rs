//! The architecture's invariants, checked on the source tree (as rust-analyzer's
//! `tidy` test does), so that one slipping breaks the build rather than going
//! unnoticed. `docs/ARCHITECTURE.md` states them; each check here is a function over
//! file paths and texts, and the `*_can_fail` tests feed it a breach to show it fails.
//!
//! - Every source file opens with a module doc comment (`//!`): what it is and why.
//! - Dependencies point one way: `troupe` → `troupe-web` and `troupe-kafka` →
//!   `troupe-actors`, and the engine takes only the crates listed in [`ENGINE_CRATES`].
//!   The two listeners never depend on, or import, one another.
//! - `actors/src/storage/` uses no actix and no other engine module.
//! - Web adapters (`v2`, `v3`, `ws`, `dashboard`) never import one another, and the
//!   web crate's top-level modules import each other in no circle.
//! - Web and Kafka-listener code reaches actors only through the request layer: no
//!   file of theirs names an actor message (a type deriving actix's `Message`) or
//!   glob-imports an engine module.
//! - Test hooks (`InjectPanic`, `Crash`, `PanicInHandler`) exist only under
//!   `cfg(test)` or the `test-support` feature.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The engine's dependencies, and why each is there. `serde_json` is deliberate: the
/// topic registry (`topics.json`) is JSON, which operators can read; record formats
/// on disk are Kafka's binary ones.
const ENGINE_CRATES: &[&str] = &[
    "crc32fast",      // CRC-32 of the v0/v1 message sets old clients send
    "crc32c",         // CRC-32C of record batches v2 (Kafka's)
    "flate2",         // gzip record batches
    "snap",           // snappy record batches
    "lz4",            // lz4 record batches
    "zstd",           // zstd record batches
    "memmap2",        // offset and time indexes
    "libc",           // RLIMIT_NOFILE, posix_fallocate, sync_file_range
    "thiserror",      // error enums
    "log",            // logging
    "actix",          // actors
    "tokio",          // watch channels, broadcast, spawn_blocking
    "futures",        // joining answers
    "serde",          // topics.json
    "serde_json",     // topics.json
    "uuid",           // topic and cluster ids
    "regex",          // pattern subscriptions
    "bytes",          // pooled read buffers shared with the listeners (storage/buffers.rs)
    "kafka-protocol", // requests to other brokers (peer_client.rs)
    "openraft",       // Raft for the metadata quorum, Kafka's KRaft (controller/quorum)
    "rustls",         // TLS to other brokers and voters (peer_client.rs, controller/quorum)
    "tokio-rustls",   // the same, on tokio streams (peer_client.rs)
    "ureq",           // the quorum's HTTP transport: a blocking, `Send` client (awc is not `Send`)
    "hmac",           // SCRAM's HMAC (auth/scram.rs)
    "sha2",           // SCRAM-SHA-256/512
    "pbkdf2",         // SCRAM's salted password (Hi)
    "getrandom",      // SCRAM salts and nonces
    "base64",         // SCRAM's messages carry base64
    "x509-cert",      // a TLS client certificate's subject, the principal of mutual TLS
];

const ADAPTERS: &[&str] = &["v2", "v3", "ws", "dashboard"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir` (relative to the repository), with its text.
fn sources(dir: &str) -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&root().join(dir), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let rel = p
                .strip_prefix(root())
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            (rel, text)
        })
        .collect()
}

/// The `crate::x` (and `crate::{x, y}`) top-level names a file refers to.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for name in group[..end].split(',') {
                let name: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    refs.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                refs.insert(name);
            }
        }
    }
    refs
}

/// The text with `//` comments dropped, so prose naming a module is not an import.
fn code_only(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn check_module_docs(files: &[(String, String)]) -> Vec<String> {
    files
        .iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(path, _)| format!("{path}: no module doc comment (//!) at the top"))
        .collect()
}

fn check_storage_is_plain(files: &[(String, String)]) -> Vec<String> {
    let mut breaches = Vec::new();
    for (path, text) in files {
        if !path.starts_with("actors/src/storage/") {
            continue;
        }
        let code = code_only(text);
        if code.contains("actix") {
            breaches.push(format!("{path}: storage uses actix"));
        }
        for r in crate_refs(&code) {
            if r != "storage" {
                breaches.push(format!("{path}: storage imports crate::{r}"));
            }
        }
    }
    breaches
}

/// The web module a path belongs to at the top level (`web/src/v3/records.rs` → `v3`).
fn web_module(path: &str) -> Option<String> {
    let rest = path.strip_prefix("web/src/")?;
    let top = rest.split('/').next()?;
    let name = top.strip_suffix(".rs").unwrap_or(top);
    (name != "lib").then(|| name.to_string())
}

fn check_adapters_apart(files: &[(String, String)]) -> Vec<String> {
    let mut breaches = Vec::new();
    for (path, text) in files {
        let Some(module) = web_module(path) else {
            continue;
        };
        if !ADAPTERS.contains(&module.as_str()) {
            continue;
        }
        for r in crate_refs(&code_only(text)) {
            if r != module && ADAPTERS.contains(&r.as_str()) {
                breaches.push(format!("{path}: adapter {module} imports adapter {r}"));
            }
        }
    }
    breaches
}

/// Circles among the web crate's top-level modules, each as its members.
fn web_import_circles(files: &[(String, String)]) -> Vec<Vec<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, _) in files {
        if let Some(m) = web_module(path) {
            graph.entry(m).or_default();
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for (path, text) in files {
        if let Some(m) = web_module(path) {
            let refs = crate_refs(&code_only(text));
            let edges = graph.entry(m.clone()).or_default();
            edges.extend(refs.into_iter().filter(|r| *r != m && modules.contains(r)));
        }
    }
    // A module is in a circle when it can reach itself; group modules that reach each other.
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = graph[from].iter().cloned().collect();
        while let Some(m) = todo.pop() {
            if seen.insert(m.clone()) {
                todo.extend(graph[&m].iter().cloned());
            }
        }
        seen
    };
    let reaches: BTreeMap<String, BTreeSet<String>> =
        modules.iter().map(|m| (m.clone(), reach(m))).collect();
    let mut circles: Vec<Vec<String>> = Vec::new();
    for m in &modules {
        if !reaches[m].contains(m) || circles.iter().any(|c| c.contains(m)) {
            continue;
        }
        let circle = modules
            .iter()
            .filter(|o| reaches[m].contains(*o) && reaches[*o].contains(m))
            .cloned()
            .collect();
        circles.push(circle);
    }
    circles
}

/// The names of the engine's actor messages: types deriving actix's `Message`.
fn actor_messages(files: &[(String, String)]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (_, text) in files {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !(line.contains("#[derive(") && line.contains("Message")) {
                continue;
            }
            let Some(def) = lines[i + 1..].iter().take(4).find_map(|l| {
                l.trim_start()
                    .strip_prefix("pub struct ")
                    .or(l.trim_start().strip_prefix("pub enum "))
            }) else {
                continue;
            };
            let name: String = def
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

/// The identifiers a file takes from `troupe_actors`, by `use` (groups included) or by
/// a full path in the code.
fn engine_imports(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("troupe_actors::") {
        rest = &rest[at..];
        // The path: identifiers and `::`, and a `{…}` group right after a `::`.
        let mut end = 0;
        let bytes = rest.as_bytes();
        while end < bytes.len() {
            let c = bytes[end] as char;
            if c.is_alphanumeric() || c == '_' || c == ':' || c == '*' {
                end += 1;
            } else if c == '{' && rest[..end].ends_with("::") {
                end += rest[end..].find('}').map_or(rest.len() - end, |i| i + 1);
            } else {
                break;
            }
        }
        let path = &rest[..end];
        if path.contains('*') {
            // A glob takes every message of the module with it.
            names.insert("*".to_string());
        }
        for word in path.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if !word.is_empty() {
                names.insert(word.to_string());
            }
        }
        rest = &rest["troupe_actors::".len()..];
    }
    names
}

/// The protocol adapters' source trees: each a translator over the request layer.
const LISTENERS: &[&str] = &["web/src/", "kafka/src/"];

fn check_adapters_reach_actors_through_requests(
    files: &[(String, String)],
    messages: &BTreeSet<String>,
) -> Vec<String> {
    let mut breaches = Vec::new();
    for (path, text) in files {
        if !LISTENERS.iter().any(|l| path.starts_with(l)) {
            continue;
        }
        let imported = engine_imports(&code_only(text));
        let mut sent: Vec<&str> = messages
            .intersection(&imported)
            .map(String::as_str)
            .collect();
        if imported.contains("*") {
            sent.push("(a glob import)");
        }
        if !sent.is_empty() {
            breaches.push(format!(
                "{path}: names actor messages {sent:?}; go through troupe_actors::requests"
            ));
        }
    }
    breaches
}

/// `[dependencies]` names of a Cargo.toml text.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut deps = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once('=') {
                let name = name.trim();
                let name = name.split('.').next().unwrap_or(name);
                deps.push(name.to_string());
            }
        }
    }
    deps
}

/// The web crate and the Kafka listener never import one another's code.
fn check_listeners_apart(files: &[(String, String)]) -> Vec<String> {
    let mut breaches = Vec::new();
    for (path, text) in files {
        let code = code_only(text);
        if path.starts_with("web/src/") && code.contains("troupe_kafka") {
            breaches.push(format!("{path}: the web crate imports the Kafka listener"));
        }
        if path.starts_with("kafka/src/") && code.contains("troupe_web") {
            breaches.push(format!("{path}: the Kafka listener imports the web crate"));
        }
    }
    breaches
}

/// The crates' manifests, for [`check_dependency_direction`].
struct Manifests<'a> {
    actors: &'a str,
    web: &'a str,
    kafka: &'a str,
}

fn check_dependency_direction(m: &Manifests) -> Vec<String> {
    let mut breaches = Vec::new();
    for dep in dependencies(m.actors) {
        if !ENGINE_CRATES.contains(&dep.as_str()) {
            breaches.push(format!(
                "troupe-actors depends on {dep}, which ENGINE_CRATES does not list"
            ));
        }
    }
    let listeners = [("troupe-web", m.web), ("troupe-kafka", m.kafka)];
    for (name, manifest) in listeners {
        for dep in dependencies(manifest) {
            let upward = dep == "troupe";
            let sideways = dep.starts_with("troupe-") && dep != "troupe-actors";
            if upward || sideways {
                breaches.push(format!("{name} depends on {dep}"));
            }
        }
    }
    breaches
}

/// Test hooks must sit behind `cfg(test)` or the `test-support` feature: the line
/// before each hook's definition says so.
fn check_test_hooks(files: &[(String, String)]) -> Vec<String> {
    let mut breaches = Vec::new();
    for (path, text) in files {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let defines = [
                "pub struct InjectPanic",
                "pub struct Crash",
                "pub struct PanicInHandler",
            ]
            .iter()
            .any(|d| line.trim_start().starts_with(d));
            if !defines {
                continue;
            }
            let gated = lines[..i].iter().rev().take(6).any(|l| {
                l.contains("#[cfg(") && (l.contains("test-support") || l.contains("test"))
            });
            if !gated {
                breaches.push(format!(
                    "{path}:{}: test hook outside cfg(test) / feature \"test-support\"",
                    i + 1
                ));
            }
        }
    }
    breaches
}

fn all_sources() -> Vec<(String, String)> {
    ["src", "web/src", "kafka/src", "actors/src"]
        .iter()
        .flat_map(|d| sources(d))
        .collect()
}

fn assert_none(breaches: Vec<String>) {
    assert!(breaches.is_empty(), "{}", breaches.join("\n"));
}

#[test]
fn every_source_file_says_what_it_is() {
    assert_none(check_module_docs(&all_sources()));
}

#[test]
fn storage_has_no_actors_and_no_engine_imports() {
    assert_none(check_storage_is_plain(&sources("actors/src")));
}

#[test]
fn adapters_never_import_adapters_and_web_modules_form_no_circle() {
    let web = sources("web/src");
    assert_none(check_adapters_apart(&web));
    let circles = web_import_circles(&web);
    assert!(circles.is_empty(), "import circles: {circles:?}");
}

#[test]
fn listeners_reach_actors_only_through_the_request_layer() {
    let messages = actor_messages(&sources("actors/src"));
    assert!(
        messages.contains("CreateTopic") && messages.contains("Append"),
        "the message scan finds the engine's messages: {messages:?}"
    );
    let listeners: Vec<_> = ["web/src", "kafka/src"]
        .iter()
        .flat_map(|d| sources(d))
        .collect();
    assert!(
        listeners.iter().any(|(p, _)| p.starts_with("kafka/src/")),
        "the Kafka listener's files are read"
    );
    assert_none(check_adapters_reach_actors_through_requests(
        &listeners, &messages,
    ));
    assert_none(check_listeners_apart(&listeners));
}

#[test]
fn test_hooks_are_test_only() {
    assert_none(check_test_hooks(&all_sources()));
}

#[test]
fn dependencies_point_one_way() {
    let read =
        |p: &str| std::fs::read_to_string(root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_none(check_dependency_direction(&Manifests {
        actors: &read("actors/Cargo.toml"),
        web: &read("web/Cargo.toml"),
        kafka: &read("kafka/Cargo.toml"),
    }));
}

/// Each check, fed a breach, reports it: the tidy test can fail.
#[test]
fn each_check_can_fail() {
    let file = |p: &str, t: &str| vec![(p.to_string(), t.to_string())];
    assert_eq!(check_module_docs(&file("src/x.rs", "use a;\n")).len(), 1);
    assert!(check_module_docs(&file("src/x.rs", "//! What x is.\n")).is_empty());
    assert_eq!(
        check_storage_is_plain(&file(
            "actors/src/storage/x.rs",
            "//! x\nuse actix::Addr;\nuse crate::broker::Broker;\n"
        ))
        .len(),
        2
    );
    assert!(check_storage_is_plain(&file(
        "actors/src/storage/x.rs",
        "//! x, unlike actix\nuse crate::storage::Log;\nuse super::y;\n"
    ))
    .is_empty());
    assert_eq!(
        check_adapters_apart(&file(
            "web/src/ws/session.rs",
            "use crate::v3::records::x;\n"
        ))
        .len(),
        1
    );
    assert!(check_adapters_apart(&file("web/src/ws/session.rs", "use crate::ws::x;\n")).is_empty());
    let circle = vec![
        (
            "web/src/state.rs".to_string(),
            "use crate::ws::Hub;".to_string(),
        ),
        (
            "web/src/ws/mod.rs".to_string(),
            "use crate::{error, state::AppState};".to_string(),
        ),
        ("web/src/error.rs".to_string(), String::new()),
    ];
    assert_eq!(
        web_import_circles(&circle),
        vec![vec!["state".to_string(), "ws".to_string()]]
    );
    let messages = actor_messages(&file(
        "actors/src/broker/messages.rs",
        "//! m\n#[derive(Message, Debug)]\n#[rtype(result = \"()\")]\npub struct CreateTopic {}\n",
    ));
    assert_eq!(messages, BTreeSet::from(["CreateTopic".to_string()]));
    assert_eq!(
        check_adapters_reach_actors_through_requests(
            &file(
                "web/src/new.rs",
                "use troupe_actors::broker::CreateTopic;\n"
            ),
            &messages
        )
        .len(),
        1
    );
    assert_eq!(
        check_adapters_reach_actors_through_requests(
            &file(
                "kafka/src/apis/new.rs",
                "use troupe_actors::{broker::CreateTopic, requests::topics};\n"
            ),
            &messages
        )
        .len(),
        1,
        "the Kafka listener too"
    );
    assert_eq!(
        check_adapters_reach_actors_through_requests(
            &file("web/src/new.rs", "use troupe_actors::consumer::*;\n"),
            &messages
        )
        .len(),
        1,
        "a glob import counts"
    );
    assert!(check_adapters_reach_actors_through_requests(
        &file(
            "web/src/new.rs",
            "// CreateTopic is sent elsewhere\nlet CreateTopics = 1;\n"
        ),
        &messages
    )
    .is_empty());
    assert_eq!(
        check_dependency_direction(&Manifests {
            actors: "[dependencies]\nactix.workspace = true\nreqwest = \"1\"\n",
            web: "[dependencies]\ntroupe = { path = \"..\" }\n",
            kafka: "[dependencies]\ntroupe-actors = { path = \"../actors\" }\ntroupe-web = { path = \"../web\" }\n",
        })
        .len(),
        3
    );
    assert_eq!(
        check_listeners_apart(&[
            (
                "web/src/x.rs".to_string(),
                "use troupe_kafka::apis;\n".to_string()
            ),
            (
                "kafka/src/x.rs".to_string(),
                "// unlike troupe_web\nuse troupe_web::state::AppState;\n".to_string()
            ),
        ])
        .len(),
        2
    );
    assert_eq!(
        check_test_hooks(&file(
            "actors/src/partition/messages.rs",
            "//! m\n#[derive(Message)]\npub struct InjectPanic;\n"
        ))
        .len(),
        1
    );
    assert_eq!(
        check_test_hooks(&file(
            "actors/src/supervision.rs",
            "//! m\n#[doc(hidden)]\n#[derive(Message)]\npub struct PanicInHandler;\n"
        ))
        .len(),
        1
    );
    assert!(check_test_hooks(&file(
        "actors/src/partition/messages.rs",
        "//! m\n#[cfg(any(test, feature = \"test-support\"))]\n#[derive(Message)]\npub struct InjectPanic;\n"
    ))
    .is_empty());
}
