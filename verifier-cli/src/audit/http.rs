//! The HTTP client `audit replay` reads nodes with: blocking (the CLI has no async runtime), every
//! response bounded in size and time, every failure a stable code (specs/log.md §7).

use std::time::Duration;

use ureq::Agent;

/// Why a node could not be read. Each message starts with its stable code.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("NODE_URL_INVALID: {url}: {why}")]
    UrlInvalid { url: String, why: String },
    #[error("NODE_UNREACHABLE: GET {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("NODE_TIMEOUT: GET {url}: no complete answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("HTTP_STATUS: GET {url} answered {status}{detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("RESPONSE_TOO_LARGE: GET {url}: more than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("RESPONSE_MALFORMED: GET {url}: {detail}")]
    Malformed { url: String, detail: String },
    #[error("TILE_MALFORMED: GET {url}: {detail}")]
    TileMalformed { url: String, detail: String },
}

/// How much of an error response's body is quoted in the message.
const QUOTED: u64 = 512;

pub struct Client {
    agent: Agent,
    timeout: Duration,
}

impl Client {
    /// `timeout` bounds each request from connecting to the body's last byte.
    pub fn new(timeout: Duration) -> Client {
        let agent = Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // A node answers where it is asked: a redirect is reported, not followed elsewhere.
            .max_redirects(0)
            .user_agent(concat!("tongban-verify/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client { agent, timeout }
    }

    /// The body of a `200` answer to `GET url`, at most `limit` bytes.
    pub fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        self.get_unless_missing(url, limit)?
            .ok_or_else(|| FetchError::Status {
                url: url.to_owned(),
                status: 404,
                detail: String::new(),
            })
    }

    /// Like [`Client::get`], but a `404` is `None`.
    pub fn get_unless_missing(&self, url: &str, limit: u64) -> Result<Option<Vec<u8>>, FetchError> {
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| self.failure(url, limit, e))?;
        let status = response.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        if status != 200 {
            let body = response
                .body_mut()
                .with_config()
                .limit(QUOTED)
                .read_to_vec()
                .unwrap_or_default();
            let quoted = String::from_utf8_lossy(&body);
            let quoted = quoted.trim();
            let detail = if quoted.is_empty() {
                String::new()
            } else {
                format!(": {quoted}")
            };
            return Err(FetchError::Status {
                url: url.to_owned(),
                status,
                detail,
            });
        }
        response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map(Some)
            .map_err(|e| self.failure(url, limit, e))
    }

    fn failure(&self, url: &str, limit: u64, error: ureq::Error) -> FetchError {
        let url = url.to_owned();
        match error {
            ureq::Error::Timeout(_) => FetchError::Timeout {
                url,
                timeout: self.timeout,
            },
            ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge { url, limit },
            ureq::Error::BadUri(why) => FetchError::UrlInvalid { url, why },
            ureq::Error::Http(e) => FetchError::UrlInvalid {
                url,
                why: e.to_string(),
            },
            e @ (ureq::Error::Protocol(_) | ureq::Error::LargeResponseHeader(..)) => {
                FetchError::Malformed {
                    url,
                    detail: format!("not an HTTP answer ({e})"),
                }
            }
            other => FetchError::Unreachable {
                url,
                detail: other.to_string(),
            },
        }
    }
}
