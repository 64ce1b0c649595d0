//! Choosing among the arms still in play, and the probability of a choice.

use rand::Rng;

use super::{
    Decision, Policy, PosteriorRows, Scratch, argmax_random_ties, epsilon_greedy, mean_q,
    posterior_sampling, softmax, ucb,
};

/// A decision and the probability with which the policy makes it, for an
/// application that logs propensities for off-policy evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Choice {
    /// The arm (action) chosen.
    pub arm: usize,
    /// The probability that the policy, in the state it was in, chooses
    /// this arm here.
    pub propensity: f64,
    /// Whether `propensity` is a Monte Carlo estimate (posterior sampling)
    /// rather than exact.
    pub estimated: bool,
}

impl Choice {
    /// A choice made with probability `propensity`.
    pub fn new(arm: usize, propensity: f64, estimated: bool) -> Self {
        Self {
            arm,
            propensity,
            estimated,
        }
    }
}

/// The share of `1 − ε` that greedy choice over `values` gives `arm`: one
/// over the ties at the top if it is among them, else 0. Retired arms hold
/// −∞ and are never at the top while an arm is active.
pub(crate) fn greedy_share(values: &[f64], arm: usize) -> f64 {
    let best = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values[arm] < best {
        return 0.0;
    }
    1.0 / values.iter().filter(|v| **v == best).count() as f64
}

/// How many of `actions` are in play; `retired` is empty when none is
/// retired, else one mark per action.
fn in_play(retired: &[bool], actions: usize) -> usize {
    if retired.is_empty() {
        actions
    } else {
        retired.iter().filter(|r| !**r).count()
    }
}

/// The `k`-th action (from 0) in play.
fn nth_active(retired: &[bool], k: usize) -> usize {
    if retired.is_empty() {
        return k;
    }
    retired
        .iter()
        .enumerate()
        .filter(|(_, r)| !**r)
        .nth(k)
        .map_or(0, |(a, _)| a)
}

impl Policy {
    /// The policy's value of every action of `d.state`, into `scratch.q`:
    /// a posterior draw, the mean or the upper quantile; retired ones −∞.
    fn values_into<P, R>(
        &self,
        d: &Decision,
        post: &P,
        scratch: &mut Scratch,
        rng: &mut R,
        retired: &[bool],
    ) where
        P: PosteriorRows + ?Sized,
        R: Rng + ?Sized,
    {
        match self {
            Policy::PosteriorSampling => posterior_sampling::sampled_q(d, post, scratch, rng),
            Policy::EpsilonGreedy { .. } | Policy::Softmax { .. } => mean_q(d, post, scratch),
            Policy::BayesUcb => ucb::quantile_q(d, post, scratch),
        }
        for (q, r) in scratch.q.iter_mut().zip(retired) {
            if *r {
                *q = f64::NEG_INFINITY;
            }
        }
    }

    /// [`select`](Policy::select) among the actions not `retired` (empty:
    /// none is; else one mark per action, at least one unmarked): the same
    /// draws in the same order where none is.
    pub(crate) fn select_among<P, R>(
        &self,
        d: &Decision,
        post: &P,
        scratch: &mut Scratch,
        rng: &mut R,
        retired: &[bool],
    ) -> usize
    where
        P: PosteriorRows + ?Sized,
        R: Rng + ?Sized,
    {
        let active = in_play(retired, scratch.q.len());
        if let Policy::EpsilonGreedy { epsilon } = *self
            && let Some(k) = epsilon_greedy::explore(epsilon, active, rng)
        {
            return nth_active(retired, k);
        }
        self.values_into(d, post, scratch, rng, retired);
        match *self {
            Policy::Softmax { temperature } => {
                let a = softmax::boltzmann(temperature, &mut scratch.q, rng);
                // Rounding can run the draw past the last weight.
                if retired.get(a) == Some(&true) {
                    nth_active(retired, active - 1)
                } else {
                    a
                }
            }
            _ => argmax_random_ties(&scratch.q, rng),
        }
    }

    /// The probability that [`select_among`](Policy::select_among) chooses
    /// `arm` now: exact for ε-greedy, softmax and Bayes-UCB, estimated for
    /// posterior sampling from `draws` further draws plus the decision's
    /// own (so never 0), which advance `rng`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn propensity<P, R>(
        &self,
        arm: usize,
        d: &Decision,
        post: &P,
        scratch: &mut Scratch,
        rng: &mut R,
        retired: &[bool],
        draws: u32,
    ) -> Choice
    where
        P: PosteriorRows + ?Sized,
        R: Rng + ?Sized,
    {
        if let Policy::PosteriorSampling = *self {
            let mut wins = 1u32;
            for _ in 0..draws {
                self.values_into(d, post, scratch, rng, retired);
                wins += u32::from(argmax_random_ties(&scratch.q, rng) == arm);
            }
            return Choice::new(arm, f64::from(wins) / (f64::from(draws) + 1.0), true);
        }
        // The other policies' values draw nothing: the ones the choice saw.
        self.values_into(d, post, scratch, rng, retired);
        let q = &scratch.q;
        let p = match *self {
            Policy::EpsilonGreedy { epsilon } => {
                let active = in_play(retired, q.len()) as f64;
                epsilon / active + (1.0 - epsilon) * greedy_share(q, arm)
            }
            Policy::Softmax { temperature } => {
                // The weights `boltzmann` draws from, normalised.
                let top = q.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let weight = |x: f64| ((x - top) / temperature).exp();
                weight(q[arm]) / q.iter().map(|x| weight(*x)).sum::<f64>()
            }
            Policy::BayesUcb | Policy::PosteriorSampling => greedy_share(q, arm),
        };
        Choice::new(arm, p, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Structure;
    use crate::rng::learner_rng;

    use crate::policy::FixedRows as Fixed;

    /// Four arms, one of them twice over, and the posterior they share.
    fn four_arms() -> (Structure, Fixed) {
        let post = Fixed(vec![[3.0, 2.0], [2.0, 3.0], [2.0, 3.0], [9.0, 1.0]]);
        (Structure::bandit(4).unwrap(), post)
    }

    const POLICIES: [&str; 4] = [
        "posterior-sampling",
        "epsilon-greedy:0.3",
        "softmax:0.2",
        "ucb",
    ];

    /// With no arm retired, the masked choice draws what `select` draws.
    #[test]
    fn nothing_retired_is_select_draw_for_draw() {
        let (structure, post) = four_arms();
        let d = Decision {
            state: 0,
            structure: &structure,
        };
        for policy in POLICIES {
            let policy: Policy = policy.parse().unwrap();
            let (mut r1, mut r2) = (learner_rng(1, 0, 0), learner_rng(1, 0, 0));
            let (mut s1, mut s2) = (
                Scratch::new(structure.shape()),
                Scratch::new(structure.shape()),
            );
            for _ in 0..500 {
                assert_eq!(
                    policy.select(&d, &post, &mut s1, &mut r1),
                    policy.select_among(&d, &post, &mut s2, &mut r2, &[false; 4]),
                    "{policy}"
                );
            }
        }
    }

    /// Frequencies of the masked choice agree with its stated propensities
    /// (4 standard errors), and a retired arm is never chosen.
    #[test]
    fn frequencies_match_propensities() {
        let (structure, post) = four_arms();
        let d = Decision {
            state: 0,
            structure: &structure,
        };
        let retired = [false, false, true, false];
        for policy in POLICIES {
            let policy: Policy = policy.parse().unwrap();
            let mut rng = learner_rng(2, 0, 0);
            let mut scratch = Scratch::new(structure.shape());
            let n = 20_000;
            let mut counts = [0u32; 4];
            for _ in 0..n {
                counts[policy.select_among(&d, &post, &mut scratch, &mut rng, &retired)] += 1;
            }
            assert_eq!(counts[2], 0, "{policy}");
            for arm in [0, 1, 3] {
                let p = policy
                    .propensity(arm, &d, &post, &mut scratch, &mut rng, &retired, 20_000)
                    .propensity;
                let f = f64::from(counts[arm]) / f64::from(n);
                let se = (p * (1.0 - p) / f64::from(n)).sqrt() + (0.25f64 / 20_000.0).sqrt();
                assert!(
                    (f - p).abs() <= 4.0 * se + 1e-12,
                    "{policy} arm {arm}: {f} vs {p}"
                );
            }
        }
    }
}
