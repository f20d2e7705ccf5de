//! The command line beside a running server: `ticks serve` holds the store
//! (its locks keep a second process out), so `query`, `show`, `timeline`,
//! `report`, `export` and `stats` ask the server over its API instead, and
//! print the same output. The server is found from `server.json`, which
//! `ticks serve` writes in the data directory while it runs (`FORMAT.md`),
//! or named with `--url`.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file a running server leaves in its data directory.
const SERVER_FILE: &str = "server.json";

/// What `server.json` holds.
#[derive(Serialize, Deserialize)]
struct ServerFile {
    /// Where the API answers ("http://127.0.0.1:8080").
    url: String,
    /// The server's process, to tell a running server from a file a
    /// `kill -9` left behind.
    pid: u32,
}

/// Writes `server.json` for a server listening on `addr` (an address of
/// every interface is reached on loopback). It is removed by
/// [`ServerFileGuard`]'s drop when the server stops.
pub(crate) fn announce(data: &Path, addr: SocketAddr) -> Result<ServerFileGuard> {
    let host = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
        SocketAddr::V6(a) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
        other => other.to_string(),
    };
    let file = ServerFile {
        url: format!("http://{host}"),
        pid: std::process::id(),
    };
    let path = data.join(SERVER_FILE);
    let tmp = data.join(format!("{SERVER_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&file)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(ServerFileGuard(path))
}

/// Removes `server.json` when the server stops.
pub(crate) struct ServerFileGuard(PathBuf);

impl Drop for ServerFileGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A running Ticks server the command line asks.
pub(crate) struct Remote {
    base: String,
    token: Option<String>,
    client: reqwest::blocking::Client,
}

impl Remote {
    /// The server at `url`.
    pub(crate) fn new(url: &str, token: Option<String>) -> Result<Remote> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()?;
        Ok(Remote {
            base: url.trim_end_matches('/').to_string(),
            token,
            client,
        })
    }

    /// The server running on the data directory `data`, if one is.
    pub(crate) fn running_on(data: &Path, token: Option<String>) -> Result<Option<Remote>> {
        let Ok(bytes) = std::fs::read(data.join(SERVER_FILE)) else {
            return Ok(None);
        };
        let Ok(file) = serde_json::from_slice::<ServerFile>(&bytes) else {
            return Ok(None);
        };
        if !process_runs(file.pid) {
            return Ok(None);
        }
        Remote::new(&file.url, token).map(Some)
    }

    /// Where the server answers.
    pub(crate) fn url(&self) -> &str {
        &self.base
    }

    /// `GET path` with `params`, the answer's bytes; an error answer
    /// becomes an error carrying the server's message.
    pub(crate) fn get(&self, path: &str, params: &[(String, String)]) -> Result<Vec<u8>> {
        let mut url = format!("{}{path}", self.base);
        if !params.is_empty() {
            url.push('?');
            url.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params)
                    .finish(),
            );
        }
        let mut req = self.client.get(&url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .with_context(|| format!("asking the server at {}", self.base))?;
        let status = resp.status();
        let body = resp.bytes()?.to_vec();
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            if status == reqwest::StatusCode::UNAUTHORIZED {
                bail!("{message} (the server wants a token: --api-token or TICKS_API_TOKEN)");
            }
            bail!("{message} (HTTP {status})");
        }
        Ok(body)
    }

    /// `GET path` with `params`, as JSON.
    pub(crate) fn get_json(
        &self,
        path: &str,
        params: &[(String, String)],
    ) -> Result<serde_json::Value> {
        let body = self.get(path, params)?;
        serde_json::from_slice(&body).context("the server's answer is not JSON")
    }
}

/// Whether process `pid` runs (a signal 0 reaches it).
fn process_runs(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    match rustix::process::Pid::from_raw(pid) {
        // Another user's process answers "not permitted", and runs.
        Some(pid) => match rustix::process::test_kill_process(pid) {
            Ok(()) => true,
            Err(e) => e == rustix::io::Errno::PERM,
        },
        None => false,
    }
}
