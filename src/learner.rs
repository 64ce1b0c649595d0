//! A simulated learner: an [`Agent`] plus a task of its own to act in.
//! Pure and synchronous; the runtime only moves its messages.

use serde::Serialize;

use crate::agent::AgentState;
use crate::agent::{Agent, AgentConfig};
use crate::env::{Environment, Task};
use crate::error::{Error, Result};
use crate::metrics::model_error;
use crate::model::Structure;
use crate::policy::{PlanState, Policy, policy_loss};
use crate::rng::{LearnerRng, learner_rng, recovered_rng};
use crate::share::{Ledger, OthersUpdate, Recovery, ShareMessage, ShareRule, Sharing};

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

/// A contiguous block of learners that one actor steps in a loop, so a trial
/// of a thousand learners costs a handful of messages, not a thousand.
/// Results do not depend on how learners are split into cohorts.
#[derive(Debug, Clone)]
pub struct Cohort<T: Task = Environment> {
    learners: Vec<Learner<T>>,
    /// What a crashed learner is rebuilt with.
    config: LearnerConfig<T>,
    seed: u64,
    rep: u32,
}

/// What a cohort returns from a trial.
#[derive(Debug, Clone, Default)]
pub struct CohortTrial {
    /// Share messages, in learner-id order.
    pub shares: Vec<ShareMessage>,
    /// Every learner's running totals, in id order, when they were asked for
    /// (so a crashed learner's measurements survive it).
    pub stats: Vec<LearnerStats>,
    /// Every learner's metrics, in id order, when they were asked for.
    pub metrics: Vec<LearnerMetrics>,
    /// How many more trials every learner can run with nothing to share:
    /// the trial after them may share.
    pub quiet_trials: u64,
}

impl<T: Task> Cohort<T> {
    /// Learners `ids` of repetition `rep`.
    pub fn new(config: &LearnerConfig<T>, seed: u64, rep: u32, ids: std::ops::Range<u32>) -> Self {
        Self {
            learners: ids.map(|id| Learner::new(config, seed, rep, id)).collect(),
            config: config.clone(),
            seed,
            rep,
        }
    }

    /// The learners `saved` describes (a contiguous block of ids) of
    /// repetition `rep` in a run seeded `seed`.
    pub fn restore(
        config: &LearnerConfig<T>,
        seed: u64,
        rep: u32,
        saved: Vec<LearnerState>,
    ) -> Result<Self> {
        Ok(Self {
            learners: saved
                .into_iter()
                .map(|s| Learner::restore(config, s))
                .collect::<Result<_>>()?,
            config: config.clone(),
            seed,
            rep,
        })
    }

    /// Replaces the learners that crashed in trial `trial` with ones rebuilt
    /// from the aggregator's record of them, carrying over their running
    /// totals as the run last measured them (any learner; others are
    /// skipped).
    pub fn recover(&mut self, trial: u64, recoveries: &[(Recovery, LearnerStats)]) {
        let first = self.learners.first().map_or(0, Learner::id);
        for (rec, stats) in recoveries {
            let Some(k) = rec.learner.checked_sub(first).map(|k| k as usize) else {
                continue;
            };
            if let Some(l) = self.learners.get_mut(k) {
                *l = Learner::recover(&self.config, self.seed, self.rep, trial, rec, *stats);
            }
        }
    }

    /// Every learner's [`Agent::resend`], in id order.
    pub fn resend(&mut self) -> Vec<ShareMessage> {
        self.learners
            .iter_mut()
            .filter_map(|l| l.agent.resend())
            .collect()
    }

    /// The learners, in id order.
    pub fn learners(&self) -> &[Learner<T>] {
        &self.learners
    }

    /// Every learner's state, in id order.
    pub fn save(&self) -> Vec<LearnerState> {
        self.learners.iter().map(Learner::save).collect()
    }

    /// Applies the aggregator's updates (any order, any learner of this
    /// cohort), runs one trial of every learner, and collects their shares.
    /// `measure` asks for every learner's metrics, `evaluate` for their
    /// policy loss too.
    pub fn trial(
        &mut self,
        updates: &[OthersUpdate],
        steps: u64,
        measure: bool,
        evaluate: bool,
    ) -> CohortTrial {
        let measures: &[(u64, bool)] = if measure { &[(1, evaluate)] } else { &[] };
        self.trials(updates, 1, steps, measures, false)
    }

    /// `trials` trials in a row, nothing delivered between them: exactly
    /// what as many calls of [`Cohort::trial`] give when no learner shares
    /// before the last (a runtime batches trials only then, and the shares
    /// of every trial are returned together). The updates are applied
    /// before the first trial; every learner's metrics are taken after each
    /// trial `k` (counted from 1) of `measures`, in order, with the policy
    /// loss if its flag says so, so `metrics` holds them record after
    /// record; running totals are taken after the last trial if `stats`.
    pub fn trials(
        &mut self,
        updates: &[OthersUpdate],
        trials: u64,
        steps: u64,
        measures: &[(u64, bool)],
        stats: bool,
    ) -> CohortTrial {
        let first = self.learners.first().map_or(0, Learner::id);
        for u in updates {
            if let Some(l) = u
                .learner
                .checked_sub(first)
                .and_then(|k| self.learners.get_mut(k as usize))
            {
                l.absorb(u);
            }
        }
        let mut out = CohortTrial::default();
        let mut due = measures.iter().peekable();
        let learners = self.learners.len();
        for k in 1..=trials {
            for l in &mut self.learners {
                if let Some(m) = l.trial(steps) {
                    if out.shares.is_empty() {
                        // Once, rather than growing message by message.
                        out.shares.reserve(learners);
                    }
                    out.shares.push(m);
                }
            }
            while let Some(&(_, evaluate)) = due.next_if(|(at, _)| *at == k) {
                out.metrics
                    .extend(self.learners.iter().map(|l| l.metrics(evaluate)));
            }
        }
        if stats {
            out.stats = self.learners.iter().map(Learner::stats).collect();
        }
        out.quiet_trials = self.quiet_trials(steps);
        out
    }

    /// How many trials of `steps` steps every learner can run with every
    /// share check after them sending nothing.
    pub fn quiet_trials(&self, steps: u64) -> u64 {
        let quiet = self
            .learners
            .iter()
            .map(|l| l.agent.quiet_observations())
            .min()
            .unwrap_or(u64::MAX);
        quiet / steps.max(1)
    }
}
