//! A tabular learner: an [`Agent`] (counts) plus a task of its own to act in.

use super::{LearnerMetrics, LearnerStats, SimConfig, SimLearner};
use crate::agent::AgentState;
use crate::agent::{Agent, AgentConfig};
use crate::env::{Environment, Task};
use crate::error::{Error, Result};
use crate::metrics::model_error;
use crate::metrics::{evidence_error, measures_regret};
use crate::model::Evidence;
use crate::model::Structure;
use crate::policy::{PlanState, Policy, policy_loss};
use crate::rng::{LearnerRng, learner_rng, recovered_rng};
use crate::share::{
    Aggregator, Dirichlet, Ledger, OthersUpdate, Recovery, ShareMessage, ShareRule, Sharing,
};

/// What every learner of a run shares: the task, and how its agent learns,
/// decides and shares. Built once, checked once.
#[derive(Debug, Clone)]
pub struct LearnerConfig<T: Task = Environment> {
    task: T,
    agent: AgentConfig,
    structure: Structure,
}

impl<T: Task> LearnerConfig<T> {
    /// Learners of `task` configured by `agent`; fails if the task's
    /// structure is invalid or the policy cannot act on it.
    pub fn new(task: T, agent: AgentConfig) -> Result<Self> {
        let structure = Structure::of(&task)?;
        agent.fits(&structure)?;
        Ok(Self {
            task,
            agent,
            structure,
        })
    }

    /// Parts already checked to fit together.
    pub(crate) fn from_parts(task: T, agent: AgentConfig, structure: Structure) -> Self {
        Self {
            task,
            agent,
            structure,
        }
    }

    /// The same task with another agent configuration.
    pub fn with_agent(&self, agent: AgentConfig) -> Result<Self> {
        agent.fits(&self.structure)?;
        Ok(Self {
            task: self.task.clone(),
            agent,
            structure: self.structure.clone(),
        })
    }

    /// The same learners sharing by `rule`.
    pub fn with_share(&self, rule: ShareRule) -> Result<Self> {
        self.with_sharing(rule.into())
    }

    /// The same learners with another share rule and downlink.
    pub fn with_sharing(&self, sharing: Sharing) -> Result<Self> {
        self.with_agent(self.agent.to_builder().sharing(sharing).build()?)
    }

    /// The same learners choosing actions by `policy`.
    pub fn with_policy(&self, policy: Policy) -> Result<Self> {
        self.with_agent(self.agent.to_builder().policy(policy).build()?)
    }

    /// The true task, before any drift.
    pub fn task(&self) -> &T {
        &self.task
    }

    /// How each learner's agent learns, decides and shares.
    pub fn agent(&self) -> &AgentConfig {
        &self.agent
    }

    /// What the learners know of the task.
    pub fn structure(&self) -> &Structure {
        &self.structure
    }
}

impl<T: Task + PartialEq> PartialEq for LearnerConfig<T> {
    fn eq(&self, other: &Self) -> bool {
        // The structure is derived from the task.
        self.task == other.task && self.agent == other.agent
    }
}

/// Everything about a learner that its configuration does not fix: what a
/// checkpoint keeps. Its task is rebuilt and advanced to its step.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LearnerState {
    state: usize,
    ledger: Ledger,
    since_check: u64,
    rng: LearnerRng,
    plan: Option<PlanState>,
    stats: LearnerStats,
}

impl LearnerState {
    /// The learner's running totals.
    pub fn stats(&self) -> LearnerStats {
        self.stats
    }
}

/// A simulated learner: an [`Agent`] acting in its own copy of a task.
#[derive(Debug, Clone)]
pub struct Learner<T: Task = Environment> {
    task: T,
    agent: Agent,
    state: usize,
    stats: LearnerStats,
}

impl<T: Task> Learner<T> {
    /// Learner `id` of repetition `rep` in a run seeded `seed`.
    pub fn new(config: &LearnerConfig<T>, seed: u64, rep: u32, id: u32) -> Self {
        let mut rng = learner_rng(seed, rep, id);
        let state = config.task.start_state(&mut rng);
        Self {
            task: config.task.clone(),
            agent: Agent::fitted(&config.structure, &config.agent, id, rng),
            state,
            stats: LearnerStats::default(),
        }
    }

    /// The learner's id.
    pub fn id(&self) -> u32 {
        self.agent.id()
    }

    /// Its agent: the part an application would drive.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The learner's state, for a checkpoint.
    pub fn save(&self) -> LearnerState {
        let agent = self.agent.save();
        LearnerState {
            state: self.state,
            ledger: agent.ledger,
            since_check: agent.since_check,
            rng: agent.rng,
            plan: agent.plan,
            stats: self.stats,
        }
    }

    /// Learner `rec.learner` rebuilt after crashing in trial `trial`, from
    /// the aggregator's record of it, with a stream derived afresh from
    /// (seed, repetition, id, trial). Its running totals are the run's
    /// measurements, not its knowledge, so they carry over.
    pub fn recover(
        config: &LearnerConfig<T>,
        seed: u64,
        rep: u32,
        trial: u64,
        rec: &Recovery,
        stats: LearnerStats,
    ) -> Self {
        let mut l = Self::new(config, seed, rep, rec.learner);
        l.agent = Agent::recovered(
            &config.structure,
            &config.agent,
            Ledger::recovered(config.task.shape(), config.agent.prior(), rec),
            recovered_rng(seed, rep, rec.learner, trial),
        );
        l.stats = stats;
        if l.stats.steps > 0 {
            l.task.advance_to(l.stats.steps - 1);
        }
        l
    }

    /// The learner `saved` describes, continuing exactly where it stopped;
    /// a state that does not fit the configuration is refused.
    pub fn restore(config: &LearnerConfig<T>, saved: LearnerState) -> Result<Self> {
        let agent = AgentState {
            ledger: saved.ledger,
            since_check: saved.since_check,
            rng: saved.rng,
            plan: saved.plan,
            retired: Vec::new(),
        };
        if saved.state >= config.structure.shape().states {
            return Err(Error::invalid(
                "learner state",
                "state",
                format!("{} is not a state of the task", saved.state),
            ));
        }
        let mut task = config.task.clone();
        // The task as it was at the learner's last step.
        if saved.stats.steps > 0 {
            task.advance_to(saved.stats.steps - 1);
        }
        Ok(Self {
            task,
            agent: Agent::restore(&config.structure, &config.agent, agent)?,
            state: saved.state,
            stats: saved.stats,
        })
    }

    /// Its side of the sharing protocol.
    pub fn ledger(&self) -> &Ledger {
        &self.agent.ledger
    }

    /// Its running totals.
    pub fn stats(&self) -> LearnerStats {
        self.stats
    }

    /// One decision, one outcome, one update.
    #[inline]
    pub fn step(&mut self) {
        self.task.advance_to(self.stats.steps);
        let action = self.agent.act(self.state);
        let t = self.task.step(self.state, action, &mut self.agent.rng);
        let row = self.task.shape().row(self.state, action);
        self.agent.record(row, t.outcome);
        self.stats.steps += 1;
        self.stats.reward += t.reward;
        if let (Some(best), Some(got)) = (
            self.task.best_expected_reward(self.state),
            self.task.expected_reward(self.state, action),
        ) {
            self.stats.regret += best - got;
            self.stats.optimal_actions += u64::from(got >= best);
        }
        // A terminal transition ends the episode; the next starts afresh
        // within the same trial, so every trial has the same number of steps.
        self.state = if t.terminal {
            self.task.start_state(&mut self.agent.rng)
        } else {
            t.next
        };
    }

    /// A trial: an episode of `steps` steps from a start state, then a share
    /// check if `check_every` steps have passed since the last one.
    pub fn trial(&mut self, steps: u64) -> Option<ShareMessage> {
        self.state = self.task.start_state(&mut self.agent.rng);
        self.agent.start_episode();
        for _ in 0..steps {
            self.step();
        }
        self.agent.share()
    }

    /// Sends every row changed since it was last sent (see
    /// [`Agent::flush`]).
    pub fn flush(&mut self) -> Option<ShareMessage> {
        self.agent.flush()
    }

    /// Takes the aggregator's word on the others' counts (from the run's
    /// own aggregator, so not re-checked).
    pub fn absorb(&mut self, update: &OthersUpdate) {
        self.agent.ledger.absorb(update);
    }

    /// The learner's metrics now, against the task as it is at its last
    /// step; the policy loss only if `evaluate`.
    pub fn metrics(&self, evaluate: bool) -> LearnerMetrics {
        let ledger = &self.agent.ledger;
        LearnerMetrics {
            stats: self.stats,
            model_kl: model_error(&self.task, |row, out| ledger.combined_alpha_into(row, out)),
            policy_loss: if evaluate {
                self.task.truth().map(|truth| match &self.agent.planner {
                    Some(p) => p.policy_loss(truth, ledger),
                    None => policy_loss(truth, self.agent.structure(), ledger),
                })
            } else {
                None
            },
        }
    }
}

impl<T: Task> SimLearner for Learner<T> {
    type State = LearnerState;

    fn id(&self) -> u32 {
        Learner::id(self)
    }

    fn stats(&self) -> LearnerStats {
        self.stats
    }

    fn saved_stats(state: &LearnerState) -> LearnerStats {
        state.stats
    }

    #[inline]
    fn trial(&mut self, steps: u64) -> Option<ShareMessage> {
        Learner::trial(self, steps)
    }

    fn flush(&mut self) -> Option<ShareMessage> {
        self.agent.flush()
    }

    fn resend(&mut self) -> Option<ShareMessage> {
        self.agent.resend()
    }

    fn absorb(&mut self, update: &OthersUpdate) {
        Learner::absorb(self, update);
    }

    fn metrics(&self, evaluate: bool) -> LearnerMetrics {
        Learner::metrics(self, evaluate)
    }

    fn save(&self) -> LearnerState {
        Learner::save(self)
    }

    fn quiet_observations(&self) -> u64 {
        self.agent.quiet_observations()
    }
}

impl<T: Task> SimConfig for LearnerConfig<T> {
    type Task = T;
    type Learner = Learner<T>;
    type Family = Dirichlet;
    type Policy = Policy;

    fn task(&self) -> &T {
        &self.task
    }

    fn kind(&self) -> &str {
        self.task.kind()
    }

    fn learner(&self, seed: u64, rep: u32, id: u32) -> Learner<T> {
        Learner::new(self, seed, rep, id)
    }

    fn recover(
        &self,
        seed: u64,
        rep: u32,
        trial: u64,
        rec: &Recovery,
        stats: LearnerStats,
    ) -> Learner<T> {
        Learner::recover(self, seed, rep, trial, rec, stats)
    }

    fn restore(&self, saved: LearnerState) -> Result<Learner<T>> {
        Learner::restore(self, saved)
    }

    fn shape(&self) -> crate::model::Shape {
        self.structure.shape()
    }

    fn aggregator(&self, learners: usize) -> Aggregator {
        self.agent.aggregator(&self.structure, learners)
    }

    fn sharing(&self) -> Sharing {
        self.agent.sharing()
    }

    fn policy(&self) -> Policy {
        self.agent.policy()
    }

    fn with_sharing(&self, sharing: Sharing) -> Result<Self> {
        LearnerConfig::with_sharing(self, sharing)
    }

    fn with_policy(&self, policy: Policy) -> Result<Self> {
        LearnerConfig::with_policy(self, policy)
    }

    fn forgetting(&self) -> f64 {
        self.agent.forgetting()
    }

    fn measures_regret(&self) -> bool {
        measures_regret(&self.task)
    }

    fn evaluates_policy(&self) -> bool {
        self.task.truth().is_some()
    }

    fn change_steps(&self) -> Vec<u64> {
        self.task.change_steps()
    }

    fn learner_bytes(&self) -> u64 {
        let shape = self.structure.shape();
        let (rows, outcomes) = (shape.rows() as u64, shape.outcomes as u64);
        let evidence = rows * (8 + 8 * outcomes);
        let planner = if self.structure.gamma() > 0.0 {
            rows * (8 * outcomes + 24)
        } else {
            0
        };
        6 * evidence + 40 * rows + planner + 2048
    }

    fn global_error(&self, truth: &mut T, step: u64, global: &Evidence) -> Option<f64> {
        truth.advance_to(step);
        evidence_error(truth, self.agent.prior(), global)
    }
}
