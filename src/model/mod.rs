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
