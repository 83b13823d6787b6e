//! A small blocking HTTP client for the nodes' API: every answer is returned with its status (a
//! refusal is evidence, not an error); only a failure to get an answer at all is an error.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

/// Largest answer read (a node's answers are small; an audit goes through tongban-verify).
const LIMIT: u64 = 16 << 20;

#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
}

pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("an answer that is not JSON: {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A problem document's `code` (empty when there is none).
    pub fn code(&self) -> String {
        self.json()
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// The JSON body when the status is `want`, else an error quoting the answer.
    pub fn expect(&self, want: u16, what: &str) -> Result<Value> {
        if self.status != want {
            return Err(anyhow!(
                "{what}: expected HTTP {want}, got {}: {}",
                self.status,
                self.text().trim()
            ));
        }
        self.json().with_context(|| what.to_owned())
    }
}

impl Http {
    /// `timeout` bounds each request, from connecting to the last byte.
    pub fn new(timeout: Duration) -> Http {
        Http::with_pool(timeout, true)
    }

    /// A client that opens a new connection for every request (the flood: a node may close a
    /// connection whose request it refused unread, and a pooled client would count its next
    /// request on that connection as unanswered).
    pub fn unpooled(timeout: Duration) -> Http {
        Http::with_pool(timeout, false)
    }

    fn with_pool(timeout: Duration, pool: bool) -> Http {
        let idle = if pool { 10 } else { 0 };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_idle_connections(idle)
            .max_idle_connections_per_host(idle)
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("tongban-testnet/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Http { agent }
    }

    pub fn get(&self, url: &str, token: Option<&str>) -> Result<Answer> {
        let mut request = self.agent.get(url);
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        read(request.call(), "GET", url)
    }

    pub fn post(&self, url: &str, token: Option<&str>, body: &Value) -> Result<Answer> {
        self.post_raw(url, token, "application/json", body.to_string().as_bytes())
    }

    pub fn post_raw(
        &self,
        url: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> Result<Answer> {
        let mut request = self.agent.post(url).content_type(content_type);
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        read(request.send(body), "POST", url)
    }
}

fn read(
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    method: &str,
    url: &str,
) -> Result<Answer> {
    let mut response = response.with_context(|| format!("{method} {url}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(LIMIT)
        .read_to_vec()
        .with_context(|| format!("{method} {url}: reading the answer"))?;
    Ok(Answer { status, body })
}
