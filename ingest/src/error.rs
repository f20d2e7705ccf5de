//! The ingest error type.

/// Why an input could not be parsed. Every variant names where the problem is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes are not JSON.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// A field is missing or has the wrong type or value.
    #[error("{path}: {reason}")]
    Field {
        /// Path of the field from the document root, e.g. `response.messages[0].id`.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The input is larger than accepted.
    #[error("input of {size} bytes is larger than the {limit}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl ParseError {
    pub(crate) fn field(path: impl Into<String>, reason: impl Into<String>) -> ParseError {
        ParseError::Field {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The field the error is about, when it is about one.
    pub fn field_path(&self) -> Option<&str> {
        match self {
            ParseError::Field { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// Errors of a bulk import: reading the input or writing to the store.
/// Bad lines are not errors: they are counted and reported in the
/// [`ImportReport`](crate::ImportReport).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Reading the input failed.
    #[error("reading the input: {0}")]
    Read(#[from] std::io::Error),
    /// The store refused the write.
    #[error("storing: {0}")]
    Store(#[from] ticks_engine::Error),
    /// Another backend refused the write (ClickHouse unreachable...).
    #[error("storing: {0}")]
    Target(String),
    /// The rejects file could not be written.
    #[error("writing rejects to {path}: {source}")]
    Rejects {
        /// The rejects file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
