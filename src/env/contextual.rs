//! The trait of contextual bandit tasks: each decision comes with a
//! context, and the arm chosen earns a reward.

use rand::Rng;

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

    /// The most any arm is expected to pay in the current context, if the
    /// task knows.
    fn best_expected_reward(&self) -> Option<f64> {
        (0..self.arms())
            .map(|a| self.expected_reward(a))
            .try_fold(f64::NEG_INFINITY, |best, r| r.map(|r| best.max(r)))
    }
}
