//! Postfix's policy delegation protocol on the wire: reading one request (`name=value` lines
//! ended by an empty line) into a [`Request`], and writing one `action=…` reply.
//!
//! Owns the bounds that keep a misbehaving peer from costing memory: a line is at most
//! [`MAX_LINE`] bytes, a request at most [`MAX_ATTRIBUTES`] lines. Anything that is not the
//! protocol (a line without `=`, a bad attribute name, invalid UTF-8, an over-long line or
//! request, a request that is not `request=smtpd_access_policy`) is a [`ProtocolError`]: the
//! server logs it and closes that connection only. Unknown attributes are ignored, as Postfix
//! adds new ones from release to release. Knows nothing about decisions.

use std::fmt;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Longest attribute line accepted, in bytes (without the newline). Postfix's longest values
/// (certificate subjects, `policy_context`) stay far below.
pub(crate) const MAX_LINE: usize = 4096;
/// Most attribute lines in one request. Postfix 3.7 sends about 30.
pub(crate) const MAX_ATTRIBUTES: usize = 128;

/// The SMTP stage a request is made at (`protocol_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stage {
    Connect,
    Helo,
    Mail,
    Rcpt,
    Data,
    EndOfMessage,
    /// VRFY, ETRN and anything Postfix may add later.
    #[default]
    Other,
}

impl Stage {
    fn parse(value: &str) -> Stage {
        match value {
            "RCPT" => Stage::Rcpt,
            "DATA" => Stage::Data,
            "END-OF-MESSAGE" => Stage::EndOfMessage,
            "MAIL" => Stage::Mail,
            "CONNECT" => Stage::Connect,
            "HELO" | "EHLO" => Stage::Helo,
            _ => Stage::Other,
        }
    }
}

/// The attributes of one request that decisions use; the buffers are reused from request to
/// request on a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub stage: Stage,
    /// The authenticated login, as the client typed it; empty when not authenticated.
    pub sasl_username: String,
    /// The envelope sender (`MAIL FROM`), as the client sent it; empty for `<>`.
    pub sender: String,
    /// The envelope recipient at `RCPT`; empty at other stages.
    pub recipient: String,
    /// Recipients Postfix accepted so far: 0 at every `RCPT`, the total at `DATA` and
    /// `END-OF-MESSAGE`. `None` when absent or not a number.
    pub recipient_count: Option<u32>,
    /// Identifies one message transaction: the same for every request of one message.
    pub instance: String,
    /// `request=smtpd_access_policy` was sent.
    access_policy: bool,
    attributes: usize,
}

impl Request {
    fn clear(&mut self) {
        self.stage = Stage::Other;
        self.sasl_username.clear();
        self.sender.clear();
        self.recipient.clear();
        self.recipient_count = None;
        self.instance.clear();
        self.access_policy = false;
        self.attributes = 0;
    }

    /// Applies one `name=value` line.
    fn apply(&mut self, line: &[u8]) -> Result<(), ProtocolError> {
        self.attributes += 1;
        if self.attributes > MAX_ATTRIBUTES {
            return Err(ProtocolError::TooManyAttributes);
        }
        let line = std::str::from_utf8(line).map_err(|_| ProtocolError::InvalidUtf8)?;
        let (name, value) = line.split_once('=').ok_or(ProtocolError::NotAnAttribute)?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Err(ProtocolError::BadAttributeName);
        }
        match name {
            "request" => self.access_policy = value == "smtpd_access_policy",
            "protocol_state" => self.stage = Stage::parse(value),
            "sasl_username" => set(&mut self.sasl_username, value),
            "sender" => set(&mut self.sender, value),
            "recipient" => set(&mut self.recipient, value),
            "recipient_count" => self.recipient_count = value.parse().ok(),
            "instance" => set(&mut self.instance, value),
            _ => {}
        }
        Ok(())
    }
}

fn set(field: &mut String, value: &str) {
    field.clear();
    field.push_str(value);
}

/// Why a connection is closed: its peer does not speak the protocol (or stopped mid-request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProtocolError {
    LineTooLong,
    TooManyAttributes,
    InvalidUtf8,
    NotAnAttribute,
    BadAttributeName,
    NotAnAccessPolicyRequest,
    /// The peer closed the connection in the middle of a request.
    Truncated,
    Io(std::io::ErrorKind),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineTooLong => write!(f, "a line is longer than {MAX_LINE} bytes"),
            Self::TooManyAttributes => write!(f, "a request has more than {MAX_ATTRIBUTES} lines"),
            Self::InvalidUtf8 => f.write_str("a line is not UTF-8"),
            Self::NotAnAttribute => f.write_str("a line is not name=value"),
            Self::BadAttributeName => f.write_str("an attribute name is empty or malformed"),
            Self::NotAnAccessPolicyRequest => {
                f.write_str("the request is not request=smtpd_access_policy")
            }
            Self::Truncated => f.write_str("the connection closed in the middle of a request"),
            Self::Io(kind) => write!(f, "read error: {kind}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Reads one request into `request` (cleared first), using `line` as scratch space.
/// `Ok(false)`: the peer closed the connection cleanly between requests.
pub(crate) async fn read_request<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    request: &mut Request,
) -> Result<bool, ProtocolError> {
    request.clear();
    let mut started = false;
    loop {
        if !read_line(reader, line).await? {
            return if started {
                Err(ProtocolError::Truncated)
            } else {
                Ok(false)
            };
        }
        // Postfix ends lines with \n; tolerate \r\n from hand-written clients.
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > MAX_LINE {
            return Err(ProtocolError::LineTooLong);
        }
        if line.is_empty() {
            if !started {
                // Stray empty lines between requests carry nothing: skip them.
                continue;
            }
            if !request.access_policy {
                return Err(ProtocolError::NotAnAccessPolicyRequest);
            }
            return Ok(true);
        }
        started = true;
        request.apply(line)?;
    }
}

/// Reads up to the next `\n` (excluded) into `line`, refusing more than [`MAX_LINE`] bytes.
/// `Ok(false)` at end of stream with nothing read.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> Result<bool, ProtocolError> {
    line.clear();
    loop {
        let available = reader
            .fill_buf()
            .await
            .map_err(|e| ProtocolError::Io(e.kind()))?;
        if available.is_empty() {
            return if line.is_empty() {
                Ok(false)
            } else {
                Err(ProtocolError::Truncated)
            };
        }
        let (chunk, consumed, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        // MAX_LINE + 1 leaves room for a trailing \r.
        if line.len() + chunk.len() > MAX_LINE + 1 {
            return Err(ProtocolError::LineTooLong);
        }
        line.extend_from_slice(chunk);
        reader.consume(consumed);
        if complete {
            return Ok(true);
        }
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No opinion: Postfix goes on with its other restrictions.
    Dunno,
    /// Permanent refusal; the text starts with an enhanced status code (`5.x.x`).
    Reject(String),
    /// Temporary refusal; the text starts with an enhanced status code (`4.x.x`).
    Defer(String),
}

impl Action {
    /// Appends `action=…\n\n` to `out`. The text is kept on one line of printable ASCII, so
    /// no value can inject a second attribute or end the reply early.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"action=");
        let (verb, text) = match self {
            Action::Dunno => ("DUNNO", None),
            Action::Reject(text) => ("REJECT", Some(text)),
            Action::Defer(text) => ("DEFER", Some(text)),
        };
        out.extend_from_slice(verb.as_bytes());
        if let Some(text) = text {
            out.push(b' ');
            out.extend(text.bytes().take(MAX_LINE / 2).map(|b| {
                if b == b' ' || b.is_ascii_graphic() {
                    b
                } else {
                    b'?'
                }
            }));
        }
        out.extend_from_slice(b"\n\n");
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Dunno => f.write_str("DUNNO"),
            Action::Reject(text) => write!(f, "REJECT {text}"),
            Action::Defer(text) => write!(f, "DEFER {text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8]) -> Vec<Result<Request, ProtocolError>> {
        let mut reader = tokio::io::BufReader::with_capacity(7, input);
        let mut line = Vec::new();
        let mut out = Vec::new();
        loop {
            let mut request = Request::default();
            match read_request(&mut reader, &mut line, &mut request).await {
                Ok(true) => out.push(Ok(request)),
                Ok(false) => return out,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }

    const RCPT: &str = "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n\
        client_address=127.0.0.1\nsender=alice@example.test\nrecipient=bob@example.test\n\
        recipient_count=0\nqueue_id=\ninstance=225f.6b097b50.87b21.0\nsize=201\n\
        sasl_method=PLAIN\nsasl_username=alice@example.test\nsasl_sender=\n\
        encryption_protocol=TLSv1.3\npolicy_context=\n\n";

    #[tokio::test]
    async fn a_postfix_rcpt_request_is_read_and_unknown_attributes_are_ignored() {
        let requests = read_all(RCPT.as_bytes()).await;
        assert_eq!(requests.len(), 1);
        let request = requests[0].as_ref().unwrap();
        assert_eq!(request.stage, Stage::Rcpt);
        assert_eq!(request.sasl_username, "alice@example.test");
        assert_eq!(request.sender, "alice@example.test");
        assert_eq!(request.recipient, "bob@example.test");
        assert_eq!(request.recipient_count, Some(0));
        assert_eq!(request.instance, "225f.6b097b50.87b21.0");
    }

    #[tokio::test]
    async fn several_requests_on_one_stream_are_read_one_by_one() {
        let data = RCPT
            .replace("RCPT", "DATA")
            .replace("recipient_count=0", "recipient_count=3");
        let input = format!("{RCPT}{RCPT}{data}");
        let requests = read_all(input.as_bytes()).await;
        assert_eq!(requests.len(), 3);
        let last = requests[2].as_ref().unwrap();
        assert_eq!(last.stage, Stage::Data);
        assert_eq!(last.recipient_count, Some(3));
    }

    #[tokio::test]
    async fn values_keep_equal_signs_and_crlf_is_tolerated() {
        let input = "request=smtpd_access_policy\r\nsender=a=b@example.test\r\n\r\n";
        let requests = read_all(input.as_bytes()).await;
        assert_eq!(requests[0].as_ref().unwrap().sender, "a=b@example.test");
    }

    #[tokio::test]
    async fn garbage_is_a_protocol_error() {
        let cases: Vec<(Vec<u8>, ProtocolError)> = vec![
            (
                b"GET / HTTP/1.1\n\n".to_vec(),
                ProtocolError::NotAnAttribute,
            ),
            (b"=value\n\n".to_vec(), ProtocolError::BadAttributeName),
            (b"na me=value\n\n".to_vec(), ProtocolError::BadAttributeName),
            (b"sender=\xff\xfe\n\n".to_vec(), ProtocolError::InvalidUtf8),
            (
                format!("sender={}\n\n", "a".repeat(MAX_LINE)).into_bytes(),
                ProtocolError::LineTooLong,
            ),
            (
                "x=y\n".repeat(MAX_ATTRIBUTES + 1).into_bytes(),
                ProtocolError::TooManyAttributes,
            ),
            (
                b"protocol_state=RCPT\n\n".to_vec(),
                ProtocolError::NotAnAccessPolicyRequest,
            ),
            (
                b"request=junk\n\n".to_vec(),
                ProtocolError::NotAnAccessPolicyRequest,
            ),
            (
                b"request=smtpd_access_policy\nsender=a".to_vec(),
                ProtocolError::Truncated,
            ),
        ];
        for (input, expected) in cases {
            let requests = read_all(&input).await;
            assert_eq!(
                requests.last().unwrap().as_ref().unwrap_err(),
                &expected,
                "input {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_accepted() {
        let value = "a".repeat(MAX_LINE - "policy_context=".len());
        let input = format!("request=smtpd_access_policy\npolicy_context={value}\n\n");
        assert!(read_all(input.as_bytes()).await[0].is_ok());
    }

    #[tokio::test]
    async fn a_clean_close_between_requests_is_not_an_error() {
        assert!(read_all(b"").await.is_empty());
        assert!(read_all(b"\n\n").await.is_empty());
    }

    #[test]
    fn replies_end_with_an_empty_line_and_cannot_be_injected() {
        let mut out = Vec::new();
        Action::Dunno.encode(&mut out);
        assert_eq!(out, b"action=DUNNO\n\n");
        out.clear();
        Action::Reject("5.7.1 no\n\naction=OK".into()).encode(&mut out);
        assert_eq!(out, b"action=REJECT 5.7.1 no??action=OK\n\n");
        out.clear();
        Action::Defer("4.7.1 later".into()).encode(&mut out);
        assert_eq!(out, b"action=DEFER 4.7.1 later\n\n");
    }
}
