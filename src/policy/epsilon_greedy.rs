use rand::{Rng, RngExt};

use super::{Decision, PosteriorRows, Scratch, argmax_random_ties, mean_q};

/// Greedy on the posterior mean, uniform with probability `epsilon`.
pub(super) fn select<P, R>(
    epsilon: f64,
    d: &Decision,
    post: &P,
    scratch: &mut Scratch,
    rng: &mut R,
) -> usize
where
    P: PosteriorRows + ?Sized,
    R: Rng + ?Sized,
{
    if let Some(a) = explore(epsilon, d.structure.shape().actions, rng) {
        return a;
    }
    mean_q(d, post, scratch);
    argmax_random_ties(&scratch.q, rng)
}

/// With probability ε, a uniformly random action.
#[inline]
pub(super) fn explore<R: Rng + ?Sized>(epsilon: f64, actions: usize, rng: &mut R) -> Option<usize> {
    (epsilon > 0.0 && rng.random::<f64>() < epsilon).then(|| rng.random_range(0..actions))
}
