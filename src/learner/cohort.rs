//! A block of learners one actor steps in a loop.

use super::{LearnerConfig, LearnerMetrics, LearnerStats, SimConfig, SimLearner};
use crate::env::Environment;
use crate::error::Result;
use crate::share::{OthersUpdate, Recovery, ShareMessage};

/// A contiguous block of learners that one actor steps in a loop, so a trial
/// of a thousand learners costs a handful of messages, not a thousand.
/// Results do not depend on how learners are split into cohorts.
#[derive(Debug, Clone)]
pub struct Cohort<C: SimConfig = LearnerConfig<Environment>> {
    learners: Vec<C::Learner>,
    /// What a crashed learner is rebuilt with.
    config: C,
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

impl<C: SimConfig> Cohort<C> {
    /// Learners `ids` of repetition `rep`.
    pub fn new(config: &C, seed: u64, rep: u32, ids: std::ops::Range<u32>) -> Self {
        Self {
            learners: ids.map(|id| config.learner(seed, rep, id)).collect(),
            config: config.clone(),
            seed,
            rep,
        }
    }

    /// The learners `saved` describes (a contiguous block of ids) of
    /// repetition `rep` in a run seeded `seed`.
    pub fn restore(
        config: &C,
        seed: u64,
        rep: u32,
        saved: Vec<<C::Learner as SimLearner>::State>,
    ) -> Result<Self> {
        Ok(Self {
            learners: saved
                .into_iter()
                .map(|s| config.restore(s))
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
        let first = self.learners.first().map_or(0, SimLearner::id);
        for (rec, stats) in recoveries {
            let Some(k) = rec.learner.checked_sub(first).map(|k| k as usize) else {
                continue;
            };
            if let Some(l) = self.learners.get_mut(k) {
                *l = self.config.recover(self.seed, self.rep, trial, rec, *stats);
            }
        }
    }

    /// Every learner's [`SimLearner::resend`], in id order.
    pub fn resend(&mut self) -> Vec<ShareMessage> {
        self.learners
            .iter_mut()
            .filter_map(SimLearner::resend)
            .collect()
    }

    /// The learners, in id order.
    pub fn learners(&self) -> &[C::Learner] {
        &self.learners
    }

    /// Every learner's state, in id order.
    pub fn save(&self) -> Vec<<C::Learner as SimLearner>::State> {
        self.learners.iter().map(SimLearner::save).collect()
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
        let first = self.learners.first().map_or(0, SimLearner::id);
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
            out.stats = self.learners.iter().map(SimLearner::stats).collect();
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
            .map(SimLearner::quiet_observations)
            .min()
            .unwrap_or(u64::MAX);
        quiet / steps.max(1)
    }
}
