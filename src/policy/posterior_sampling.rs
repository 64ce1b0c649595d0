use rand::Rng;

use super::{Decision, PosteriorRows, Scratch};
use crate::posterior::{BetaPosterior, DirichletPosterior};

/// Q under one model drawn from the posterior, into `scratch.q`.
pub(super) fn sampled_q<P, R>(d: &Decision, post: &P, scratch: &mut Scratch, rng: &mut R)
where
    P: PosteriorRows + ?Sized,
    R: Rng + ?Sized,
{
    let Scratch { alpha, theta, q } = scratch;
    let shape = d.structure.shape();
    // Rewards 0 and 1: Q is the drawn success probability, exactly what
    // `(1 − p)·0 + p·1` gives.
    let bernoulli = d.structure.is_bernoulli();
    for (a, qa) in q.iter_mut().enumerate() {
        let row = shape.row(d.state, a);
        post.alpha_into(row, alpha);
        if let [a0, a1] = alpha[..] {
            // Two outcomes: a Beta draw, no buffer to normalise.
            let p1 = BetaPosterior::from_valid(a1, a0).sample(rng);
            if bernoulli {
                *qa = p1;
                continue;
            }
            theta[0] = 1.0 - p1;
            theta[1] = p1;
        } else {
            DirichletPosterior::from_valid(alpha).sample_into(rng, theta);
        }
        *qa = theta
            .iter()
            .zip(d.structure.rewards(row))
            .map(|(t, r)| t * r)
            .sum();
    }
}
