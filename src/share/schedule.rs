use serde::{Deserialize, Serialize};

/// The protocol's clock in lockstep (the schedule is core; drivers
/// only carry its messages): after each trial, whether the aggregator has
/// work, how much evidence has decayed since it last folded, and whether it
/// answers the learners.
///
/// The aggregator answers every `broadcast_every` steps (at trial ends), and
/// only if something was shared since its last answer; it folds whenever a
/// learner shared or the global estimate is to be measured.
///
/// ```
/// use parbayes::share::{Due, Schedule};
///
/// // Answers every 2 steps, one step per trial, no forgetting.
/// let mut schedule = Schedule::new(2, 1, 1.0);
/// assert_eq!(schedule.after_trial(true, false), Some(Due { decay: 1.0, answer: false }));
/// assert_eq!(schedule.after_trial(false, false), Some(Due { decay: 1.0, answer: true }));
/// // Nothing shared, nothing measured: the aggregator rests.
/// assert_eq!(schedule.after_trial(false, false), None);
/// assert_eq!(schedule.after_trial(false, false), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    broadcast_every: u64,
    steps_per_trial: u64,
    /// Evidence decays per step; the aggregator catches up at each fold.
    decay_per_trial: f64,
    since_broadcast: u64,
    /// Something was shared since the last answer.
    unanswered: bool,
    /// Decay accumulated since the last fold.
    decay: f64,
}

/// The aggregator's work after a trial.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Due {
    /// Multiply every contribution by this before folding.
    pub decay: f64,
    /// Answer every learner after folding.
    pub answer: bool,
}

impl Schedule {
    /// Answers every `broadcast_every` steps, trials of `steps_per_trial`
    /// steps, evidence multiplied by `forgetting` per step.
    pub fn new(broadcast_every: u64, steps_per_trial: u64, forgetting: f64) -> Self {
        Self {
            broadcast_every,
            steps_per_trial,
            decay_per_trial: forgetting.powf(steps_per_trial as f64),
            since_broadcast: 0,
            unanswered: false,
            decay: 1.0,
        }
    }

    /// Whether something was shared since the aggregator last answered.
    pub fn unanswered(&self) -> bool {
        self.unanswered
    }

    /// A trial has ended: `shared` if any learner sent a message, `measure`
    /// if the global estimate is to be recorded. Returns the aggregator's
    /// work, if it has any.
    pub fn after_trial(&mut self, shared: bool, measure: bool) -> Option<Due> {
        self.since_broadcast += self.steps_per_trial;
        let answer = self.since_broadcast >= self.broadcast_every;
        if answer {
            self.since_broadcast = 0;
        }
        self.unanswered |= shared;
        self.decay *= self.decay_per_trial;
        if !(shared || measure || (answer && self.unanswered)) {
            return None;
        }
        if answer {
            self.unanswered = false;
        }
        Some(Due {
            decay: std::mem::replace(&mut self.decay, 1.0),
            answer,
        })
    }
}
