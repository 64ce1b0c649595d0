use rand::{Rng, RngExt};

use super::{Decision, PosteriorRows, Scratch, mean_q};

/// Boltzmann exploration: `P(a) ∝ exp(Q(a) / τ)` on the posterior mean.
pub(super) fn select<P, R>(
    temperature: f64,
    d: &Decision,
    post: &P,
    scratch: &mut Scratch,
    rng: &mut R,
) -> usize
where
    P: PosteriorRows + ?Sized,
    R: Rng + ?Sized,
{
    mean_q(d, post, scratch);
    boltzmann(temperature, &mut scratch.q, rng)
}

/// Draws an action with probability `∝ exp(q / τ)`; overwrites `q`.
pub(super) fn boltzmann<R: Rng + ?Sized>(temperature: f64, q: &mut [f64], rng: &mut R) -> usize {
    // Shift by the maximum so exp never overflows.
    let top = q.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for x in q.iter_mut() {
        *x = ((*x - top) / temperature).exp();
        total += *x;
    }
    let mut u = rng.random::<f64>() * total;
    for (a, w) in q.iter().enumerate() {
        u -= w;
        if u < 0.0 {
            return a;
        }
    }
    q.len() - 1
}

#[cfg(test)]
mod tests {
    use super::super::{Decision, FixedRows as Fixed, Policy, Scratch};
    use crate::model::Structure;
    use crate::rng::learner_rng;

    #[test]
    fn frequencies_follow_boltzmann_weights() {
        let structure = Structure::bandit(3).unwrap();
        // Posterior means 0.2, 0.4, 0.5.
        let post = Fixed(vec![[8.0, 2.0], [6.0, 4.0], [5.0, 5.0]]);
        let d = Decision {
            state: 0,
            structure: &structure,
        };
        let tau = 0.1;
        let policy = Policy::Softmax { temperature: tau };
        let mut scratch = Scratch::new(structure.shape());
        let mut rng = learner_rng(5, 0, 0);
        let n = 60_000;
        let mut hits = [0f64; 3];
        for _ in 0..n {
            hits[policy.select(&d, &post, &mut scratch, &mut rng)] += 1.0;
        }
        let w: Vec<f64> = [0.2f64, 0.4, 0.5].iter().map(|q| (q / tau).exp()).collect();
        let z: f64 = w.iter().sum();
        for (h, wi) in hits.iter().zip(&w) {
            let p = wi / z;
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!((h / n as f64 - p).abs() < 5.0 * sd, "{hits:?}");
        }
    }
}
