//! The crate's typed errors.

use std::path::PathBuf;

/// Everything that can go wrong in parbayes.
///
/// [`Error::is_bad_input`] separates the user's mistakes (a bad scenario, an
/// unreadable input file, an impossible command-line value) from failures of
/// the run itself, so the binary can exit 2 for the former.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The file is not valid TOML (or JSON, for model files).
    #[error("{source_name}:{line}:{column}: {problem}")]
    Syntax {
        /// The file.
        source_name: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What the parser said.
        problem: String,
    },
    /// An input file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An output could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The results folder cannot be created where the user asked for it.
    #[error("cannot create the results folder {}: {source}; choose another --out", path.display())]
    Unwritable {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The output folder exists and is not empty.
    #[error("{}: the results folder already exists and is not empty; choose another --out", path.display())]
    OutputExists {
        /// The folder.
        path: PathBuf,
    },
    /// Another run is writing the results folder.
    #[error("{}: the results folder is in use by another parbayes run; wait for it or choose another folder", path.display())]
    Locked {
        /// The folder.
        path: PathBuf,
    },
    /// The run was asked to stop; its checkpoints hold where it was.
    #[error("interrupted")]
    Interrupted,
    /// An actor failed or stopped unexpectedly.
    #[error("runtime failure: {0}")]
    Runtime(#[from] RuntimeError),
    /// A state, action or outcome given to an agent is outside its
    /// structure; nothing changed.
    #[error("{what} {index} is out of range; there are {count}")]
    OutOfRange {
        /// `state`, `action` or `outcome`.
        what: &'static str,
        /// The index given.
        index: usize,
        /// How many there are.
        count: usize,
    },
    /// A protocol message was refused; nothing changed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A peer in another process could not be reached, or refused us.
    #[cfg(feature = "remote")]
    #[error("remote: {0}")]
    Remote(RemoteError),
}

/// A setting given as text or a value (a share rule, a downlink, a policy)
/// that does not parse or is out of its range. It says what is wrong and
/// what is allowed; `?` lifts it into an [`Error::Invalid`] naming the
/// setting.
///
/// ```
/// use parbayes::share::ShareRule;
///
/// let e = "periodic:0".parse::<ShareRule>().unwrap_err();
/// assert_eq!(e.setting(), "share rule");
/// let lifted: parbayes::Error = e.into();
/// assert!(lifted.is_bad_input());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct ParamError {
    setting: &'static str,
    problem: String,
}

impl ParamError {
    /// `problem` with the `setting` it is about.
    pub(crate) fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        Self {
            setting,
            problem: problem.into(),
        }
    }

    /// The setting: `share rule`, `downlink` or `policy`.
    pub fn setting(&self) -> &'static str {
        self.setting
    }

    /// What is wrong and what is allowed.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl From<ParamError> for Error {
    fn from(e: ParamError) -> Self {
        Error::invalid("value", e.setting, e.problem)
    }
}

/// Why a run's actors failed. The run stops; its checkpoints hold where it
/// was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The aggregator's actor failed or stopped.
    #[error("aggregator failed: {0}")]
    Aggregator(String),
    /// A learner cohort's actor failed or stopped.
    #[error("learner cohort failed: {0}")]
    Cohort(String),
    /// A learner crashed by fault injection could not be crashed or was
    /// not restarted.
    #[error("learner {learner}: {problem}")]
    Restart {
        /// Its id.
        learner: u32,
        /// What went wrong.
        problem: String,
    },
    /// The fault injected into a learner (its supervisor restarts it).
    #[error("injected fault")]
    InjectedFault,
    /// A part of the run ended before its last trial without saying why.
    #[error("{0} stopped early")]
    StoppedEarly(&'static str),
    /// The tokio runtime could not be started.
    #[error("cannot start tokio: {0}")]
    Tokio(String),
    /// A checkpoint or snapshot is not what the run wrote.
    #[error("{0}")]
    Checkpoint(String),
    /// The protocol's schedule broke an invariant (a bug; please report it).
    #[error("{0}")]
    Invariant(String),
}

/// Why the aggregator or an agent refused a protocol message. A refused
/// message changes nothing, so a caller may log it and carry on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The sender has not joined the aggregator, or has left it.
    #[error("learner {0} is not a member of the aggregator")]
    NotMember(u32),
    /// A learner tried to join under an id that is already a member.
    #[error("learner {0} has already joined")]
    AlreadyMember(u32),
    /// The message does not fit the task: wrong outcome count, a row that
    /// does not exist, counts that are negative or not finite.
    #[error("malformed message for learner {learner}: {problem}")]
    Malformed {
        /// The learner the message is from (share) or for (update).
        learner: u32,
        /// What is wrong with it.
        problem: String,
    },
    /// Every row of a share message is older than what the aggregator holds
    /// for its learner: a duplicate or a message overtaken by a newer one.
    #[error(
        "share message {seq} from learner {learner} is stale: every row it carries is already held in a newer version"
    )]
    Stale {
        /// The sender.
        learner: u32,
        /// The message's sequence number.
        seq: u64,
    },
    /// An update meant for another learner.
    #[error("an update for learner {meant_for} was delivered to learner {delivered_to}")]
    Misrouted {
        /// The learner the update names.
        meant_for: u32,
        /// The learner it reached.
        delivered_to: u32,
    },
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
                | Error::Locked { .. }
        )
    }

    /// An [`Error::Invalid`] naming the source, the field and the problem;
    /// each is cut to a readable length, since they may echo the input.
    pub fn invalid(
        source_name: impl Into<String>,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            source_name: clip(source_name.into()),
            field: clip(field.into()),
            problem: clip(problem.into()),
        }
    }
}

/// `text`, cut to at most 300 characters with the cut said.
fn clip(mut text: String) -> String {
    const MOST: usize = 300;
    if let Some((cut, _)) = text.char_indices().nth(MOST) {
        let dropped = text[cut..].chars().count();
        text.truncate(cut);
        text.push_str(&format!("… ({dropped} more characters)"));
    }
    text
}

/// Reads the text file `path` of at most `limit` bytes; anything larger (a
/// device such as `/dev/zero`, a file given by mistake) is refused before it
/// is read whole. `what` says what the file should be.
pub(crate) fn read_text(path: &std::path::Path, limit: u64, what: &str) -> Result<String> {
    use std::io::Read;
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(read_err)?
        .take(limit + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > limit {
        return Err(Error::invalid(
            path.display().to_string(),
            "(file)",
            format!("larger than {} MiB; {what}", limit >> 20),
        ));
    }
    Ok(text)
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A peer in another process could not be reached, refused us, or failed.
#[cfg(feature = "remote")]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The aggregator refused a join or a sync; nothing changed there.
    #[error("the aggregator refused: {0}")]
    Refused(Refusal),
    /// No aggregator answered at the address in time.
    #[error("no parbayes aggregator answered at {addr} within {patience:?}")]
    Unreachable {
        /// Where it was looked for.
        addr: String,
        /// How long.
        patience: std::time::Duration,
    },
    /// The aggregator stopped answering (or failed) mid-run.
    #[error("the aggregator did not answer for {patience:?}: {problem}")]
    Silent {
        /// How long it was waited for.
        patience: std::time::Duration,
        /// What the transport said.
        problem: String,
    },
    /// The aggregator failed on its side.
    #[error("the aggregator failed: {0}")]
    Failed(String),
    /// A sync was tried before joining.
    #[error("sync before join")]
    NotJoined,
    /// An update for a learner that is not among the agents synced.
    #[error("an update for learner {0}, not among these agents")]
    ForeignUpdate(u32),
    /// A block of learners went silent for longer than the patience.
    #[error(
        "learners {}..{} have not been heard from for {seconds:.0} s (patience {patience:?})",
        ids.start,
        ids.end
    )]
    Unheard {
        /// The block's ids.
        ids: std::ops::Range<u32>,
        /// Seconds since it was last heard from.
        seconds: f64,
        /// The run's patience.
        patience: std::time::Duration,
    },
    /// A learner process could not be started.
    #[error("cannot start the process for learners {}..{}: {problem}", ids.start, ids.end)]
    Spawn {
        /// The block it was to run.
        ids: std::ops::Range<u32>,
        /// What the operating system said.
        problem: String,
    },
    /// A learner process kept failing.
    #[error(
        "the process for learners {}..{} exited ({status}) at trial {reached}, after {restarts} restarts",
        ids.start,
        ids.end
    )]
    Exited {
        /// The block it ran.
        ids: std::ops::Range<u32>,
        /// How it exited.
        status: String,
        /// The last trial it reported.
        reached: u64,
        /// Restarts tried.
        restarts: u32,
    },
    /// The network node, a listener or the metrics endpoint could not be
    /// set up.
    #[error("{what}: {problem}")]
    Transport {
        /// What was being set up.
        what: String,
        /// Why it failed.
        problem: String,
    },
}

#[cfg(feature = "remote")]
impl From<RemoteError> for Error {
    fn from(e: RemoteError) -> Self {
        Error::Remote(e)
    }
}

/// Why the aggregator refused a message. Nothing changed.
#[cfg(feature = "remote")]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The peer speaks another protocol version.
    #[error("protocol version {theirs}; this aggregator speaks {ours}")]
    Protocol {
        /// Ours.
        ours: u32,
        /// The peer's.
        theirs: u32,
    },
    /// The peer belongs to another run (scenario, shape, agents or repetition).
    #[error("the peer belongs to another run: {0}")]
    OtherRun(String),
    /// The ids are empty, out of range, or overlap another live block.
    #[error("learner ids {start}..{end}: {problem}")]
    Ids {
        /// First id.
        start: u32,
        /// One past the last.
        end: u32,
        /// What is wrong with them.
        problem: String,
    },
    /// The session is unknown, or a later join of its ids superseded it.
    #[error("session {0} is unknown or superseded; rejoin")]
    Session(u64),
    /// A share message is malformed or not from the block.
    #[error("{0}")]
    Malformed(String),
}
