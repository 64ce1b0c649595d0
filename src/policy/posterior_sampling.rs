use rand::Rng;

use super::{Decision, PosteriorRows, Scratch};
use crate::posterior::normalised_gammas;

/// Q under one model drawn from the posterior, into `scratch.q`.
// Kept out of its callers: inlined into `Policy::select`, the binary's
// code for it ran 1000 bandit learners 5 % slower.
#[inline(never)]
pub(super) fn sampled_q<P, R>(d: &Decision, post: &P, scratch: &mut Scratch, rng: &mut R)
where
    P: PosteriorRows + ?Sized,
    R: Rng + ?Sized,
{
    let Scratch {
        alpha,
        theta,
        gammas,
        q,
    } = scratch;
    let shape = d.structure.shape();
    if d.structure.is_bernoulli() {
        // Rewards 0 and 1: Q is the drawn success probability, exactly what
        // `(1 − p)·0 + p·1` gives. A Beta draw is the ratio of two gammas,
        // in the order `BetaPosterior::sample` draws them.
        for (a, qa) in q.iter_mut().enumerate() {
            let row = shape.row(d.state, a);
            let [a0, a1] = post.alpha_pair(row);
            let x = gammas.draw(2 * row + 1, a1, rng);
            let y = gammas.draw(2 * row, a0, rng);
            *qa = x / (x + y);
        }
        return;
    }
    for (a, qa) in q.iter_mut().enumerate() {
        let row = shape.row(d.state, a);
        post.alpha_into(row, alpha);
        let slot = row * shape.outcomes;
        if let [a0, a1] = alpha[..] {
            // Two outcomes: a Beta draw as the ratio of two gammas (in the
            // order `BetaPosterior::sample` draws them), nothing to normalise.
            let x = gammas.draw(slot + 1, a1, rng);
            let y = gammas.draw(slot, a0, rng);
            let p1 = x / (x + y);
            theta[0] = 1.0 - p1;
            theta[1] = p1;
        } else {
            normalised_gammas(alpha, theta, |o, a| gammas.draw(slot + o, a, rng));
        }
        *qa = theta
            .iter()
            .zip(d.structure.rewards(row))
            .map(|(t, r)| t * r)
            .sum();
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Decision, Scratch};
    use super::*;
    use crate::model::{Known, Structure};
    use crate::posterior::{BetaPosterior, DirichletPosterior};
    use crate::rng::learner_rng;

    /// Concentrations that change between calls, as a learner's do.
    struct Growing(Vec<Vec<f64>>);
    impl PosteriorRows for Growing {
        fn alpha_into(&self, row: usize, out: &mut [f64]) {
            out.copy_from_slice(&self.0[row]);
        }
        fn prior(&self) -> f64 {
            1.0
        }
    }

    /// The cached samplers draw exactly what fresh Beta and Dirichlet
    /// posteriors draw from the same stream, call after call, as counts
    /// change.
    #[test]
    fn cached_draws_equal_the_posteriors_own() {
        let bandit = Structure::bandit(3).unwrap();
        let three = Structure::new(1, 2, 3, 0.0, |_, _, o| Known {
            next: 0,
            reward: o as f64 - 1.0,
            terminal: false,
        })
        .unwrap();
        for structure in [&bandit, &three] {
            let shape = structure.shape();
            let d = Decision {
                state: 0,
                structure,
            };
            let mut post = Growing(vec![vec![1.0; shape.outcomes]; shape.actions]);
            let mut scratch = Scratch::new(shape);
            let mut rng = learner_rng(11, 0, 0);
            let mut fresh = rng.clone();
            for step in 0..300 {
                sampled_q(&d, &post, &mut scratch, &mut rng);
                for (a, q) in scratch.q.iter().enumerate() {
                    let alpha = &post.0[a];
                    let expected = if let [a0, a1] = alpha[..] {
                        BetaPosterior::new(a1, a0).unwrap().sample(&mut fresh)
                    } else {
                        let mut theta = vec![0.0; alpha.len()];
                        DirichletPosterior::new(alpha)
                            .unwrap()
                            .sample_into(&mut fresh, &mut theta);
                        let rewards = structure.rewards(shape.row(0, a));
                        theta.iter().zip(rewards).map(|(t, r)| t * r).sum()
                    };
                    assert_eq!(q.to_bits(), expected.to_bits(), "step {step}, action {a}");
                }
                // One outcome of one row gains a count.
                let a = step % shape.actions;
                post.0[a][step % shape.outcomes] += 1.0;
            }
        }
    }
}
