//! What crosses the wire between learner processes and the aggregator.
//!
//! Every message names its run ([`RunId`]), so a peer of another run or of
//! another protocol version is refused before anything changes. Shares
//! carry full counts with sequence numbers, as in one process, so a message
//! delivered twice or late changes nothing.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::learner::{LearnerMetrics, LearnerStats};
use crate::model::Shape;
use crate::share::{OthersUpdate, Recovery, ShareMessage};

/// The version of these messages; a peer speaking another is refused.
pub const PROTOCOL: u32 = 1;

/// Which run a peer belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunId {
    /// The sender's [`PROTOCOL`].
    pub protocol: u32,
    /// The scenario's fingerprint for a simulation, or any name an
    /// application chooses.
    pub name: String,
    /// The task's shape: rows and outcomes of every message.
    pub shape: Shape,
    /// Learner ids run from 0 to this.
    pub agents: u32,
    /// The repetition, for a simulation (0 otherwise).
    pub rep: u32,
}

impl RunId {
    /// A run of this protocol version.
    pub fn new(name: impl Into<String>, shape: Shape, agents: u32, rep: u32) -> Self {
        Self {
            protocol: PROTOCOL,
            name: name.into(),
            shape,
            agents,
            rep,
        }
    }
}

/// A process's learners `ids` join the run, or rejoin it after the process
/// restarted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Join {
    /// The run it means to join.
    pub run: RunId,
    /// Its learners: a block of ids no other live process holds.
    pub ids: Range<u32>,
    /// The learners are alive and hold everything they learned: the
    /// aggregator restarted and lost their session. They will resend their
    /// full counts; nothing is rebuilt.
    #[serde(default)]
    pub resync: bool,
}

/// The aggregator's welcome.
#[derive(Debug, Clone, Serialize, Deserialize, kameo::Reply)]
pub struct Joined {
    /// Names this incarnation of the process; its syncs carry it, and a
    /// later join of the same ids supersedes it.
    pub session: u64,
    /// The last trial the block reported before; 0 for a new block.
    pub resume_after: u64,
    /// For a rejoining block, each learner's record: what it last shared
    /// and everyone else's counts, to rebuild it from. Empty for a new one.
    pub recoveries: Vec<Recovery>,
    /// For a rejoining block, each learner's running totals as last
    /// reported, in id order; they are the run's measurements and carry over.
    pub stats: Vec<LearnerStats>,
}

/// A process's learners hand over their shares and ask what the others
/// learned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sync {
    /// From [`Joined::session`].
    pub session: u64,
    /// The block the session joined with.
    pub ids: Range<u32>,
    /// Share messages of learners in `ids`, in the order they were made.
    pub shares: Vec<ShareMessage>,
    /// Send the others' counts of every row, not only the changed ones: after
    /// a lost reply, whose rows would otherwise never come again.
    pub full: bool,
    /// How far a simulated block has come (none from an application).
    pub progress: Option<Progress>,
}

/// How far a simulated block has come.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    /// The last trial every learner of the block finished.
    pub reached: u64,
    /// Every learner's running totals after it, in id order.
    pub stats: Vec<Totals>,
    /// Metrics at the record trials since the last sync, in trial order.
    pub records: Vec<(u64, Vec<LearnerMetrics>)>,
}

/// A learner's running totals as they travel: a MessagePack array, not a
/// map with field names, since every sync carries one per learner.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Totals(pub u64, pub f64, pub f64, pub u64);

impl From<LearnerStats> for Totals {
    fn from(s: LearnerStats) -> Self {
        Totals(s.steps, s.reward, s.regret, s.optimal_actions)
    }
}

impl From<Totals> for LearnerStats {
    fn from(Totals(steps, reward, regret, optimal_actions): Totals) -> Self {
        LearnerStats {
            steps,
            reward,
            regret,
            optimal_actions,
        }
    }
}

/// The aggregator's answer to a [`Sync`].
#[derive(Debug, Clone, Serialize, Deserialize, kameo::Reply)]
pub struct Synced {
    /// The others' counts for learners in the block, where they changed.
    pub updates: Vec<OthersUpdate>,
    /// Set by the client, not sent: the aggregator had restarted, and the
    /// block rejoined to make this sync. Its learners must now
    /// [`resend`](crate::Agent::resend) everything they shared.
    #[serde(skip)]
    pub restarted: bool,
}

pub use crate::error::Refusal;
