//! ClickHouse's HTTP interface: a query is the body of a POST, an insert
//! is a query with its rows after it, settings are URL parameters.
//!
//! Several URLs may be given: each request tries them in turn from the
//! last one that answered, so a server that is down costs one failed
//! connection per request, not every request's timeout.
//!
//! On replicated tables with quorum writes (see `schema.rs`), two answers
//! are waited out rather than returned: a quorum insert refused because
//! another one into the table is still reaching its quorum (ClickHouse
//! 18.16 writes them one at a time per table), and a read refused by a
//! replica that lacks the last quorum write (it is asked of the next URL).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE`: another quorum insert into the
/// table has not reached its quorum yet; nothing of this one was written.
const QUORUM_BUSY: u32 = 286;
/// `REPLICA_IS_NOT_IN_QUORUM`: this replica lacks a part written with
/// quorum (`select_sequential_consistency`); another replica may have it.
const NOT_IN_QUORUM: u32 = 289;
/// How long a request waits out [`QUORUM_BUSY`] and [`NOT_IN_QUORUM`]
/// before it fails with them.
const QUORUM_PATIENCE: Duration = Duration::from_secs(20);

/// Why a request to ClickHouse failed.
#[derive(Debug, thiserror::Error)]
pub enum ChError {
    /// No server could be reached (connection refused, timed out, DNS).
    #[error("ClickHouse is unreachable: {0}")]
    Unreachable(String),
    /// A server answered with an error (its exception text).
    #[error("ClickHouse answered {status}: {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// ClickHouse's exception text.
        message: String,
    },
}

impl ChError {
    /// The server's exception code (`Code: 60, ...` -> 60), when it sent one.
    pub fn code(&self) -> Option<u32> {
        match self {
            ChError::Server { message, .. } => message
                .strip_prefix("Code: ")
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|digits| digits.parse().ok()),
            ChError::Unreachable(_) => None,
        }
    }
}

/// The servers of one deployment and the account Ticks uses on them.
pub struct Client {
    urls: Vec<String>,
    user: Option<String>,
    password: Option<String>,
    agent: ureq::Agent,
    /// Settings every request carries (a replicated deployment's quorum).
    settings: Vec<(String, String)>,
    /// The URL that answered last: requests start there.
    current: AtomicUsize,
}

impl Client {
    /// A client of the servers at `urls` (tried in turn), with
    /// `timeout` for a whole request.
    pub fn new(
        urls: Vec<String>,
        user: Option<String>,
        password: Option<String>,
        timeout: Duration,
    ) -> Client {
        Client {
            agent: agent(timeout),
            urls: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            user,
            password,
            settings: Vec::new(),
            current: AtomicUsize::new(0),
        }
    }

    /// This client, with `settings` on every request it sends.
    pub fn with_settings(mut self, settings: Vec<(String, String)>) -> Client {
        self.settings = settings;
        self
    }

    /// The URLs, as configured.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// A client of one of this client's servers only (DDL on each node of
    /// a cluster without distributed DDL).
    pub fn node(&self, url: &str) -> Client {
        Client {
            urls: vec![url.to_string()],
            user: self.user.clone(),
            password: self.password.clone(),
            agent: self.agent.clone(),
            settings: self.settings.clone(),
            current: AtomicUsize::new(0),
        }
    }

    /// Another client of the same servers whose requests may take up to
    /// `timeout` (an upgrade's statements).
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            urls: self.urls.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            agent: agent(timeout),
            settings: self.settings.clone(),
            current: AtomicUsize::new(self.current.load(Ordering::Relaxed)),
        }
    }

    /// Another client of the same servers.
    pub fn copy(&self) -> Client {
        Client {
            urls: self.urls.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            agent: self.agent.clone(),
            settings: self.settings.clone(),
            current: AtomicUsize::new(self.current.load(Ordering::Relaxed)),
        }
    }

    /// Runs `sql` and returns the answer's bytes.
    pub fn query(&self, sql: &str) -> Result<Vec<u8>, ChError> {
        self.request(&[], sql.as_bytes(), None)
    }

    /// Runs `sql` and returns the answer as text.
    pub fn query_text(&self, sql: &str) -> Result<String, ChError> {
        let bytes = self.query(sql)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Runs `sql` (an `INSERT ... FORMAT X`) with `rows` as its data, and
    /// with `settings`.
    pub fn insert(&self, sql: &str, rows: &[u8], settings: &[(&str, &str)]) -> Result<(), ChError> {
        self.request(settings, rows, Some(sql)).map(|_| ())
    }

    /// Sends one request, to each URL in turn until one answers, waiting
    /// out a busy quorum and replicas behind it (see the module's doc).
    fn request(
        &self,
        settings: &[(&str, &str)],
        body: &[u8],
        query_param: Option<&str>,
    ) -> Result<Vec<u8>, ChError> {
        let deadline = Instant::now() + QUORUM_PATIENCE;
        let mut pause = Duration::from_millis(5);
        loop {
            let answer = self.request_once(settings, body, query_param);
            let waits = match &answer {
                Err(e) => matches!(e.code(), Some(QUORUM_BUSY | NOT_IN_QUORUM)),
                Ok(_) => false,
            };
            if !waits || Instant::now() + pause > deadline {
                return answer;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Sends one request, to each URL in turn until one answers (a replica
    /// not in the quorum counts as not answering).
    fn request_once(
        &self,
        settings: &[(&str, &str)],
        body: &[u8],
        query_param: Option<&str>,
    ) -> Result<Vec<u8>, ChError> {
        let start = self.current.load(Ordering::Relaxed);
        let mut unreachable = Vec::new();
        let mut behind = None;
        for i in 0..self.urls.len() {
            let at = (start + i) % self.urls.len();
            let url = &self.urls[at];
            let mut request = self.agent.post(url.as_str());
            if let Some(sql) = query_param {
                request = request.query("query", sql);
            }
            for (name, value) in &self.settings {
                request = request.query(name.as_str(), value.as_str());
            }
            for (name, value) in settings {
                request = request.query(*name, *value);
            }
            if let Some(user) = &self.user {
                request = request.header("X-ClickHouse-User", user.as_str());
            }
            if let Some(password) = &self.password {
                request = request.header("X-ClickHouse-Key", password.as_str());
            }
            match request.send(body) {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let bytes = response
                        .body_mut()
                        .with_config()
                        .limit(u64::MAX)
                        .read_to_vec()
                        .map_err(|e| ChError::Unreachable(format!("{url}: {e}")))?;
                    let answer = if status == 200 {
                        Ok(bytes)
                    } else {
                        Err(ChError::Server {
                            status,
                            message: String::from_utf8_lossy(&bytes).trim().to_string(),
                        })
                    };
                    match answer {
                        Err(error) if error.code() == Some(NOT_IN_QUORUM) => behind = Some(error),
                        answer => {
                            self.current.store(at, Ordering::Relaxed);
                            return answer;
                        }
                    }
                }
                Err(e) => unreachable.push(format!("{url}: {e}")),
            }
        }
        match behind {
            Some(error) => Err(error),
            None => Err(ChError::Unreachable(unreachable.join("; "))),
        }
    }
}

/// An HTTP agent whose requests may take `timeout` in all.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// A string as a ClickHouse literal in single quotes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// An identifier (database, table, cluster name) in back quotes; `None`
/// when it is not a plain name (letters, digits, `_`), which Ticks refuses
/// rather than escapes.
pub fn ident(name: &str) -> Option<String> {
    let plain = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    plain.then(|| format!("`{name}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_what_would_end_or_bend_the_literal() {
        assert_eq!(quote("it's"), r"'it\'s'");
        assert_eq!(quote("a\\b\nc"), r"'a\\b\nc'");
    }

    #[test]
    fn only_plain_names_are_identifiers() {
        assert_eq!(ident("ticks_1").as_deref(), Some("`ticks_1`"));
        assert_eq!(ident("x`; DROP"), None);
        assert_eq!(ident(""), None);
        assert_eq!(ident("1abc"), None);
    }

    #[test]
    fn the_server_code_is_read_from_its_exception() {
        let e = ChError::Server {
            status: 404,
            message: "Code: 60, e.displayText() = DB::Exception: Table x doesn't exist".into(),
        };
        assert_eq!(e.code(), Some(60));
    }
}
