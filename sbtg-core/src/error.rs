//! Errors that name the file, the field and the fix.

use std::path::PathBuf;

/// Result alias for the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong, phrased for the person who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A file was read but its content is not what the format requires.
    #[error("{path}: {field}: {message}")]
    Format {
        path: PathBuf,
        field: String,
        message: String,
    },
    /// The data, once read, cannot support the requested analysis.
    #[error("{0}")]
    Data(String),
    /// A configuration value is out of its valid range.
    #[error("invalid parameter `{name}`: {message}")]
    Param { name: &'static str, message: String },
    /// Training diverged or the model produced non-finite values.
    #[error("training failed: {0}")]
    Training(String),
    /// An error inside candle.
    #[error("score model: {0}")]
    Candle(#[from] candle_core::Error),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }
    pub fn format(
        path: impl Into<PathBuf>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Format {
            path: path.into(),
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn param(name: &'static str, message: impl Into<String>) -> Self {
        Error::Param {
            name,
            message: message.into(),
        }
    }
}
