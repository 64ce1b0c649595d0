//! A contextual learner: a [`LinearAgent`] plus a contextual task of its own
//! to act in.

use serde::{Deserialize, Serialize};

use super::{LearnerMetrics, LearnerStats, SimConfig, SimLearner};
use crate::env::{ContextualEnvironment, ContextualTask};
use crate::error::{Error, Result};
use crate::linear::{Gaussian, LinearAgent, LinearAgentState, LinearConfig, LinearModel};
use crate::linear::{LinearPolicy, MAX_FEATURES};
use crate::model::Evidence;
use crate::rng::{learner_rng, recovered_rng};
use crate::share::{Aggregator, OthersUpdate, Recovery, ShareMessage, Sharing};

/// What every contextual learner of a run shares: the task, and how its
/// agent learns, decides and shares. Built once, checked once.
///
/// ```
/// use parbayes::env::{ContextualEnvironment, LinearBandit};
/// use parbayes::learner::{Cohort, ContextualConfig, SimLearner};
/// use parbayes::linear::LinearConfig;
///
/// let task = LinearBandit::new(vec![vec![1.0, 0.0], vec![0.0, 1.0]], 0.1)?;
/// let agent = LinearConfig::builder(2, 2).build()?;
/// let config = ContextualConfig::new(ContextualEnvironment::Linear(task), agent)?;
/// let mut cohort = Cohort::new(&config, 7, 0, 0..4);
/// let trial = cohort.trial(&[], 100, true, false);
/// assert_eq!(trial.metrics.len(), 4);
/// assert!(cohort.learners().iter().all(|l| l.stats().steps == 100));
/// # Ok::<(), parbayes::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ContextualConfig<C: ContextualTask = ContextualEnvironment> {
    task: C,
    agent: LinearConfig,
}

impl<C: ContextualTask> ContextualConfig<C> {
    /// Learners of `task` configured by `agent`: a disjoint model (the task
    /// shows every arm one feature vector) with the task's arms and
    /// features.
    pub fn new(task: C, agent: LinearConfig) -> Result<Self> {
        let bad = |field: &str, problem: String| Err(Error::invalid("learner", field, problem));
        if agent.model() != LinearModel::Disjoint {
            return bad(
                "model",
                "a simulated task shows every arm one feature vector; use the disjoint model"
                    .into(),
            );
        }
        if agent.arms() != task.arms() {
            return bad(
                "arms",
                format!("{} arms; the task has {}", agent.arms(), task.arms()),
            );
        }
        let d = task.context_len();
        if agent.dim() != d || d == 0 || d > MAX_FEATURES {
            return bad(
                "features",
                format!("{}; the task's contexts have {d}", agent.dim()),
            );
        }
        Ok(Self { task, agent })
    }

    /// The true task, before any drift.
    pub fn task(&self) -> &C {
        &self.task
    }

    /// How each learner's agent learns, decides and shares.
    pub fn agent(&self) -> &LinearConfig {
        &self.agent
    }

    /// The same task with another agent configuration.
    pub fn with_agent(&self, agent: LinearConfig) -> Result<Self> {
        Self::new(self.task.clone(), agent)
    }
}

/// Everything about a contextual learner that its configuration does not
/// fix: what a checkpoint keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContextualState {
    agent: LinearAgentState,
    /// The task's position in a stream of its own (a dataset's order).
    task: Vec<u64>,
    stats: LearnerStats,
}

/// A simulated contextual learner: a [`LinearAgent`] deciding in its own
/// copy of a contextual task, one context per step.
#[derive(Debug, Clone)]
pub struct ContextualLearner<C: ContextualTask = ContextualEnvironment> {
    task: C,
    agent: LinearAgent,
    /// The context of the current decision.
    context: Vec<f64>,
    stats: LearnerStats,
}

impl<C: ContextualTask> ContextualLearner<C> {
    /// Learner `id` of repetition `rep` in a run seeded `seed`.
    pub fn new(config: &ContextualConfig<C>, seed: u64, rep: u32, id: u32) -> Self {
        let agent = LinearAgent::with_rng(&config.agent, id, learner_rng(seed, rep, id));
        Self::with_agent(config, agent, LearnerStats::default())
    }

    fn with_agent(config: &ContextualConfig<C>, agent: LinearAgent, stats: LearnerStats) -> Self {
        let mut task = config.task.clone();
        // The task as it was at the learner's last step.
        if stats.steps > 0 {
            task.advance_to(stats.steps - 1);
        }
        Self {
            context: vec![0.0; task.context_len()],
            task,
            agent,
            stats,
        }
    }

    /// Its agent: the part an application would drive.
    pub fn agent(&self) -> &LinearAgent {
        &self.agent
    }

    /// One context, one decision, one reward, one update.
    #[inline]
    pub fn step(&mut self) {
        self.task.advance_to(self.stats.steps);
        self.task
            .next_context(self.agent.rng_mut(), &mut self.context);
        // The configuration matched the agent to the task, and tasks give
        // finite features, so the context fits.
        let arm = self
            .agent
            .decide(&self.context)
            .expect("the task's context fits its agent");
        let reward = self.task.reward(arm, self.agent.rng_mut());
        self.agent
            .observe(&self.context, arm, reward)
            .expect("the task's context fits its agent");
        self.stats.steps += 1;
        self.stats.reward += reward;
        if let (Some(best), Some(got)) = (
            self.task.best_expected_reward(),
            self.task.expected_reward(arm),
        ) {
            self.stats.regret += best - got;
            self.stats.optimal_actions += u64::from(got >= best);
        }
    }

    /// The posterior mean of every arm's θ.
    fn means(&self) -> Vec<Vec<f64>> {
        (0..self.agent.arms())
            .map(|a| self.agent.mean(a).map(<[f64]>::to_vec).unwrap_or_default())
            .collect()
    }
}

impl<C: ContextualTask + std::fmt::Debug> SimLearner for ContextualLearner<C> {
    type State = ContextualState;

    fn id(&self) -> u32 {
        self.agent.id()
    }

    fn stats(&self) -> LearnerStats {
        self.stats
    }

    fn saved_stats(state: &ContextualState) -> LearnerStats {
        state.stats
    }

    fn trial(&mut self, steps: u64) -> Option<ShareMessage> {
        for _ in 0..steps {
            self.step();
        }
        self.agent.share()
    }

    fn flush(&mut self) -> Option<ShareMessage> {
        self.agent.flush()
    }

    fn resend(&mut self) -> Option<ShareMessage> {
        self.agent.resend()
    }

    fn absorb(&mut self, update: &OthersUpdate) {
        // From the run's own aggregator, which sums well-formed messages
        // of this shape: nothing to refuse.
        let _ = self.agent.absorb(update);
    }

    fn metrics(&self, _evaluate: bool) -> LearnerMetrics {
        LearnerMetrics {
            stats: self.stats,
            model_kl: self.task.model_error(&self.means()),
            policy_loss: None,
        }
    }

    fn save(&self) -> ContextualState {
        ContextualState {
            agent: self.agent.save(),
            task: self.task.stream_position(),
            stats: self.stats,
        }
    }

    fn quiet_observations(&self) -> u64 {
        self.agent.quiet_observations()
    }
}

impl<C: ContextualTask + std::fmt::Debug + PartialEq> SimConfig for ContextualConfig<C> {
    type Task = C;
    type Learner = ContextualLearner<C>;
    type Family = Gaussian;
    type Policy = LinearPolicy;

    fn task(&self) -> &C {
        &self.task
    }

    fn kind(&self) -> &str {
        self.task.kind()
    }

    fn learner(&self, seed: u64, rep: u32, id: u32) -> ContextualLearner<C> {
        ContextualLearner::new(self, seed, rep, id)
    }

    fn recover(
        &self,
        seed: u64,
        rep: u32,
        trial: u64,
        rec: &Recovery,
        stats: LearnerStats,
    ) -> ContextualLearner<C> {
        let rng = recovered_rng(seed, rep, rec.learner, trial);
        let agent = LinearAgent::recovered(&self.agent, rec, rng);
        ContextualLearner::with_agent(self, agent, stats)
    }

    fn restore(&self, saved: ContextualState) -> Result<ContextualLearner<C>> {
        let agent = LinearAgent::restore(&self.agent, saved.agent)?;
        let mut learner = ContextualLearner::with_agent(self, agent, saved.stats);
        learner
            .task
            .resume_at(&saved.task)
            .map_err(|p| Error::invalid("learner state", "task", p))?;
        Ok(learner)
    }

    fn shape(&self) -> crate::model::Shape {
        self.agent.shape()
    }

    fn aggregator(&self, learners: usize) -> Aggregator<Gaussian> {
        self.agent.aggregator(learners)
    }

    fn sharing(&self) -> Sharing {
        self.agent.sharing()
    }

    fn policy(&self) -> LinearPolicy {
        self.agent.policy()
    }

    fn with_sharing(&self, sharing: Sharing) -> Result<Self> {
        self.with_agent(self.agent.to_builder().sharing(sharing).build()?)
    }

    fn with_policy(&self, policy: LinearPolicy) -> Result<Self> {
        self.with_agent(self.agent.to_builder().policy(policy).build()?)
    }

    fn measures_regret(&self) -> bool {
        self.task.best_expected_reward().is_some()
    }

    fn change_steps(&self) -> Vec<u64> {
        self.task.change_steps()
    }

    fn learner_bytes(&self) -> u64 {
        let family = self.agent.family();
        let (d, keys) = (
            family.dim() as u64,
            self.agent.keys(self.agent.arms()) as u64,
        );
        // The ledger's own, sent, combined and others' statistics; each
        // key's factor, mean and b; the agent's workspace; the task's copy.
        4 * keys * 8 * family.width() as u64
            + keys * 8 * (d * d + 2 * d + 4)
            + 8 * (d * d + 4 * d)
            + self.task.copy_bytes()
            + 2048
    }

    fn global_error(&self, truth: &mut C, step: u64, global: &Evidence) -> Option<f64> {
        truth.advance_to(step);
        let family = self.agent.family();
        let means: Vec<Vec<f64>> = (0..self.agent.keys(self.agent.arms()))
            .map(|k| family.posterior_mean(global.row(k)))
            .collect();
        truth.model_error(&means)
    }
}
