//! The crate's typed errors.

use std::path::PathBuf;

/// Everything that can go wrong in parbayes.
///
/// [`Error::is_bad_input`] separates the user's mistakes (a bad scenario, an
/// unreadable input file, an impossible command-line value) from failures of
/// the run itself, so the binary can exit 2 for the former.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario value is out of range, of the wrong type or unknown.
    #[error("{source_name}: {field}: {problem}")]
    Invalid {
        /// The file (or `command line`) the value came from.
        source_name: String,
        /// The field path, e.g. `task.arms[3]` or `--agents`.
        field: String,
        /// What is wrong and what is allowed.
        problem: String,
    },
    /// The file is not valid TOML.
    #[error("{source_name}:{line}:{column}: {problem}")]
    Syntax {
        source_name: String,
        line: usize,
        column: usize,
        problem: String,
    },
    /// An input file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An output could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The results folder cannot be created where the user asked for it.
    #[error("cannot create the results folder {}: {source}; choose another --out", path.display())]
    Unwritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The output folder exists and is not empty.
    #[error("{}: the results folder already exists and is not empty; choose another --out", path.display())]
    OutputExists { path: PathBuf },
    /// The run was asked to stop; its checkpoints hold where it was.
    #[error("interrupted")]
    Interrupted,
    /// An actor failed or stopped unexpectedly.
    #[error("runtime failure: {0}")]
    Runtime(String),
}

impl Error {
    /// True when the error is the user's input, not a failure of the run.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::Invalid { .. }
                | Error::Syntax { .. }
                | Error::Read { .. }
                | Error::Unwritable { .. }
                | Error::OutputExists { .. }
        )
    }

    pub fn invalid(
        source_name: impl Into<String>,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            source_name: source_name.into(),
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
