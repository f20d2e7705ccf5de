//! The query error type.

/// Why a query could not run. `InvalidParam` is the caller's mistake (an
/// HTTP 400); `Engine` is ours (a 500).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A parameter is unknown or has an invalid value.
    #[error("{param}: {message}")]
    InvalidParam {
        /// The parameter's name.
        param: String,
        /// What is wrong with it.
        message: String,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] ticks_engine::Error),
    /// A backend failed in a way of its own (an import's input, a remote
    /// database).
    #[error("{0}")]
    Backend(String),
    /// The backend cannot be reached now; the caller may retry (an HTTP
    /// 503, so that Meta redelivers a webhook).
    #[error("{0}")]
    Unavailable(String),
    /// The backend does not answer this kind of question (an HTTP 501).
    #[error("{0}")]
    Unsupported(String),
}
