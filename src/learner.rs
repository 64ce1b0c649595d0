//! A learner: an environment of its own, a policy, a protocol ledger and a
//! random stream. Pure and synchronous; the runtime only moves its messages.

use serde::Serialize;

use crate::env::Environment;
use crate::metrics::model_error;
use crate::policy::{Decision, Policy, Scratch};
use crate::rng::{LearnerRng, learner_rng};
use crate::share::{Ledger, OthersUpdate, ShareMessage, ShareRule};

/// What every learner of a run shares.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnerConfig {
    /// The true environment, before any drift.
    pub env: Environment,
    /// Dirichlet prior pseudo-count α₀ per outcome.
    pub prior: f64,
    /// Evidence is multiplied by this before each observation (1 = never forget).
    pub discount: f64,
    pub policy: Policy,
    pub share: ShareRule,
    /// Steps between share checks (checks happen at trial ends in lockstep).
    pub check_every: u64,
}

/// A learner's running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LearnerStats {
    pub steps: u64,
    pub reward: f64,
    /// Cumulative pseudo-regret `Σ (μ* − μ_a)`; bandit tasks only.
    pub regret: f64,
    pub optimal_actions: u64,
}

/// A snapshot of one learner for the metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearnerMetrics {
    pub stats: LearnerStats,
    /// `Σ_r KL(θ_true(r) ‖ mean(combined(r)))`.
    pub model_kl: f64,
}

#[derive(Debug, Clone)]
pub struct Learner {
    env: Environment,
    state: usize,
    ledger: Ledger,
    policy: Policy,
    share: ShareRule,
    check_every: u64,
    discount: f64,
    since_check: u64,
    rng: LearnerRng,
    scratch: Scratch,
    stats: LearnerStats,
}

impl Learner {
    /// Learner `id` of repetition `rep` in a run seeded `seed`.
    pub fn new(config: &LearnerConfig, seed: u64, rep: u32, id: u32) -> Self {
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
            discount: config.discount,
            since_check: 0,
            rng,
            scratch: Scratch::new(shape),
            stats: LearnerStats::default(),
        }
    }

    pub fn id(&self) -> u32 {
        self.ledger.learner()
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
        let d = Decision {
            state: self.state,
            shape,
            env: &self.env,
        };
        let action = self
            .policy
            .select(&d, &self.ledger, &mut self.scratch, &mut self.rng);
        let outcome = self.env.sample_outcome(self.state, action, &mut self.rng);
        let reward = self.env.reward(self.state, action, outcome);
        if self.discount < 1.0 {
            self.ledger.discount(self.discount);
        }
        self.ledger.observe(shape.row(self.state, action), outcome);
        self.stats.steps += 1;
        self.stats.reward += reward;
        if self.env.is_bandit() {
            let best = self.env.best_expected_reward(self.state);
            let got = self.env.expected_reward(self.state, action);
            self.stats.regret += best - got;
            self.stats.optimal_actions += u64::from(got >= best);
        }
        self.state = self.env.next_state(self.state, action, outcome);
        self.since_check += 1;
    }

    /// A trial: `steps` steps from the start state, then a share check if
    /// `check_every` steps have passed since the last one.
    pub fn trial(&mut self, steps: u64) -> Option<ShareMessage> {
        self.state = self.env.start_state(&mut self.rng);
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
    /// current step.
    pub fn metrics(&self) -> LearnerMetrics {
        LearnerMetrics {
            stats: self.stats,
            model_kl: model_error(&self.env, |row, out| {
                self.ledger.combined_alpha_into(row, out)
            }),
        }
    }
}

/// A contiguous block of learners that one actor steps in a loop, so a trial
/// of a thousand learners costs a handful of messages, not a thousand.
/// Results do not depend on how learners are split into cohorts.
#[derive(Debug, Clone)]
pub struct Cohort {
    learners: Vec<Learner>,
}

/// What a cohort returns from a trial.
#[derive(Debug, Clone, Default)]
pub struct CohortTrial {
    /// Share messages, in learner-id order.
    pub shares: Vec<ShareMessage>,
    /// Every learner's metrics, in id order, when they were asked for.
    pub metrics: Vec<LearnerMetrics>,
}

impl Cohort {
    /// Learners `ids` of repetition `rep`.
    pub fn new(config: &LearnerConfig, seed: u64, rep: u32, ids: std::ops::Range<u32>) -> Self {
        Self {
            learners: ids.map(|id| Learner::new(config, seed, rep, id)).collect(),
        }
    }

    /// Applies the aggregator's updates (any order, any learner of this
    /// cohort), runs one trial of every learner, and collects their shares.
    pub fn trial(&mut self, updates: &[OthersUpdate], steps: u64, measure: bool) -> CohortTrial {
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
            out.metrics = self.learners.iter().map(Learner::metrics).collect();
        }
        out
    }
}
