//! Simulated learners: an agent of either posterior family plus a task of
//! its own to act in, and the blocks ([`Cohort`]s) the runtime steps them
//! in. Pure and synchronous; the runtime only moves their messages.
//!
//! [`SimLearner`] and [`SimConfig`] are what the runtime asks of a learner
//! and of the configuration every learner of a run shares; [`Learner`]
//! (counts over a tabular [`Task`]) and [`ContextualLearner`] (a Bayesian
//! linear regression over a [`ContextualTask`](crate::env::ContextualTask))
//! implement them, statically dispatched.

mod cohort;
mod contextual;
mod tabular;

use std::fmt::{Debug, Display};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use cohort::{Cohort, CohortTrial};
pub use contextual::{ContextualConfig, ContextualLearner, ContextualState};
pub use tabular::{Learner, LearnerConfig, LearnerState};

use crate::env::{ContextualEnvironment, Task};
use crate::error::Result;
use crate::model::Evidence;
use crate::share::{Aggregator, Family, OthersUpdate, Recovery, ShareMessage, Sharing};

/// A task that simulated learners run on, and the configuration they take:
/// every [`Task`] (tabular learners, [`LearnerConfig`]) and the built-in
/// contextual tasks ([`ContextualConfig`]). A [`Scenario`](crate::Scenario)
/// and every runtime are generic over it.
pub trait Workload: Clone + Debug + Send + Sync + 'static {
    /// What every learner of a run on it shares.
    type Config: SimConfig<Task = Self>;
}

impl<T: Task> Workload for T {
    type Config = LearnerConfig<T>;
}

impl Workload for ContextualEnvironment {
    type Config = ContextualConfig;
}

/// What every learner of a run shares, as the runtime sees it: how to make,
/// rebuild and restore learners, the aggregator they share through, and
/// how the run is measured.
pub trait SimConfig: Clone + Debug + Send + Sync + 'static {
    /// The task, before any drift.
    type Task: Clone + Debug + Send + Sync + 'static;
    /// The learner this configures.
    type Learner: SimLearner;
    /// The posterior family its evidence belongs to.
    type Family: Family;
    /// How its agents choose.
    type Policy: Copy + Debug + Display + PartialEq + Send + Sync + 'static;

    /// The true task, before any drift.
    fn task(&self) -> &Self::Task;

    /// A short name of the kind of task, for records and summaries.
    fn kind(&self) -> &str;

    /// Learner `id` of repetition `rep` in a run seeded `seed`.
    fn learner(&self, seed: u64, rep: u32, id: u32) -> Self::Learner;

    /// Learner `rec.learner` rebuilt after crashing in trial `trial`, from
    /// the aggregator's record of it, with a stream derived afresh from
    /// (seed, repetition, id, trial); its running totals carry over.
    fn recover(
        &self,
        seed: u64,
        rep: u32,
        trial: u64,
        rec: &Recovery,
        stats: LearnerStats,
    ) -> Self::Learner;

    /// The learner `saved` describes, continuing exactly where it stopped;
    /// a state that does not fit is refused.
    fn restore(&self, saved: <Self::Learner as SimLearner>::State) -> Result<Self::Learner>;

    /// The key layout the protocol sees: keys (rows) and the numbers of
    /// evidence per key.
    fn shape(&self) -> crate::model::Shape;

    /// An aggregator for `learners` learners of this configuration.
    fn aggregator(&self, learners: usize) -> Aggregator<Self::Family>;

    /// How learners share.
    fn sharing(&self) -> Sharing;

    /// How learners choose.
    fn policy(&self) -> Self::Policy;

    /// The same learners with another share rule and downlink.
    fn with_sharing(&self, sharing: Sharing) -> Result<Self>;

    /// The same learners choosing by `policy`.
    fn with_policy(&self, policy: Self::Policy) -> Result<Self>;

    /// The factor every contribution decays by per trial (1: none).
    fn forgetting(&self) -> f64 {
        1.0
    }

    /// Whether the task knows its expected rewards, so regret is measured.
    fn measures_regret(&self) -> bool;

    /// Whether a policy loss can be evaluated (tasks with a known MDP).
    fn evaluates_policy(&self) -> bool {
        false
    }

    /// The steps at which the task changes.
    fn change_steps(&self) -> Vec<u64>;

    /// About how many bytes one learner takes, for the memory estimate.
    fn learner_bytes(&self) -> u64;

    /// The error of the aggregator's `global` evidence against `truth` (a
    /// copy of the task, advanced here to `step`), if the truth is known.
    fn global_error(&self, truth: &mut Self::Task, step: u64, global: &Evidence) -> Option<f64>;
}

/// What a learner of configuration `C` saves for a checkpoint.
pub type StateOf<C> = <<C as SimConfig>::Learner as SimLearner>::State;

/// A simulated learner, as a [`Cohort`] steps it.
pub trait SimLearner: Clone + Debug + Send + Sync + 'static {
    /// Everything a checkpoint keeps of it.
    type State: Clone + Debug + Send + Sync + Serialize + DeserializeOwned + 'static;

    /// Its id.
    fn id(&self) -> u32;

    /// Its running totals.
    fn stats(&self) -> LearnerStats;

    /// The running totals a saved state holds.
    fn saved_stats(state: &Self::State) -> LearnerStats;

    /// A trial of `steps` decisions, then a share check if one is due.
    fn trial(&mut self, steps: u64) -> Option<ShareMessage>;

    /// Sends every key changed since it was last sent.
    fn flush(&mut self) -> Option<ShareMessage>;

    /// Sends again everything sent since the aggregator restarted.
    fn resend(&mut self) -> Option<ShareMessage>;

    /// Takes the aggregator's word on the others' evidence (from the run's
    /// own aggregator, so not re-checked).
    fn absorb(&mut self, update: &OthersUpdate);

    /// Its metrics now; the policy loss only if `evaluate`.
    fn metrics(&self, evaluate: bool) -> LearnerMetrics;

    /// Its state, for a checkpoint.
    fn save(&self) -> Self::State;

    /// How many more observations it can make with every share check
    /// sending nothing.
    fn quiet_observations(&self) -> u64;
}

/// A learner's running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LearnerStats {
    /// Steps taken.
    pub steps: u64,
    /// Reward earned.
    pub reward: f64,
    /// Cumulative pseudo-regret `Σ (μ* − μ_a)`; tasks that know their
    /// expected rewards (bandits) only.
    pub regret: f64,
    /// Steps that took a best action; likewise.
    pub optimal_actions: u64,
}

/// A snapshot of one learner for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct LearnerMetrics {
    /// Its running totals.
    pub stats: LearnerStats,
    /// `Σ_r KL(θ_true(r) ‖ mean(combined(r)))`, if the task knows its truth.
    pub model_kl: Option<f64>,
    /// `V*(s₀) − V^π(s₀)` of π greedy on the combined mean, when evaluated
    /// (MDP tasks).
    pub policy_loss: Option<f64>,
}

/// The learners that crash in trial `trial` when each fails with
/// probability `p`: drawn from a stream of their own, so the same run with
/// the same fault rate loses the same learners.
pub fn crashed(seed: u64, rep: u32, trial: u64, agents: u32, p: f64) -> Vec<u32> {
    use rand::RngExt;
    if p <= 0.0 {
        return Vec::new();
    }
    let mut rng = crate::rng::fault_rng(seed, rep, trial);
    (0..agents).filter(|_| rng.random::<f64>() < p).collect()
}
