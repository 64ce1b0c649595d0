//! Tasks: the [`Task`] trait and the built-in tasks that implement it. The
//! learner knows a task's structure (where an outcome leads, what it pays,
//! whether it ends the episode) and learns only its outcome probabilities.

mod bandit;
mod classification;
mod contextual;
mod drift;
mod gridworld;
mod linear;
mod stream;
mod tabular;
mod task;
mod truth;
mod vm;

pub use bandit::BernoulliBandit;
pub(crate) use classification::read_csv;
pub use classification::{Classification, Dataset, MAX_DATASET_BYTES};
pub use contextual::{ContextualEnvironment, ContextualTask};
pub use drift::RateChange;
pub use gridworld::{ARROWS, GridWorld, IntendedChange, Layout, MAX_GRID_SIZE};
pub use linear::{LinearBandit, LinearRewards, ThetaChange};
pub use tabular::{MAX_PLANNING_ENTRIES, TabularMdp};
pub use task::{Step, Task};
pub use truth::{Phase, Truth};
pub use vm::{LoadLevel, ResponseModel, VmAllocation, VmParams, load_levels};

use rand::{Rng, RngExt};

use crate::model::{Known, Mdp, Shape, Transition};

/// The built-in tasks, as scenario files name them. Each implements
/// [`Task`]; each simulated learner owns a copy, so drift follows the
/// learner's own step counter.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Environment {
    /// Bernoulli bandit arms.
    Bandit(BernoulliBandit),
    /// The paper's stochastic GridWorld.
    GridWorld(GridWorld),
    /// A tabular MDP from a model file.
    Tabular(TabularMdp),
    /// The paper's VM-allocation task.
    Vm(VmAllocation),
}

impl Environment {
    /// The true model in force now, as an explicit MDP.
    pub fn true_model(&self) -> Mdp {
        match self.truth() {
            Some(t) => t.model().clone(),
            None => {
                let shape = self.shape();
                Mdp::dense(shape, vec![1.0], |s, a, o| {
                    let k = self.known(s, a, o);
                    (k.next, k.reward, k.terminal)
                })
                .with_probs(|row, out| {
                    self.true_row_into(row, out);
                })
            }
        }
    }

    /// Whether pseudo-regret is defined (one-step tasks).
    pub fn is_bandit(&self) -> bool {
        matches!(self, Environment::Bandit(_))
    }
}

impl Task for Environment {
    fn kind(&self) -> &str {
        match self {
            Environment::Bandit(_) => "bandit",
            Environment::GridWorld(_) => "gridworld",
            Environment::Tabular(_) => "tabular",
            Environment::Vm(_) => "vm",
        }
    }

    fn shape(&self) -> Shape {
        match self {
            Environment::Bandit(b) => b.shape(),
            Environment::GridWorld(g) => g.shape(),
            Environment::Tabular(t) => t.shape(),
            Environment::Vm(m) => m.shape(),
        }
    }

    fn known(&self, state: usize, action: usize, o: usize) -> Known {
        let (next, reward, terminal) = match self {
            Environment::Bandit(_) => (0, o as f64, false),
            Environment::GridWorld(g) => (o, g.reward(state, o), false),
            Environment::Tabular(t) => t.known(t.shape().row(state, action), o),
            Environment::Vm(m) => m.known(state, action, o),
        };
        Known {
            next,
            reward,
            terminal,
        }
    }

    fn gamma(&self) -> f64 {
        self.truth().map_or(0.0, Truth::gamma)
    }

    fn start_state<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        self.truth().map_or(0, |t| t.model().sample_start(rng))
    }

    #[inline]
    fn step<R: Rng + ?Sized>(&self, state: usize, action: usize, rng: &mut R) -> Step {
        let t = match self {
            Environment::Bandit(b) => {
                let outcome = b.pull(action, rng);
                return Step {
                    outcome,
                    next: 0,
                    reward: outcome as f64,
                    terminal: false,
                };
            }
            Environment::GridWorld(g) => sample(g.truth(), state, action, rng),
            Environment::Tabular(t) => sample(t.truth(), state, action, rng),
            Environment::Vm(m) => m.step(state, action, rng),
        };
        Step {
            outcome: t.outcome,
            next: t.next,
            reward: t.reward,
            terminal: t.terminal,
        }
    }

    fn advance_to(&mut self, step: u64) {
        match self {
            Environment::Bandit(b) => b.advance_to(step),
            Environment::GridWorld(g) => g.truth_mut().advance_to(step),
            Environment::Tabular(_) => {}
            Environment::Vm(m) => m.advance_to(step),
        }
    }

    fn true_row_into(&self, row: usize, out: &mut [f64]) -> bool {
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
        true
    }

    fn change_steps(&self) -> Vec<u64> {
        match self {
            Environment::Bandit(b) => b.changes().iter().map(|c| c.step).collect(),
            Environment::GridWorld(g) => g.truth().change_steps().collect(),
            // The VM task's demand profile is a cycle, not a drift.
            Environment::Vm(_) | Environment::Tabular(_) => Vec::new(),
        }
    }

    fn truth(&self) -> Option<&Truth> {
        match self {
            Environment::Bandit(_) => None,
            Environment::GridWorld(g) => Some(g.truth()),
            Environment::Tabular(t) => Some(t.truth()),
            Environment::Vm(m) => Some(m.truth()),
        }
    }

    fn expected_reward(&self, _state: usize, action: usize) -> Option<f64> {
        match self {
            Environment::Bandit(b) => Some(b.probabilities()[action]),
            _ => None,
        }
    }

    fn best_expected_reward(&self, _state: usize) -> Option<f64> {
        match self {
            Environment::Bandit(b) => Some(b.best()),
            _ => None,
        }
    }
}

#[inline]
fn sample<R: Rng + ?Sized>(truth: &Truth, state: usize, action: usize, rng: &mut R) -> Transition {
    let model = truth.model();
    model.sample(model.shape().row(state, action), rng.random::<f64>())
}
