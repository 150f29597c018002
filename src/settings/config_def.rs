//! What a broker configuration key is, as Kafka's `ConfigDef` defines one: a name, a
//! type with its limits, a default and a line of documentation; and how a raw string
//! from a file, the environment or the command line becomes a checked, typed value.
//!
//! The keys themselves are listed once, in `broker_configs.rs`. Everything else about
//! them is derived from that list: which keys exist, their defaults, the check of each
//! value (an error names the key and what it allows), `troupe serve --help` and the
//! README's table (`docs.rs`). A new key is one entry there and one read where the
//! settings are built.

use troupe_actors::error::BrokerError;
use troupe_actors::topic_config::{self, validate_topic_config, TopicConfigDef, TOPIC_CONFIGS};

/// Kafka writes "never" and "unbounded" as `Long.MAX_VALUE`.
const LONG_MAX: i64 = i64::MAX;
const INT_MAX: i64 = i32::MAX as i64;

#[derive(Debug, Clone, Copy)]
pub enum ConfigType {
    /// `true` or `false`, in any case.
    Bool,
    /// A whole number within `[min, max]` that fits Kafka's `int`.
    Int { min: i32, max: i32 },
    /// A whole number within `[min, max]`.
    Long { min: i64, max: i64 },
    /// Free text (a path).
    String,
    /// `http://HOST:PORT` or `HOST:PORT`; an empty host listens on every address.
    Listener,
    /// Comma-separated host names or origins, compared without regard to case: each
    /// entry is trimmed and lowercased, a trailing `/` dropped, blanks skipped.
    NameList,
    /// The broker-level default of a topic config (`log.segment.bytes` for
    /// `segment.bytes`): its type, limits and default are the topic config's, from the
    /// table in `topic_config.rs`, and so is its check.
    TopicDefault {
        topic: &'static str,
        kind: topic_config::ConfigType,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    /// Kafka's name for the key wherever Kafka has one.
    pub name: &'static str,
    pub kind: ConfigType,
    /// The value the broker runs with when nothing sets the key, as it would be written
    /// in a file.
    pub default: &'static str,
    /// One line for the README and `--help`, in Markdown: `code`, and links to the
    /// README's sections (`[Disk full](#disk-full)`), which `--help` shows as text.
    pub doc: &'static str,
}

/// A value that has passed its key's check.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    Bool(bool),
    /// Both `Int` and `Long` keys; the range is already checked.
    Long(i64),
    /// `String` keys, and topic defaults normalised by the topic config's check.
    Text(String),
    Listeners(Vec<ListenerSpec>),
    List(Vec<String>),
}

/// One entry of `listeners` or `advertised.listeners`: `NAME://HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// `http` (REST, WebSocket and the dashboard) or a Kafka listener's name
    /// (`PLAINTEXT`), upper-cased as Kafka writes it.
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl ListenerSpec {
    /// `HOST:PORT` to bind (`[HOST]:PORT` for an IPv6 host).
    pub fn bind_address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The name of the HTTP listener's entry.
pub const HTTP_LISTENER: &str = "http";
/// The HTTP listener's entry over TLS (`ssl.*`).
pub const HTTPS_LISTENER: &str = "https";
/// The Kafka listener `--kafka-listen` sets.
pub const PLAINTEXT_LISTENER: &str = "PLAINTEXT";
/// The controller listener's name: the quorum's traffic and brokers' registrations.
pub const CONTROLLER_LISTENER: &str = "CONTROLLER";

impl ConfigDef {
    /// Checks `raw` against the key's type and limits. The error is the reason alone,
    /// for a message that names the key.
    pub fn parse(&self, raw: &str) -> Result<ConfigValue, String> {
        match self.kind {
            ConfigType::Bool => match raw.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(ConfigValue::Bool(true)),
                "false" => Ok(ConfigValue::Bool(false)),
                _ => Err(format!("'{raw}' is not true or false")),
            },
            ConfigType::Int { min, max } => parse_in_range(raw, min.into(), max.into()),
            ConfigType::Long { min, max } => parse_in_range(raw, min, max),
            ConfigType::String => Ok(ConfigValue::Text(raw.to_string())),
            ConfigType::Listener => parse_listeners(raw).map(ConfigValue::Listeners),
            ConfigType::NameList => Ok(ConfigValue::List(
                raw.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                    .filter(|o| !o.is_empty())
                    .collect(),
            )),
            ConfigType::TopicDefault { topic, .. } => match validate_topic_config(topic, raw) {
                Ok(normalised) => Ok(ConfigValue::Text(normalised)),
                Err(BrokerError::InvalidConfig { reason, .. }) => Err(reason),
                Err(other) => Err(other.to_string()),
            },
        }
    }

    /// Kafka's name for the type (`ConfigDef.Type`).
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ConfigType::Bool => "boolean",
            ConfigType::Int { .. } => "int",
            ConfigType::Long { .. } => "long",
            ConfigType::String | ConfigType::Listener => "string",
            ConfigType::NameList => "list",
            ConfigType::TopicDefault { kind, .. } => match kind {
                topic_config::ConfigType::Long { min, max } if fits_int(min, max) => "int",
                topic_config::ConfigType::Long { .. } => "long",
                topic_config::ConfigType::Double { .. } => "double",
                topic_config::ConfigType::Enum(_) => "string",
                topic_config::ConfigType::List(_) => "list",
            },
        }
    }

    /// What the key accepts, as the README shows it; empty for free text.
    pub fn valid_values(&self) -> String {
        match self.kind {
            ConfigType::Bool => "`true`, `false`".into(),
            ConfigType::Int { min, max } => range(min.into(), max.into(), INT_MAX),
            ConfigType::Long { min, max } => range(min, max, LONG_MAX),
            ConfigType::String | ConfigType::NameList => String::new(),
            ConfigType::Listener => "`NAME://HOST:PORT`, comma-separated".into(),
            ConfigType::TopicDefault { kind, .. } => match kind {
                topic_config::ConfigType::Long { min, max } if fits_int(min, max) => {
                    range(min, max, INT_MAX)
                }
                topic_config::ConfigType::Long { min, max } => range(min, max, LONG_MAX),
                topic_config::ConfigType::Double { min, max } => format!("[{min}, {max}]"),
                topic_config::ConfigType::Enum(choices) => quoted(choices),
                topic_config::ConfigType::List(choices) => {
                    format!("a list of {}", quoted(choices))
                }
            },
        }
    }

    /// Whether the value is text (quoted in the README) rather than a number or flag.
    pub fn is_text(&self) -> bool {
        match self.kind {
            ConfigType::Bool | ConfigType::Int { .. } | ConfigType::Long { .. } => false,
            ConfigType::String | ConfigType::Listener | ConfigType::NameList => true,
            ConfigType::TopicDefault { kind, .. } => matches!(
                kind,
                topic_config::ConfigType::Enum(_) | topic_config::ConfigType::List(_)
            ),
        }
    }
}

/// The entry for a broker key that sets a topic config's default. The topic config is
/// looked up while compiling, so a name that is not in `TOPIC_CONFIGS`, or a broker key
/// that is not the one that table pairs with it, does not build.
pub const fn topic_default(
    name: &'static str,
    topic: &'static str,
    doc: &'static str,
) -> ConfigDef {
    let def = find_topic_config(topic);
    assert!(
        same_str(def.broker_key, name),
        "the topic config names another broker key"
    );
    ConfigDef {
        name,
        kind: ConfigType::TopicDefault {
            topic: def.name,
            kind: def.kind,
        },
        default: def.default,
        doc,
    }
}

const fn find_topic_config(name: &str) -> TopicConfigDef {
    let mut i = 0;
    while i < TOPIC_CONFIGS.len() {
        if same_str(TOPIC_CONFIGS[i].name, name) {
            return TOPIC_CONFIGS[i];
        }
        i += 1;
    }
    panic!("not a topic config")
}

const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Kafka's topic configs bounded by an int are ints (`segment.bytes`).
fn fits_int(min: i64, max: i64) -> bool {
    min >= i64::from(i32::MIN) && max <= INT_MAX
}

fn parse_in_range(raw: &str, min: i64, max: i64) -> Result<ConfigValue, String> {
    let v: i64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("'{raw}' is not a whole number"))?;
    if v < min || v > max {
        return Err(format!("{v} is outside [{min}, {max}]"));
    }
    Ok(ConfigValue::Long(v))
}

/// `[min, max]`, or `[min, ...]` when the type's largest value is the only bound.
fn range(min: i64, max: i64, type_max: i64) -> String {
    if max == type_max {
        format!("[{min}, ...]")
    } else {
        format!("[{min}, {max}]")
    }
}

fn quoted(choices: &[&str]) -> String {
    choices
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `NAME://HOST:PORT, …` → the listeners, each name at most once. `http://` (or no
/// name) is the HTTP listener; the others are Kafka listeners, by name. An empty value
/// is no listener.
pub fn parse_listeners(raw: &str) -> Result<Vec<ListenerSpec>, String> {
    let mut out: Vec<ListenerSpec> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, address) = match entry.split_once("://") {
            Some((name, address)) => (name, address),
            None => (HTTP_LISTENER, entry),
        };
        let name = if name.eq_ignore_ascii_case(HTTP_LISTENER) {
            HTTP_LISTENER.to_string()
        } else if name.eq_ignore_ascii_case(HTTPS_LISTENER) {
            HTTPS_LISTENER.to_string()
        } else {
            name.to_ascii_uppercase()
        };
        let kafka_name = name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if name != HTTP_LISTENER && name != HTTPS_LISTENER && !kafka_name {
            return Err(format!(
                "'{entry}': {name} is not a listener name (`http`, `https`, or a Kafka listener's: letters, digits and _)"
            ));
        }
        if out.iter().any(|l| l.name == name) {
            return Err(format!("'{entry}': listener {name} is given twice"));
        }
        let (host, port) = parse_listener(address)?;
        out.push(ListenerSpec { name, host, port });
    }
    Ok(out)
}

/// `HOST:PORT` (or `http://HOST:PORT`) → host and port; an empty host is every
/// address. The error is the reason, quoting the listener.
pub fn parse_listener(listener: &str) -> Result<(String, u16), String> {
    let invalid = |reason: &str| format!("'{listener}': {reason}");
    let rest = listener.strip_prefix("http://").unwrap_or(listener);
    if rest.contains("://") {
        return Err(invalid("expected HOST:PORT"));
    }
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("the port is not a number from 0 to 65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Ok(("0.0.0.0".into(), port));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(kind: ConfigType) -> ConfigDef {
        ConfigDef {
            name: "k",
            kind,
            default: "",
            doc: "",
        }
    }

    #[test]
    fn numbers_are_checked_against_their_range() {
        let d = def(ConfigType::Int { min: 1, max: 10 });
        assert_eq!(d.parse(" 7 "), Ok(ConfigValue::Long(7)));
        assert_eq!(d.parse("11"), Err("11 is outside [1, 10]".to_string()));
        assert_eq!(d.parse("x"), Err("'x' is not a whole number".to_string()));
        assert_eq!(d.valid_values(), "[1, 10]");
        let d = def(ConfigType::Long {
            min: 0,
            max: i64::MAX,
        });
        assert_eq!(d.valid_values(), "[0, ...]");
    }

    #[test]
    fn bools_lists_and_listeners() {
        assert_eq!(
            def(ConfigType::Bool).parse("TRUE"),
            Ok(ConfigValue::Bool(true))
        );
        assert!(def(ConfigType::Bool).parse("yes").is_err());
        assert_eq!(
            def(ConfigType::NameList).parse(" A.example/, ,b "),
            Ok(ConfigValue::List(vec!["a.example".into(), "b".into()]))
        );
        assert_eq!(parse_listener(":1"), Ok(("0.0.0.0".into(), 1)));
        assert_eq!(parse_listener("http://[::1]:2"), Ok(("::1".into(), 2)));
        assert!(parse_listener("https://x:1").is_err());
        assert!(parse_listener("x").is_err());
        let both = parse_listeners("http://127.0.0.1:8082, plaintext://:9092").unwrap();
        assert_eq!(both[0].name, "http");
        assert_eq!(
            (both[1].name.as_str(), both[1].host.as_str(), both[1].port),
            ("PLAINTEXT", "0.0.0.0", 9092)
        );
        // Any Kafka listener name (its protocol comes from the map).
        assert_eq!(parse_listeners("client://x:1").unwrap()[0].name, "CLIENT");
        assert!(parse_listeners("my-listener://x:1")
            .unwrap_err()
            .contains("not a listener name"));
        let secure = parse_listeners("HTTPS://x:1,ssl://x:2").unwrap();
        assert_eq!(
            secure.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["https", "SSL"]
        );
        assert!(parse_listeners("x:1,http://y:2")
            .unwrap_err()
            .contains("twice"));
        assert_eq!(parse_listeners(""), Ok(vec![]));
    }

    #[test]
    fn topic_defaults_take_the_topic_configs_type_and_check() {
        let d = topic_default("log.segment.bytes", "segment.bytes", "");
        assert_eq!(d.default, "1073741824");
        assert_eq!(d.type_name(), "int");
        assert_eq!(d.valid_values(), "[14, ...]");
        assert!(d.parse("10").is_err());
        let d = topic_default("log.cleanup.policy", "cleanup.policy", "");
        assert_eq!(
            d.parse("Compact, delete"),
            Ok(ConfigValue::Text("compact,delete".into()))
        );
        assert_eq!(d.type_name(), "list");
    }
}
