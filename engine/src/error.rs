//! The engine's error type.

use std::path::PathBuf;

/// Errors of the storage engine. Each says which part of the store failed
/// and why; none of them is an expected outcome (a duplicate input is an
/// [`AppendOutcome`](crate::AppendOutcome), not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// sled failed (I/O, corruption it detected).
    #[error("log storage: {0}")]
    Sled(#[from] sled::Error),
    /// The full-text index failed.
    #[error("full-text index: {0}")]
    Text(String),
    /// A file of the data directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A record could not be encoded.
    #[error("encoding a record: {0}")]
    Encode(String),
    /// A stored record does not decode.
    #[error("log record {seq} is corrupt: {reason}")]
    Corrupt {
        /// Its sequence number.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The data directory was written by an incompatible version.
    #[error("data format version {found} is not supported (this build reads {expected})")]
    IncompatibleFormat {
        /// The version on disk.
        found: u32,
        /// The version this build writes.
        expected: u32,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The store is shutting down, or its writer stopped after a failure.
    #[error("the store is closed")]
    Closed,
    /// Writes are failing (a full disk, no descriptors left) and the store
    /// is recovering: nothing of the refused write was acknowledged, and it
    /// can be retried.
    #[error("the store cannot write now: {0}")]
    Unavailable(String),
    /// An invalid request to the engine itself (not a parse error of user input).
    #[error("{0}")]
    Invalid(String),
}

impl From<tantivy::TantivyError> for Error {
    fn from(e: tantivy::TantivyError) -> Self {
        Error::Text(e.to_string())
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
