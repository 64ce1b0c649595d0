//! The trait of contextual bandit tasks: each decision comes with a
//! context, and the arm chosen earns a reward.

use rand::Rng;

use super::{Classification, LinearBandit};

/// A contextual bandit task that a simulated learner acts in: it draws the
/// next decision's context, pays a reward for the arm chosen in it and,
/// where it knows them, says what each arm is expected to pay there (for
/// regret). The built-in ones are [`LinearBandit`](super::LinearBandit)
/// and [`Classification`](super::Classification); implement it for a task
/// of your own.
///
/// A task owns its position in the stream (the current context), so each
/// learner holds its own copy; randomness comes from the learner's stream.
pub trait ContextualTask: Clone + Send + Sync + 'static {
    /// A short name of the kind of task, for records and summaries.
    fn kind(&self) -> &str {
        "contextual"
    }

    /// The steps at which the task changes (none by default).
    fn change_steps(&self) -> Vec<u64> {
        Vec::new()
    }

    /// About how many bytes one learner's copy of the task takes, beyond
    /// what copies share, for the memory estimate.
    fn copy_bytes(&self) -> u64 {
        0
    }

    /// Arms to choose from.
    fn arms(&self) -> usize;

    /// Numbers in a context: one feature vector that every arm sees.
    fn context_len(&self) -> usize;

    /// Makes the next decision's context current and writes it to `out`
    /// (`context_len` long).
    fn next_context<R: Rng + ?Sized>(&mut self, rng: &mut R, out: &mut [f64]);

    /// A reward for `arm` in the current context.
    fn reward<R: Rng + ?Sized>(&mut self, arm: usize, rng: &mut R) -> f64;

    /// What `arm` is expected to pay in the current context, if the task
    /// knows.
    fn expected_reward(&self, arm: usize) -> Option<f64>;

    /// Applies every scheduled change due at or before `step` (0-based,
    /// the learner's own decisions). No drift by default.
    fn advance_to(&mut self, step: u64) {
        let _ = step;
    }

    /// How far a model with these per-arm parameter `means` (one θ per arm)
    /// is from the truth, if the task knows it: see
    /// [`LinearBandit`](super::LinearBandit)'s. Unknown by default.
    fn model_error(&self, means: &[Vec<f64>]) -> Option<f64> {
        let _ = means;
        None
    }

    /// Where the task is in a stream of its own, for a checkpoint: what
    /// [`resume_at`](Self::resume_at) takes back. Empty by default: a task
    /// whose contexts come only from the learner's random stream.
    fn stream_position(&self) -> Vec<u64> {
        Vec::new()
    }

    /// Continues from a [`stream_position`](Self::stream_position); a
    /// position that does not fit the task is refused with the reason.
    fn resume_at(&mut self, position: &[u64]) -> Result<(), String> {
        if position.is_empty() {
            Ok(())
        } else {
            Err(format!("{} numbers; this task keeps none", position.len()))
        }
    }

    /// The most any arm is expected to pay in the current context, if the
    /// task knows.
    fn best_expected_reward(&self) -> Option<f64> {
        (0..self.arms())
            .map(|a| self.expected_reward(a))
            .try_fold(f64::NEG_INFINITY, |best, r| r.map(|r| best.max(r)))
    }
}

/// The built-in contextual tasks, as scenario files give them
/// (`kind = "linear"` and `kind = "classification"`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ContextualEnvironment {
    /// A synthetic task with linear expected rewards.
    Linear(LinearBandit),
    /// A labelled dataset turned into a bandit.
    Classification(Classification),
}

macro_rules! each {
    ($self:expr, $t:ident => $e:expr) => {
        match $self {
            ContextualEnvironment::Linear($t) => $e,
            ContextualEnvironment::Classification($t) => $e,
        }
    };
}

impl ContextualTask for ContextualEnvironment {
    fn kind(&self) -> &str {
        match self {
            Self::Linear(_) => "linear",
            Self::Classification(_) => "classification",
        }
    }

    fn change_steps(&self) -> Vec<u64> {
        each!(self, t => t.change_steps())
    }

    fn copy_bytes(&self) -> u64 {
        each!(self, t => t.copy_bytes())
    }

    fn arms(&self) -> usize {
        each!(self, t => ContextualTask::arms(t))
    }

    fn context_len(&self) -> usize {
        each!(self, t => t.context_len())
    }

    #[inline]
    fn next_context<R: Rng + ?Sized>(&mut self, rng: &mut R, out: &mut [f64]) {
        each!(self, t => t.next_context(rng, out));
    }

    #[inline]
    fn reward<R: Rng + ?Sized>(&mut self, arm: usize, rng: &mut R) -> f64 {
        each!(self, t => ContextualTask::reward(t, arm, rng))
    }

    #[inline]
    fn expected_reward(&self, arm: usize) -> Option<f64> {
        each!(self, t => t.expected_reward(arm))
    }

    fn advance_to(&mut self, step: u64) {
        each!(self, t => t.advance_to(step));
    }

    #[inline]
    fn best_expected_reward(&self) -> Option<f64> {
        each!(self, t => t.best_expected_reward())
    }

    fn model_error(&self, means: &[Vec<f64>]) -> Option<f64> {
        each!(self, t => t.model_error(means))
    }

    fn stream_position(&self) -> Vec<u64> {
        each!(self, t => t.stream_position())
    }

    fn resume_at(&mut self, position: &[u64]) -> Result<(), String> {
        each!(self, t => t.resume_at(position))
    }
}
