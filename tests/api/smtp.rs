//! A real SMTP server for the tests: `scripts/smtp_sink.py` (PyPI aiosmtpd) on a free port,
//! each message it takes read back as {"from", "to", "data"}.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct SmtpSink {
    pub port: u16,
    child: Child,
    messages: mpsc::Receiver<Value>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let port = crate::broker::free_port();
        let mut child = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/smtp_sink.py"))
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs scripts/smtp_sink.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the SMTP sink is ready (aiosmtpd installs on first use)");
        assert_eq!(ready["ready"], port);
        SmtpSink {
            port,
            child,
            messages: rx,
        }
    }

    /// `PF_SMTP_URL` for it.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The next message it took, waiting up to 10 s (without blocking the runtime: the server
    /// may send it from a task of its own).
    pub async fn next(&self) -> Value {
        for _ in 0..200 {
            if let Ok(message) = self.messages.try_recv() {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no message within 10 s");
    }

    /// Whether no message arrives within `millis`.
    pub async fn nothing_within(&self, millis: u64) -> bool {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        self.messages.try_recv().is_err()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A mail's text, with quoted-printable undone (soft line breaks, `=XX`), as a reader sees it.
pub fn text_of(mail: &Value) -> String {
    let data = mail["data"]
        .as_str()
        .unwrap()
        .replace("=\r\n", "")
        .replace("=\n", "");
    let mut out = Vec::new();
    let bytes = data.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The token after `label` in a mail's text.
pub fn token_in(mail: &Value, label: &str) -> String {
    let text = text_of(mail);
    let start = text
        .find(label)
        .unwrap_or_else(|| panic!("{label} in {text}"))
        + label.len();
    text[start..].chars().take(47).collect()
}
