//! Errors that name the file, the field and the fix.
//!
//! Two families: **bad input** (a file, a setting or the data cannot support the
//! request; the message says what to change; the command line exits with 2) and
//! **internal failures** (an output could not be written, a serialiser or the tensor
//! library failed; exit 1). [`Error::is_bad_input`] tells them apart.

use std::path::PathBuf;

/// Result alias for the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong, phrased for the person who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file could not be opened or read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
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
    /// Training diverged or the model produced non-finite values under the given
    /// settings (the message names the setting to change).
    #[error("training failed: {0}")]
    Training(String),
    /// An output file or folder could not be written (internal: disk full, permissions).
    #[error("{path}: could not write: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Encoding an output failed (internal).
    #[error("{what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An error inside candle (internal).
    #[error("score model: {0}")]
    Candle(#[from] candle_core::Error),
}

impl Error {
    /// An input file could not be read.
    pub fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Read {
            path: path.into(),
            source,
        }
    }
    /// An output could not be written.
    pub fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Write {
            path: path.into(),
            source,
        }
    }
    /// Encoding `what` failed.
    pub fn encode(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Encode {
            what: what.into(),
            source: source.into(),
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

    /// Whether the user can fix this by changing an input or a setting (exit code 2),
    /// rather than an internal failure (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Read { .. }
            | Error::Format { .. }
            | Error::Data(_)
            | Error::Param { .. }
            | Error::Training(_) => true,
            Error::Write { .. } | Error::Encode { .. } | Error::Candle(_) => false,
        }
    }
}
