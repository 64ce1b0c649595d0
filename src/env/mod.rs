//! The true environments learners act in. The learner knows a task's
//! structure (where an outcome leads, what it pays, whether it ends the
//! episode) and learns only its outcome probabilities.

mod bandit;
mod drift;
mod gridworld;
mod tabular;
mod truth;
mod vm;

pub use bandit::BernoulliBandit;
pub use drift::RateChange;
pub use gridworld::{ARROWS, GridWorld, IntendedChange, Layout, MAX_GRID_SIZE};
pub use tabular::{MAX_PLANNING_ENTRIES, TabularMdp};
pub use truth::{Phase, Truth};
pub use vm::{LoadLevel, ResponseModel, VmAllocation, VmParams, load_levels};

use rand::{Rng, RngExt};

use crate::model::{Mdp, Shape, Transition};

/// A task's true environment. Each learner owns a copy, so drift follows the
/// learner's own step counter.
#[derive(Debug, Clone, PartialEq)]
pub enum Environment {
    Bandit(BernoulliBandit),
    GridWorld(GridWorld),
    Tabular(TabularMdp),
    Vm(VmAllocation),
}

impl Environment {
    /// The task's kind, as scenario files name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Environment::Bandit(_) => "bandit",
            Environment::GridWorld(_) => "gridworld",
            Environment::Tabular(_) => "tabular",
            Environment::Vm(_) => "vm",
        }
    }

    pub fn shape(&self) -> Shape {
        match self {
            Environment::Bandit(b) => b.shape(),
            Environment::GridWorld(g) => g.shape(),
            Environment::Tabular(t) => t.shape(),
            Environment::Vm(m) => m.shape(),
        }
    }

    /// The state a learner starts each episode in.
    pub fn start_state<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        self.truth().map_or(0, |t| t.model().sample_start(rng))
    }

    /// Takes `action` in `state`: the outcome, where it leads, what it pays.
    #[inline]
    pub fn step<R: Rng + ?Sized>(&self, state: usize, action: usize, rng: &mut R) -> Transition {
        match self {
            Environment::Bandit(b) => {
                let outcome = b.pull(action, rng);
                Transition {
                    outcome,
                    next: 0,
                    prob: 0.0,
                    reward: outcome as f64,
                    terminal: false,
                }
            }
            Environment::GridWorld(g) => sample(g.truth(), state, action, rng),
            Environment::Tabular(t) => sample(t.truth(), state, action, rng),
            Environment::Vm(m) => m.step(state, action, rng),
        }
    }

    /// The known `(next state, reward, terminal)` of outcome `o` of
    /// (`state`, `action`): the structure a learner plans with.
    pub fn known(&self, state: usize, action: usize, o: usize) -> (usize, f64, bool) {
        match self {
            Environment::Bandit(_) => (0, o as f64, false),
            Environment::GridWorld(g) => (o, g.reward(state, o), false),
            Environment::Tabular(t) => t.known(t.shape().row(state, action), o),
            Environment::Vm(m) => m.known(state, action, o),
        }
    }

    /// The known reward of outcome `o` of (`state`, `action`).
    #[inline]
    pub fn reward(&self, state: usize, action: usize, o: usize) -> f64 {
        match self {
            Environment::Bandit(_) => o as f64,
            _ => self.known(state, action, o).1,
        }
    }

    /// Applies every scheduled change due at or before `step` (0-based: the
    /// change at step 8000 holds from the 8001st step on).
    pub fn advance_to(&mut self, step: u64) {
        match self {
            Environment::Bandit(b) => b.advance_to(step),
            Environment::GridWorld(g) => g.truth_mut().advance_to(step),
            Environment::Tabular(_) => {}
            Environment::Vm(m) => m.advance_to(step),
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
            Environment::GridWorld(g) => g.truth().model().outcome_probs_into(row, out),
            Environment::Tabular(t) => t.truth().model().outcome_probs_into(row, out),
            Environment::Vm(m) => m.truth().model().outcome_probs_into(row, out),
        }
    }

    /// The true model of an MDP task through its drift schedule; `None` for
    /// bandits, which are measured by regret instead.
    pub fn truth(&self) -> Option<&Truth> {
        match self {
            Environment::Bandit(_) => None,
            Environment::GridWorld(g) => Some(g.truth()),
            Environment::Tabular(t) => Some(t.truth()),
            Environment::Vm(m) => Some(m.truth()),
        }
    }

    /// The discount γ the task is planned and judged with (0 for bandits).
    pub fn gamma(&self) -> f64 {
        self.truth().map_or(0.0, Truth::gamma)
    }

    /// The true model in force now, as an explicit MDP.
    pub fn true_model(&self) -> Mdp {
        match self.truth() {
            Some(t) => t.model().clone(),
            None => {
                let shape = self.shape();
                Mdp::dense(shape, vec![1.0], |s, a, o| self.known(s, a, o))
                    .with_probs(|row, out| self.true_row_into(row, out))
            }
        }
    }

    /// The expected one-step reward of `action` in `state` (bandits).
    pub fn expected_reward(&self, _state: usize, action: usize) -> f64 {
        match self {
            Environment::Bandit(b) => b.probabilities()[action],
            _ => f64::NAN,
        }
    }

    /// The best expected one-step reward in `state` (bandits).
    pub fn best_expected_reward(&self, _state: usize) -> f64 {
        match self {
            Environment::Bandit(b) => b.best(),
            _ => f64::NAN,
        }
    }

    /// Whether pseudo-regret is defined (one-step tasks).
    pub fn is_bandit(&self) -> bool {
        matches!(self, Environment::Bandit(_))
    }
}

#[inline]
fn sample<R: Rng + ?Sized>(truth: &Truth, state: usize, action: usize, rng: &mut R) -> Transition {
    let model = truth.model();
    model.sample(model.shape().row(state, action), rng.random::<f64>())
}
