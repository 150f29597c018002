//! The CLI's HTTP client: talks to a broker's REST API (blocking, with ureq) and turns
//! its `{"error_code", "message"}` answers into errors a shell user can act on.

use serde_json::Value;

/// Exit codes: 1 = the broker refused the request, 3 = the broker cannot be reached,
/// 4 = local input problem (a file, stdin). (2 is clap's usage error.)
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("error {code}: {message}")]
    Api {
        status: u16,
        code: i64,
        message: String,
    },
    #[error("cannot reach the broker at {url}: {reason}\nIs `troupe serve` running? Point at it with --bootstrap-server.")]
    Unreachable { url: String, reason: String },
    #[error("{0}")]
    Input(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Api { .. } => 1,
            CliError::Unreachable { .. } => 3,
            CliError::Input(_) => 4,
        }
    }
}

#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    /// `Basic …` for a broker with authentication.
    authorization: Option<String>,
}

impl Client {
    pub fn new(bootstrap_server: &str) -> Client {
        let base = if bootstrap_server.contains("://") {
            bootstrap_server.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", bootstrap_server.trim_end_matches('/'))
        };
        Client {
            base,
            agent: ureq::AgentBuilder::new()
                .timeout_connect(std::time::Duration::from_secs(5))
                .build(),
            authorization: None,
        }
    }

    /// Sends `NAME:PASSWORD` (HTTP Basic) with every request.
    pub fn with_user(mut self, user: Option<&str>) -> Client {
        use base64::Engine as _;
        self.authorization = user.map(|u| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(u)
            )
        });
        self
    }

    /// A request with the credentials set.
    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let request = self.agent.request(method, &self.url(path));
        match &self.authorization {
            Some(a) => request.set("Authorization", a),
            None => request,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn finish(
        &self,
        result: Result<ureq::Response, ureq::Error>,
    ) -> Result<Option<Value>, CliError> {
        match result {
            Ok(resp) => {
                if resp.status() == 204 {
                    return Ok(None);
                }
                let text = resp
                    .into_string()
                    .map_err(|e| self.unreachable(e.to_string()))?;
                if text.trim().is_empty() {
                    return Ok(None);
                }
                serde_json::from_str(&text).map(Some).map_err(|e| {
                    CliError::Input(format!("the broker sent a body that is not JSON: {e}"))
                })
            }
            Err(ureq::Error::Status(status, resp)) => {
                let body: Value = resp.into_json().unwrap_or(Value::Null);
                Err(CliError::Api {
                    status,
                    code: body["error_code"].as_i64().unwrap_or(status as i64),
                    message: body["message"].as_str().unwrap_or("no message").to_string(),
                })
            }
            Err(e) => Err(self.unreachable(e.to_string())),
        }
    }

    fn unreachable(&self, reason: String) -> CliError {
        CliError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }

    pub fn get(&self, path: &str) -> Result<Value, CliError> {
        let result = self.request("GET", path).call();
        Ok(self.finish(result)?.unwrap_or(Value::Null))
    }

    pub fn get_accept(&self, path: &str, accept: &str) -> Result<Value, CliError> {
        let result = self.request("GET", path).set("Accept", accept).call();
        Ok(self.finish(result)?.unwrap_or(Value::Null))
    }

    pub fn send_json(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &Value,
    ) -> Result<Option<Value>, CliError> {
        let result = self
            .request(method, path)
            .set("Content-Type", content_type)
            .send_string(&body.to_string());
        self.finish(result)
    }

    pub fn delete(&self, path: &str) -> Result<Option<Value>, CliError> {
        let result = self.request("DELETE", path).call();
        self.finish(result)
    }

    /// The cluster id, needed by every v3 path.
    pub fn cluster_id(&self) -> Result<String, CliError> {
        let clusters = self.get("/v3/clusters")?;
        clusters["data"][0]["cluster_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CliError::Input("the broker listed no cluster".into()))
    }
}

/// Percent-encodes a path segment or query value (RFC 3986's unreserved characters
/// stay as they are).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
