//! A small SMTP server on loopback that receives what Postier sends: enough ESMTP (EHLO,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT) for lettre, with an optional failure mode to test
//! the outbox's retries.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

pub struct TestSmtp {
    pub port: u16,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    failing: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestSmtp {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(AtomicBool::new(false));
        let (r, f) = (received.clone(), failing.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (r, f) = (r.clone(), f.clone());
                tokio::spawn(async move {
                    let _ = session(stream, r, f).await;
                });
            }
        });
        Self {
            port,
            received,
            failing,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// While set, every transaction is refused with a temporary error (451).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `count` messages whose data contains `fragment` (a subject, a recipient,
    /// a word) arrived (at most 10 s), and answers those.
    pub async fn wait_for_matching(&self, fragment: &str, count: usize) -> Vec<ReceivedMail> {
        for _ in 0..200 {
            let got = self.matching(fragment);
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "expected {count} messages containing {fragment:?}, got {}",
            self.matching(fragment).len()
        );
    }

    /// The messages received so far whose data contains `fragment`.
    pub fn matching(&self, fragment: &str) -> Vec<ReceivedMail> {
        self.received()
            .into_iter()
            .filter(|m| m.data.contains(fragment))
            .collect()
    }

    /// The messages received so far that are not the verification e-mails every sign-up
    /// sends (`Subject: Confirm your login`).
    pub fn notifications(&self) -> Vec<ReceivedMail> {
        self.received()
            .into_iter()
            .filter(|m| !m.data.contains("Subject: Confirm your login"))
            .collect()
    }

    /// Waits until `count` messages other than sign-up verifications arrived (at most 10 s).
    pub async fn wait_for_notifications(&self, count: usize) -> Vec<ReceivedMail> {
        for _ in 0..200 {
            let got = self.notifications();
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "expected {count} notifications, got {}",
            self.notifications().len()
        );
    }

    /// Waits until `count` messages arrived (at most 10 s).
    pub async fn wait_for(&self, count: usize) -> Vec<ReceivedMail> {
        for _ in 0..200 {
            let got = self.received();
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {count} messages, got {}", self.received().len());
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    failing: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 test.smtp ESMTP\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-test.smtp\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = strip(&line[10..]);
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            if failing.load(Ordering::SeqCst) {
                b"451 4.3.0 try again later\r\n"
            } else {
                to.push(strip(&line[8..]));
                b"250 OK\r\n"
            }
        } else if upper == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push('\n');
            }
            if data
                .to_ascii_lowercase()
                .contains("content-transfer-encoding: quoted-printable")
            {
                // The body only: headers are never quoted-printable (their encoded words
                // end in `?=`, which a soft line break would eat).
                data = match data.split_once("\n\n") {
                    Some((head, body)) => format!("{head}\n\n{}", decode_quoted_printable(body)),
                    None => decode_quoted_printable(&data),
                };
            }
            received.lock().unwrap().push(ReceivedMail {
                from: from.clone(),
                to: to.clone(),
                data,
            });
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 OK\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

fn strip(arg: &str) -> String {
    arg.split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_lowercase()
}

/// Undoes quoted-printable (soft line breaks and `=XX`), enough to read links in a body.
fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
