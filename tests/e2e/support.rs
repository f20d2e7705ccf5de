//! Starting the real server and talking to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const APP_SECRET: &str = "test-app-secret";
pub(crate) const VERIFY_TOKEN: &str = "test-verify-token";

/// A running `ticks serve`.
pub(crate) struct Server {
    child: Option<Child>,
    pub(crate) base: String,
    pub(crate) client: reqwest::blocking::Client,
}

impl Server {
    /// Starts `ticks serve` on a free port and waits until it is ready.
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> Server {
        Self::start_limited(dir, extra, None)
    }

    /// Starts `ticks serve` with at most `open_files` descriptors (soft and
    /// hard limit), when given.
    pub(crate) fn start_limited(dir: &Path, extra: &[&str], open_files: Option<u64>) -> Server {
        let mut cmd = match open_files {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_ticks"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_ticks")),
        };
        cmd.arg("serve")
            .arg("--data")
            .arg(dir)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--app-secret",
                APP_SECRET,
                "--verify-token",
                VERIFY_TOKEN,
            ])
            .args(extra)
            // Warnings only, unless TEST_TICKS_LOG asks for more (a
            // failing test's server, read with --nocapture).
            .env(
                "TICKS_LOG",
                std::env::var("TEST_TICKS_LOG").unwrap_or("warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn ticks");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("first line");
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .expect("address")
            .to_string();
        let server = Server {
            child: Some(child),
            base: format!("http://{addr}"),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = server.client.get(server.url("/readyz")).send() {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "server not ready in time");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.client.get(self.url(path)).send().expect("request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
    }

    pub(crate) fn get_text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .expect("request")
            .text()
            .expect("text body")
    }

    pub(crate) fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
    }

    /// Posts a webhook body signed with the test app secret.
    pub(crate) fn post_webhook(&self, body: &[u8]) -> (u16, serde_json::Value) {
        let r = self
            .client
            .post(self.url("/webhook"))
            .header("X-Hub-Signature-256", sign(body))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
    }

    /// Waits until the full-text index has caught up with what was posted.
    pub(crate) fn settle_text(&self) {
        std::thread::sleep(Duration::from_millis(1200));
    }

    /// SIGKILL: no shutdown, no checkpoint.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: a clean shutdown.
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub(crate) fn sign(body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "tests", "data", name]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Generated NDJSON traffic, through the real `ticks generate`.
pub(crate) fn generated(messages: u64, seed: u64) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_ticks"))
        .args([
            "generate",
            "--messages",
            &messages.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .expect("ticks generate");
    assert!(out.status.success());
    out.stdout
}

/// A send result for a unique wamid.
pub(crate) fn send_result(wamid: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "recorded_at": "2025-03-01T10:00:03-03:00", "category": "marketing_campaign", "name": name,
        "recipient_type": "lead", "phone_number_id": "106540352242922",
        "request": {"messaging_product": "whatsapp", "to": "5511987654321", "type": "text", "text": {"body": format!("hello {wamid}")}},
        "response_code": 200,
        "response": {"messaging_product": "whatsapp", "contacts": [{"input": "5511987654321", "wa_id": "5511987654321"}], "messages": [{"id": wamid}]}
    })
}

/// A fake HTTP peer on loopback (the Graph API, or a business's own app):
/// answers every request with a fixed status and body, after `delay`, and
/// records what it received.
pub(crate) struct FakePeer {
    pub(crate) base: String,
    pub(crate) received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

/// One request a [`FakePeer`] received.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) request_line: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl FakePeer {
    pub(crate) fn start(status: u16, body: &str, delay: Duration) -> FakePeer {
        let body = body.to_string();
        Self::start_with(move |_| (status, body.clone()), delay)
    }

    /// A peer on a given port.
    pub(crate) fn start_on(port: u16, status: u16, body: &str) -> FakePeer {
        let body = body.to_string();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
        Self::serve(listener, move |_| (status, body.clone()), Duration::ZERO)
    }

    /// Answers with what `answer` says for the n-th request (0-based).
    pub(crate) fn start_with(
        answer: impl Fn(usize) -> (u16, String) + Send + Sync + 'static,
        delay: Duration,
    ) -> FakePeer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        Self::serve(listener, answer, delay)
    }

    fn serve(
        listener: std::net::TcpListener,
        answer: impl Fn(usize) -> (u16, String) + Send + Sync + 'static,
        delay: Duration,
    ) -> FakePeer {
        use std::io::{Read, Write};
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let rec = received.clone();
        let answer = std::sync::Arc::new(answer);
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { continue };
                let (rec, answer) = (rec.clone(), answer.clone());
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let header_end = loop {
                        let Ok(k) = stream.read(&mut chunk) else {
                            return;
                        };
                        if k == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..k]);
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
                    let mut lines = head.split("\r\n");
                    let request_line = lines.next().unwrap_or("").to_string();
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| {
                            l.split_once(':')
                                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                        })
                        .collect();
                    let len: usize = headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = buf[header_end + 4..].to_vec();
                    while body.len() < len {
                        let Ok(k) = stream.read(&mut chunk) else {
                            return;
                        };
                        if k == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..k]);
                    }
                    rec.lock().expect("lock").push(Received {
                        request_line,
                        headers,
                        body,
                    });
                    std::thread::sleep(delay);
                    let (status, text) = answer(n);
                    let reply = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}", text.len());
                    let _ = stream.write_all(reply.as_bytes());
                });
            }
        });
        FakePeer { base, received }
    }
}

/// Runs the `ticks` command line on a data directory and waits for it.
pub(crate) fn ticks(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ticks"))
        .arg("--data")
        .arg(dir)
        .args(args)
        .env("TICKS_LOG", "warn")
        .output()
        .expect("run ticks")
}

/// Imports NDJSON into the store at `store` with `ticks import`, which must succeed.
pub(crate) fn import(store: &Path, data: &[u8]) {
    let file = store.with_extension("ndjson");
    std::fs::write(&file, data).expect("write");
    let out = ticks(store, &["import", file.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
