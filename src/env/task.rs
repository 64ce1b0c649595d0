//! The trait every task implements, built-in or the user's own.

use std::fmt::Debug;

use rand::Rng;

use super::Truth;
use crate::error::Result;
use crate::model::{Known, Shape, Structure};

/// What one step in a task did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// The outcome the learner observes, in `0..shape().outcomes`.
    pub outcome: usize,
    /// The state the step led to.
    pub next: usize,
    /// The reward it paid.
    pub reward: f64,
    /// Whether the episode ended.
    pub terminal: bool,
}

/// A task: a tabular model whose structure the learner knows and whose
/// outcome probabilities it learns.
///
/// Implement [`shape`](Task::shape), [`known`](Task::known) and
/// [`step`](Task::step), and a simulated learner can act in it; everything
/// else has a default. The metrics need the truth: give
/// [`true_row_into`](Task::true_row_into) for model error,
/// [`truth`](Task::truth) for policy loss on MDPs, and
/// [`expected_reward`](Task::expected_reward) with
/// [`best_expected_reward`](Task::best_expected_reward) for regret on
/// one-step tasks. A metric whose truth is missing is left empty.
///
/// Each simulated learner owns a clone, so a drift schedule follows the
/// learner's own step counter through [`advance_to`](Task::advance_to).
///
/// ```
/// use parbayes::env::{Step, Task};
/// use parbayes::model::{Known, Shape};
/// use rand::{Rng, RngExt};
///
/// /// A coin that lands heads with probability `p`; heads pays 1.
/// #[derive(Debug, Clone)]
/// struct Coin { p: f64 }
///
/// impl Task for Coin {
///     fn kind(&self) -> &str { "coin" }
///     fn shape(&self) -> Shape { Shape { states: 1, actions: 1, outcomes: 2 } }
///     fn known(&self, _s: usize, _a: usize, o: usize) -> Known {
///         Known { next: 0, reward: o as f64, terminal: false }
///     }
///     fn step<R: Rng + ?Sized>(&self, _s: usize, _a: usize, rng: &mut R) -> Step {
///         let heads = rng.random::<f64>() < self.p;
///         Step { outcome: heads as usize, next: 0, reward: heads as u8 as f64, terminal: false }
///     }
/// }
///
/// let coin = Coin { p: 0.25 };
/// assert_eq!(coin.known(0, 0, 1).reward, 1.0);
/// assert_eq!(coin.gamma(), 0.0, "one-step decisions unless said otherwise");
/// ```
pub trait Task: Clone + Debug + Send + Sync + 'static {
    /// A short name of the kind of task (`bandit`, `gridworld`, …), for
    /// records and summaries.
    fn kind(&self) -> &str;

    /// The sizes: states, actions and outcomes per (state, action) row.
    fn shape(&self) -> Shape;

    /// The known meaning of outcome `outcome` of (`state`, `action`).
    fn known(&self, state: usize, action: usize, outcome: usize) -> Known;

    /// The discount γ in `[0, 1)` the task is planned and judged with; 0
    /// (the default) makes every decision one-step, as in a bandit.
    fn gamma(&self) -> f64 {
        0.0
    }

    /// The state an episode starts in; state 0 by default.
    fn start_state<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let _ = rng;
        0
    }

    /// Takes `action` in `state`: draws an outcome with `rng`. The outcome's
    /// `next`, `reward` and `terminal` must be what [`known`](Task::known)
    /// says of it.
    fn step<R: Rng + ?Sized>(&self, state: usize, action: usize, rng: &mut R) -> Step;

    /// Applies every scheduled change due at or before `step` (0-based).
    /// No drift by default.
    fn advance_to(&mut self, step: u64) {
        let _ = step;
    }

    /// Writes the true outcome distribution of `row` into `out` and returns
    /// true, or returns false if the task does not know its truth (then
    /// model error is not measured). The default knows nothing.
    fn true_row_into(&self, row: usize, out: &mut [f64]) -> bool {
        let _ = (row, out);
        false
    }

    /// The true MDP in force now, solved, for policy loss; `None` (the
    /// default) leaves policy loss unmeasured.
    fn truth(&self) -> Option<&Truth> {
        None
    }

    /// The steps at which the task changes (a drift schedule), for figures
    /// to mark; by default those of [`truth`](Task::truth)'s phases.
    fn change_steps(&self) -> Vec<u64> {
        self.truth()
            .map(|t| t.change_steps().collect())
            .unwrap_or_default()
    }

    /// One-step tasks: the expected reward of `action` in `state`, for
    /// regret; `None` (the default) leaves regret unmeasured.
    fn expected_reward(&self, state: usize, action: usize) -> Option<f64> {
        let _ = (state, action);
        None
    }

    /// One-step tasks: the best expected reward in `state`, for regret.
    fn best_expected_reward(&self, state: usize) -> Option<f64> {
        let _ = state;
        None
    }
}

// In this module, not beside `Structure`: the model knows nothing of tasks.
impl Structure {
    /// The structure of `task`, with the start distribution of its truth
    /// where it has one.
    pub fn of<T: Task>(task: &T) -> Result<Self> {
        let start = task.truth().map(|t| t.model().start().to_vec());
        Self::with_start(task.shape(), task.gamma(), start, |s, a, o| {
            task.known(s, a, o)
        })
    }
}
