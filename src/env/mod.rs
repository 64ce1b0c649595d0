//! The true environments learners act in. The learner knows a task's
//! structure (`next_state`, `reward`) and learns only its outcome
//! probabilities.

mod bandit;
mod drift;

pub use bandit::BernoulliBandit;
pub use drift::RateChange;

use rand::Rng;

use crate::model::Shape;

/// A task's true environment. Each learner owns a copy, so drift follows the
/// learner's own step counter.
#[derive(Debug, Clone, PartialEq)]
pub enum Environment {
    Bandit(BernoulliBandit),
}

impl Environment {
    pub fn shape(&self) -> Shape {
        match self {
            Environment::Bandit(b) => b.shape(),
        }
    }

    /// The state a learner starts each trial in.
    pub fn start_state<R: Rng + ?Sized>(&self, _rng: &mut R) -> usize {
        match self {
            Environment::Bandit(_) => 0,
        }
    }

    /// Draws the outcome of taking `action` in `state`.
    #[inline]
    pub fn sample_outcome<R: Rng + ?Sized>(
        &self,
        _state: usize,
        action: usize,
        rng: &mut R,
    ) -> usize {
        match self {
            Environment::Bandit(b) => b.pull(action, rng),
        }
    }

    /// The known transition structure.
    #[inline]
    pub fn next_state(&self, _state: usize, _action: usize, _outcome: usize) -> usize {
        match self {
            Environment::Bandit(_) => 0,
        }
    }

    /// The known reward structure.
    #[inline]
    pub fn reward(&self, _state: usize, _action: usize, outcome: usize) -> f64 {
        match self {
            Environment::Bandit(_) => outcome as f64,
        }
    }

    /// Applies every scheduled change due at or before `step` (0-based: the
    /// change at step 8000 holds from the 8001st step on).
    pub fn advance_to(&mut self, step: u64) {
        match self {
            Environment::Bandit(b) => b.advance_to(step),
        }
    }

    /// Writes the true outcome distribution of `row` into `out`.
    pub fn true_row_into(&self, row: usize, out: &mut [f64]) {
        match self {
            Environment::Bandit(b) => {
                let p = b.probabilities()[row];
                out[0] = 1.0 - p;
                out[1] = p;
            }
        }
    }

    /// The expected one-step reward of every action in `state`, and the best
    /// of them: what pseudo-regret is measured against.
    pub fn expected_reward(&self, _state: usize, action: usize) -> f64 {
        match self {
            Environment::Bandit(b) => b.probabilities()[action],
        }
    }

    /// The best expected one-step reward in `state`.
    pub fn best_expected_reward(&self, _state: usize) -> f64 {
        match self {
            Environment::Bandit(b) => b.best(),
        }
    }

    /// Whether a step's regret is defined (one-step tasks).
    pub fn is_bandit(&self) -> bool {
        matches!(self, Environment::Bandit(_))
    }
}
