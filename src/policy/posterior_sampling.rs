use rand::Rng;

use super::{Decision, PosteriorRows, Scratch};

/// Q under one model drawn from the posterior, into `scratch.q`.
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
    // Rewards 0 and 1: Q is the drawn success probability, exactly what
    // `(1 − p)·0 + p·1` gives.
    let bernoulli = d.structure.is_bernoulli();
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
            if bernoulli {
                *qa = p1;
                continue;
            }
            theta[0] = 1.0 - p1;
            theta[1] = p1;
        } else {
            // A Dirichlet draw, as `DirichletPosterior::sample_into` makes it.
            let mut total = 0.0;
            for (o, (t, a)) in theta.iter_mut().zip(alpha.iter()).enumerate() {
                *t = gammas.draw(slot + o, *a, rng);
                total += *t;
            }
            for t in theta.iter_mut() {
                *t /= total;
            }
        }
        *qa = theta
            .iter()
            .zip(d.structure.rewards(row))
            .map(|(t, r)| t * r)
            .sum();
    }
}
