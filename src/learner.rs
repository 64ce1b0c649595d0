//! A learner: an environment of its own, a policy, a protocol ledger and a
//! random stream. Pure and synchronous; the runtime only moves its messages.

use serde::Serialize;

use crate::env::Environment;
use crate::metrics::model_error;
use crate::model::Mdp;
use crate::policy::{Decision, PlanState, Planner, Policy, Replan, Scratch, frame, policy_loss};
use crate::rng::{LearnerRng, learner_rng, recovered_rng};
use crate::share::{Ledger, OthersUpdate, Recovery, ShareMessage, ShareRule};

/// What every learner of a run shares.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnerConfig {
    /// The true environment, before any drift.
    pub env: Environment,
    /// Dirichlet prior pseudo-count α₀ per outcome.
    pub prior: f64,
    /// Evidence is multiplied by this before each observation (1 = never forget).
    pub forgetting: f64,
    pub policy: Policy,
    pub share: ShareRule,
    /// Steps between share checks (checks happen at trial ends in lockstep).
    pub check_every: u64,
    /// When a planning learner (γ > 0) draws or averages a new model and
    /// solves it; with γ = 0 every step reads the posterior afresh.
    pub replan: Replan,
}

/// A learner's running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LearnerStats {
    pub steps: u64,
    pub reward: f64,
    /// Cumulative pseudo-regret `Σ (μ* − μ_a)`; bandit tasks only.
    pub regret: f64,
    pub optimal_actions: u64,
}

/// Everything about a learner that its configuration does not fix: what a
/// checkpoint keeps. Its environment is rebuilt and advanced to its step.
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
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearnerMetrics {
    pub stats: LearnerStats,
    /// `Σ_r KL(θ_true(r) ‖ mean(combined(r)))`.
    pub model_kl: f64,
    /// `V*(s₀) − V^π(s₀)` of π greedy on the combined mean, when evaluated
    /// (MDP tasks).
    pub policy_loss: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Learner {
    env: Environment,
    state: usize,
    ledger: Ledger,
    policy: Policy,
    share: ShareRule,
    check_every: u64,
    forgetting: f64,
    since_check: u64,
    rng: LearnerRng,
    scratch: Scratch,
    /// Present when the task is planned with γ > 0.
    planner: Option<Planner>,
    stats: LearnerStats,
}

impl Learner {
    /// Learner `id` of repetition `rep` in a run seeded `seed`.
    pub fn new(config: &LearnerConfig, seed: u64, rep: u32, id: u32) -> Self {
        let frame = (config.env.gamma() > 0.0).then(|| frame(&config.env));
        Self::sharing(config, seed, rep, id, frame.as_ref())
    }

    /// A learner whose planning model shares its structure with `frame`
    /// (from [`crate::policy::frame`]), so learners of one task hold one copy.
    pub fn sharing(
        config: &LearnerConfig,
        seed: u64,
        rep: u32,
        id: u32,
        frame: Option<&Mdp>,
    ) -> Self {
        let shape = config.env.shape();
        let mut rng = learner_rng(seed, rep, id);
        let state = config.env.start_state(&mut rng);
        Self {
            env: config.env.clone(),
            state,
            ledger: Ledger::new(id, shape, config.prior),
            policy: config.policy,
            share: config.share,
            check_every: config.check_every,
            forgetting: config.forgetting,
            since_check: 0,
            rng,
            scratch: Scratch::new(shape),
            planner: frame.map(|f| Planner::on_frame(f.clone(), config.env.gamma(), config.replan)),
            stats: LearnerStats::default(),
        }
    }

    pub fn id(&self) -> u32 {
        self.ledger.learner()
    }

    /// The learner's state, for a checkpoint.
    pub fn save(&self) -> LearnerState {
        LearnerState {
            state: self.state,
            ledger: self.ledger.clone(),
            since_check: self.since_check,
            rng: self.rng.clone(),
            plan: self.planner.as_ref().map(Planner::save),
            stats: self.stats,
        }
    }

    /// Learner `rec.learner` rebuilt after crashing in trial `trial`, from
    /// the aggregator's record of it, with a stream derived afresh from
    /// (seed, repetition, id, trial). Its running totals are the run's
    /// measurements, not its knowledge, so they carry over.
    pub fn recover(
        config: &LearnerConfig,
        frame: Option<&Mdp>,
        seed: u64,
        rep: u32,
        trial: u64,
        rec: &Recovery,
        stats: LearnerStats,
    ) -> Self {
        let mut l = Self::sharing(config, seed, rep, rec.learner, frame);
        l.ledger = Ledger::recovered(config.env.shape(), config.prior, rec);
        l.rng = recovered_rng(seed, rep, rec.learner, trial);
        l.stats = stats;
        if l.stats.steps > 0 {
            l.env.advance_to(l.stats.steps - 1);
        }
        l
    }

    /// The learner `saved` describes, continuing exactly where it stopped.
    pub fn restore(config: &LearnerConfig, frame: Option<&Mdp>, saved: LearnerState) -> Self {
        let mut l = Self::sharing(config, 0, 0, saved.ledger.learner(), frame);
        l.state = saved.state;
        l.ledger = saved.ledger;
        l.since_check = saved.since_check;
        l.rng = saved.rng;
        l.stats = saved.stats;
        if let (Some(p), Some(s)) = (&mut l.planner, saved.plan) {
            p.restore(s);
        }
        // The environment as it was at the learner's last step.
        if l.stats.steps > 0 {
            l.env.advance_to(l.stats.steps - 1);
        }
        l
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn stats(&self) -> LearnerStats {
        self.stats
    }

    /// One decision, one outcome, one update.
    #[inline]
    pub fn step(&mut self) {
        self.env.advance_to(self.stats.steps);
        let shape = self.env.shape();
        let action = match &mut self.planner {
            None => {
                let d = Decision {
                    state: self.state,
                    shape,
                    env: &self.env,
                };
                self.policy
                    .select(&d, &self.ledger, &mut self.scratch, &mut self.rng)
            }
            Some(planner) => {
                let q = planner.q_of(self.policy, &self.ledger, self.state, &mut self.rng);
                self.scratch.q.copy_from_slice(q);
                self.policy.choose(&mut self.scratch.q, &mut self.rng)
            }
        };
        let t = self.env.step(self.state, action, &mut self.rng);
        if self.forgetting < 1.0 {
            self.ledger.discount(self.forgetting);
        }
        self.ledger
            .observe(shape.row(self.state, action), t.outcome);
        self.stats.steps += 1;
        self.stats.reward += t.reward;
        if self.env.is_bandit() {
            let best = self.env.best_expected_reward(self.state);
            let got = self.env.expected_reward(self.state, action);
            self.stats.regret += best - got;
            self.stats.optimal_actions += u64::from(got >= best);
        }
        // A terminal transition ends the episode; the next starts afresh
        // within the same trial, so every trial has the same number of steps.
        self.state = if t.terminal {
            self.env.start_state(&mut self.rng)
        } else {
            t.next
        };
        self.since_check += 1;
    }

    /// A trial: an episode of `steps` steps from a start state, then a share
    /// check if `check_every` steps have passed since the last one.
    pub fn trial(&mut self, steps: u64) -> Option<ShareMessage> {
        self.state = self.env.start_state(&mut self.rng);
        if let Some(p) = &mut self.planner {
            p.start_trial();
        }
        for _ in 0..steps {
            self.step();
        }
        if self.since_check >= self.check_every {
            self.since_check = 0;
            self.ledger.check(self.share)
        } else {
            None
        }
    }

    pub fn apply(&mut self, update: &OthersUpdate) {
        self.ledger.apply(update);
    }

    /// The learner's metrics now, against the environment as it is at its
    /// last step; the policy loss only if `evaluate`.
    pub fn metrics(&self, evaluate: bool) -> LearnerMetrics {
        LearnerMetrics {
            stats: self.stats,
            model_kl: model_error(&self.env, |row, out| {
                self.ledger.combined_alpha_into(row, out)
            }),
            policy_loss: if evaluate {
                match &self.planner {
                    Some(p) => p.policy_loss(&self.env, &self.ledger),
                    None => policy_loss(&self.env, &self.ledger),
                }
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
pub struct Cohort {
    learners: Vec<Learner>,
    /// What a crashed learner is rebuilt with.
    config: LearnerConfig,
    seed: u64,
    rep: u32,
    frame: Option<Mdp>,
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
}

impl Cohort {
    /// Learners `ids` of repetition `rep`.
    pub fn new(config: &LearnerConfig, seed: u64, rep: u32, ids: std::ops::Range<u32>) -> Self {
        let frame = (config.env.gamma() > 0.0).then(|| frame(&config.env));
        Self {
            learners: ids
                .map(|id| Learner::sharing(config, seed, rep, id, frame.as_ref()))
                .collect(),
            config: config.clone(),
            seed,
            rep,
            frame,
        }
    }

    /// The learners `saved` describes (a contiguous block of ids) of
    /// repetition `rep` in a run seeded `seed`.
    pub fn restore(config: &LearnerConfig, seed: u64, rep: u32, saved: Vec<LearnerState>) -> Self {
        let frame = (config.env.gamma() > 0.0).then(|| frame(&config.env));
        Self {
            learners: saved
                .into_iter()
                .map(|s| Learner::restore(config, frame.as_ref(), s))
                .collect(),
            config: config.clone(),
            seed,
            rep,
            frame,
        }
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
                *l = Learner::recover(
                    &self.config,
                    self.frame.as_ref(),
                    self.seed,
                    self.rep,
                    trial,
                    rec,
                    *stats,
                );
            }
        }
    }

    /// The learners, in id order.
    pub fn learners(&self) -> &[Learner] {
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
        self.trial_reporting(updates, steps, measure, evaluate, false)
    }

    /// [`Cohort::trial`], also returning every learner's running totals if
    /// `stats`.
    pub fn trial_reporting(
        &mut self,
        updates: &[OthersUpdate],
        steps: u64,
        measure: bool,
        evaluate: bool,
        stats: bool,
    ) -> CohortTrial {
        let first = self.learners.first().map_or(0, Learner::id);
        for u in updates {
            if let Some(l) = u
                .learner
                .checked_sub(first)
                .and_then(|k| self.learners.get_mut(k as usize))
            {
                l.apply(u);
            }
        }
        let mut out = CohortTrial::default();
        for l in &mut self.learners {
            if let Some(m) = l.trial(steps) {
                out.shares.push(m);
            }
        }
        if measure {
            out.metrics = self.learners.iter().map(|l| l.metrics(evaluate)).collect();
        }
        if stats {
            out.stats = self.learners.iter().map(Learner::stats).collect();
        }
        out
    }
}
