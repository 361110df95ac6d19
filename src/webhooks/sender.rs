//! The HTTP side of a delivery: one POST with the Standard Webhooks headers, through a
//! client that follows no redirect, uses no proxy, resolves names only through
//! [`PinnedResolver`], gives up after `POSTIER_WEBHOOK_TIMEOUT_SECS` and reads at most
//! [`MAX_ANSWER_BYTES`] of the answer, keeping the first [`EXCERPT_BYTES`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::webhooks::target::{PinnedResolver, TargetPolicy};

/// The most of an answer read (the rest is dropped with the connection).
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// How much of an answer an attempt keeps.
pub(crate) const EXCERPT_BYTES: usize = 1024;

/// What one message needs on the wire.
pub(crate) struct Message<'a> {
    pub url: &'a str,
    pub message_id: &'a str,
    pub timestamp: i64,
    pub signature: &'a str,
    pub body: &'a str,
}

/// What came of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub status: Option<u16>,
    pub duration_ms: i32,
    pub excerpt: Option<String>,
    /// Why no acceptable answer came (refused target, timeout, connection error, status).
    pub error: Option<String>,
}

impl Outcome {
    pub(crate) fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

pub(crate) struct Sender {
    client: reqwest::Client,
    policy: Arc<TargetPolicy>,
}

impl Sender {
    pub(crate) fn new(
        policy: Arc<TargetPolicy>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .dns_resolver(Arc::new(PinnedResolver {
                policy: policy.clone(),
                timeout,
            }))
            .user_agent(concat!("Postier-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, policy })
    }

    /// Sends one message and reports what happened; never fails.
    pub(crate) async fn send(&self, message: &Message<'_>) -> Outcome {
        let started = Instant::now();
        let elapsed =
            |started: Instant| i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let refuse = |error: String| Outcome {
            status: None,
            duration_ms: 0,
            excerpt: None,
            error: Some(error),
        };
        let url = match url::Url::parse(message.url) {
            Ok(url) => url,
            Err(e) => return refuse(format!("the URL is not valid: {e}")),
        };
        // The allow-list may have changed since the endpoint was saved; names are checked
        // by the resolver, addresses written in the URL here.
        if let Err(reason) = self.policy.check_url(&url) {
            return refuse(format!("target refused: the URL {reason}"));
        }
        let request = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", message.message_id)
            .header("webhook-timestamp", message.timestamp.to_string())
            .header("webhook-signature", message.signature)
            .body(message.body.to_string());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                return Outcome {
                    status: None,
                    duration_ms: elapsed(started),
                    excerpt: None,
                    error: Some(describe(&e)),
                }
            }
        };
        let status = response.status().as_u16();
        let mut answer = Vec::new();
        let mut read_error = None;
        while answer.len() < MAX_ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(describe(&e));
                    break;
                }
            }
        }
        let duration_ms = elapsed(started);
        let excerpt = excerpt(&answer);
        let error = match read_error {
            Some(e) => Some(format!("reading the answer failed: {e}")),
            None if (200..300).contains(&status) => None,
            None if (300..400).contains(&status) => {
                Some(format!("answered {status}; redirects are not followed"))
            }
            None => Some(format!("answered {status}")),
        };
        Outcome {
            // A 2xx status line is the receiver's acknowledgement, whatever the body.
            status: Some(status),
            duration_ms,
            excerpt,
            error: error.filter(|_| !(200..300).contains(&status)),
        }
    }
}

/// The first bytes of an answer as text (invalid UTF-8 replaced, NULs dropped).
fn excerpt(answer: &[u8]) -> Option<String> {
    if answer.is_empty() {
        return None;
    }
    let cut = &answer[..answer.len().min(EXCERPT_BYTES)];
    Some(String::from_utf8_lossy(cut).replace('\0', ""))
}

/// A short reason for a failed request, without the URL (the endpoint lists it already).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn excerpts_keep_the_first_bytes_as_text() {
        assert_eq!(super::excerpt(b""), None);
        assert_eq!(super::excerpt(b"ok\0!").as_deref(), Some("ok!"));
        let long = vec![b'a'; 5000];
        assert_eq!(super::excerpt(&long).unwrap().len(), super::EXCERPT_BYTES);
    }
}
