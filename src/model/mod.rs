//! The tabular model every task shares: states × actions rows,
//! each with a categorical distribution over outcomes; the learners' sparse
//! experience counts; explicit MDPs and planning on them.

mod evidence;
mod mdp;
mod plan;
mod structure;

pub use evidence::Evidence;
pub use mdp::{Mdp, PROBABILITY_TOLERANCE, Transition, check_distribution, check_gamma};
pub use plan::{Convergence, MAX_SWEEPS, Solution, ValueIteration, evaluate_policy, solve};
pub use structure::{Known, MAX_REWARD, MAX_STRUCTURE_ENTRIES, Structure};

/// Above this many features a Bayesian linear regression's statistics
/// (d²/2 numbers per key per learner) are refused before anything is
/// allocated; the memory estimate of a run decides below it.
pub const MAX_FEATURES: usize = 4096;

/// Statistics per key of a d-feature Bayesian linear regression: Λ's
/// upper triangle, b, n and Σr², `d(d+1)/2 + d + 2` numbers.
pub fn linear_width(dim: usize) -> usize {
    dim * (dim + 1) / 2 + dim + 2
}

/// The sizes of a task: `rows = states × actions`, each over `outcomes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// States.
    pub states: usize,
    /// Actions in every state.
    pub actions: usize,
    /// Outcomes of every (state, action) row.
    pub outcomes: usize,
}

impl Shape {
    /// `states × actions`.
    pub fn rows(&self) -> usize {
        self.states * self.actions
    }

    /// The row of (state, action).
    #[inline]
    pub fn row(&self, state: usize, action: usize) -> usize {
        state * self.actions + action
    }
}
