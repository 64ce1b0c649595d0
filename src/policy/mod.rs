//! How a learner picks an action from its posterior.
//!
//! With γ = 0 (bandits) an action's value is its expected one-step reward
//! `Q(s, a) = Σₒ θ(o | s, a) · reward(s, a, o)` under some model — sampled
//! from the posterior, its mean, or an upper quantile — and only the current
//! state's rows are read, afresh every step. With γ > 0 a [`Planner`] runs
//! value iteration on a whole model, sampled or mean, on a schedule
//! ([`Replan`]), and the policy acts on the planned Q of the current state.

mod choice;
mod epsilon_greedy;
mod planner;
mod posterior_sampling;
mod softmax;
mod ucb;

pub use choice::Choice;
pub(crate) use choice::greedy_share;
pub use planner::{
    PLAN_TOLERANCE, PlanState, Planner, Replan, mean_model, policy_loss, sample_model,
};

use std::fmt;
use std::str::FromStr;

use rand::{Rng, RngExt};

use crate::error::ParamError;
use crate::model::{Shape, Structure};
use crate::posterior::GammaCache;

/// Read access to a learner's combined posterior, row by row.
pub trait PosteriorRows {
    /// Writes `prior + own + others` counts of `row` into `out`.
    fn alpha_into(&self, row: usize, out: &mut [f64]);
    /// The prior pseudo-count α₀ of every outcome.
    fn prior(&self) -> f64;
    /// [`alpha_into`](PosteriorRows::alpha_into) of a two-outcome row, by
    /// value: the hot read of a Bernoulli bandit. Implementations that can
    /// read a row without a buffer override it; the values must be the same.
    #[inline]
    fn alpha_pair(&self, row: usize) -> [f64; 2] {
        let mut out = [0.0; 2];
        self.alpha_into(row, &mut out);
        out
    }
}

/// Two-outcome posterior rows fixed by hand, for the policies' tests.
#[cfg(test)]
pub(crate) struct FixedRows(pub Vec<[f64; 2]>);

#[cfg(test)]
impl PosteriorRows for FixedRows {
    fn alpha_into(&self, row: usize, out: &mut [f64]) {
        out.copy_from_slice(&self.0[row]);
    }
    fn prior(&self) -> f64 {
        1.0
    }
}

/// An action-selection rule.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Policy {
    /// Thompson sampling: act greedily on a model drawn from the posterior.
    PosteriorSampling,
    /// Greedy on the posterior mean; a uniformly random action with
    /// probability ε.
    EpsilonGreedy {
        /// The probability of a random action, in `[0, 1]`.
        epsilon: f64,
    },
    /// Boltzmann exploration over the posterior-mean Q / τ.
    Softmax {
        /// The temperature τ > 0.
        temperature: f64,
    },
    /// Bayes-UCB (Kaufmann, Cappé & Garivier 2012): greedy on the
    /// `1 − 1/t` posterior quantile, t = 1 + observations of the state.
    BayesUcb,
}

/// Buffers a policy reuses across steps so that choosing allocates nothing.
#[derive(Debug, Clone)]
pub struct Scratch {
    alpha: Vec<f64>,
    theta: Vec<f64>,
    /// Posterior sampling's gamma samplers, one per (row, outcome).
    gammas: GammaCache,
    pub(crate) q: Vec<f64>,
}

impl Scratch {
    /// Buffers for a task of `shape`.
    pub fn new(shape: Shape) -> Self {
        Self {
            alpha: vec![0.0; shape.outcomes],
            theta: vec![0.0; shape.outcomes],
            gammas: GammaCache::default(),
            q: vec![0.0; shape.actions],
        }
    }
}

/// What a policy needs to know besides the posterior.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    /// The state to act in.
    pub state: usize,
    /// What the learner knows of its task.
    pub structure: &'a Structure,
}

impl Policy {
    /// Checks the policy's parameter: ε in `[0, 1]`, τ finite and > 0. The
    /// one gate every policy passes, parsed or built in code.
    pub fn check(&self) -> Result<(), ParamError> {
        let bad = |p: String| Err(ParamError::new("policy", p));
        match *self {
            Policy::EpsilonGreedy { epsilon } if !(0.0..=1.0).contains(&epsilon) => {
                bad(format!("ε = {epsilon} is outside [0, 1]"))
            }
            Policy::Softmax { temperature } if !(temperature.is_finite() && temperature > 0.0) => {
                bad(format!("τ = {temperature} must be finite and > 0"))
            }
            _ => Ok(()),
        }
    }

    /// Chooses an action in `d.state`.
    pub fn select<P, R>(&self, d: &Decision, post: &P, scratch: &mut Scratch, rng: &mut R) -> usize
    where
        P: PosteriorRows + ?Sized,
        R: Rng + ?Sized,
    {
        match *self {
            Policy::PosteriorSampling => {
                posterior_sampling::sampled_q(d, post, scratch, rng);
                argmax_random_ties(&scratch.q, rng)
            }
            Policy::EpsilonGreedy { epsilon } => {
                epsilon_greedy::select(epsilon, d, post, scratch, rng)
            }
            Policy::Softmax { temperature } => softmax::select(temperature, d, post, scratch, rng),
            Policy::BayesUcb => {
                ucb::quantile_q(d, post, scratch);
                argmax_random_ties(&scratch.q, rng)
            }
        }
    }

    /// Chooses an action from planned action values `q` (overwritten).
    #[inline]
    pub fn choose<R: Rng + ?Sized>(&self, q: &mut [f64], rng: &mut R) -> usize {
        match *self {
            Policy::PosteriorSampling | Policy::BayesUcb => argmax_random_ties(q, rng),
            Policy::EpsilonGreedy { epsilon } => epsilon_greedy::explore(epsilon, q.len(), rng)
                .unwrap_or_else(|| argmax_random_ties(q, rng)),
            Policy::Softmax { temperature } => softmax::boltzmann(temperature, q, rng),
        }
    }

    /// Whether the policy is defined for this structure; Bayes-UCB needs
    /// binary outcomes with reward equal to the outcome and no planning.
    pub fn supports(&self, structure: &Structure) -> bool {
        !matches!(self, Policy::BayesUcb) || structure.is_bernoulli()
    }
}

/// Posterior-mean Q of every action in the state, into `scratch.q`.
fn mean_q<P: PosteriorRows + ?Sized>(d: &Decision, post: &P, scratch: &mut Scratch) {
    let Scratch { alpha, q, .. } = scratch;
    let shape = d.structure.shape();
    let bernoulli = d.structure.is_bernoulli();
    for (a, qa) in q.iter_mut().enumerate() {
        let row = shape.row(d.state, a);
        post.alpha_into(row, alpha);
        if let (true, [a0, a1]) = (bernoulli, &alpha[..]) {
            // Rewards 0 and 1: the mean success probability, exactly what
            // the weighted sum below gives.
            *qa = a1 / (a0 + a1);
            continue;
        }
        let total: f64 = alpha.iter().sum();
        *qa = alpha
            .iter()
            .zip(d.structure.rewards(row))
            .map(|(al, r)| al / total * r)
            .sum();
    }
}

/// The index of the largest value; ties broken uniformly at random
/// (reservoir sampling, so the RNG is touched only when there is a tie).
#[inline]
pub(crate) fn argmax_random_ties<R: Rng + ?Sized>(xs: &[f64], rng: &mut R) -> usize {
    // Most scans never meet a value equal to the running maximum. Those
    // take the first strict maximum in a pass with no data-dependent
    // branch (they mispredict on random values); a scan that meets one is
    // redone with the RNG, so the draws are those of the reservoir alone.
    let Some((&first, rest)) = xs.split_first() else {
        return 0;
    };
    let (mut best, mut top, mut tied) = (0, first, false);
    for (i, &x) in rest.iter().enumerate() {
        tied |= x == top;
        let above = x > top;
        best = if above { i + 1 } else { best };
        top = if above { x } else { top };
    }
    if tied {
        reservoir_argmax(xs, rng)
    } else {
        best
    }
}

/// [`argmax_random_ties`] by reservoir sampling over the running maximum.
#[cold]
fn reservoir_argmax<R: Rng + ?Sized>(xs: &[f64], rng: &mut R) -> usize {
    let mut best = 0;
    let mut ties = 1u32;
    for (i, &x) in xs.iter().enumerate().skip(1) {
        if x > xs[best] {
            best = i;
            ties = 1;
        } else if x == xs[best] {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    best
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::PosteriorSampling => write!(f, "posterior-sampling"),
            Policy::EpsilonGreedy { epsilon } => write!(f, "epsilon-greedy:{epsilon}"),
            Policy::Softmax { temperature } => write!(f, "softmax:{temperature}"),
            Policy::BayesUcb => write!(f, "ucb"),
        }
    }
}

/// The forms a policy string may take, for error messages.
pub const POLICY_FORMS: &str = "posterior-sampling (or thompson), epsilon-greedy:E with E in [0, 1], softmax:T with T > 0, ucb";

impl FromStr for Policy {
    type Err = ParamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |p: String| ParamError::new("policy", p);
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (s.trim(), None),
        };
        let number = |what: &str| -> Result<f64, ParamError> {
            let a = arg
                .ok_or_else(|| bad(format!("`{name}` needs a parameter, e.g. `{name}:{what}`")))?;
            a.parse::<f64>()
                .map_err(|_| bad(format!("`{a}` is not a number")))
        };
        let policy = match (name, arg) {
            ("posterior-sampling" | "thompson", None) => Policy::PosteriorSampling,
            ("ucb" | "bayes-ucb", None) => Policy::BayesUcb,
            ("epsilon-greedy", _) => Policy::EpsilonGreedy {
                epsilon: number("0.1")?,
            },
            ("softmax", _) => Policy::Softmax {
                temperature: number("0.05")?,
            },
            _ => return Err(bad(format!("unknown policy `{s}`; use {POLICY_FORMS}"))),
        };
        policy.check().map(|()| policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::learner_rng;

    #[test]
    fn parses_and_prints() {
        for s in [
            "posterior-sampling",
            "epsilon-greedy:0.1",
            "softmax:0.05",
            "ucb",
        ] {
            assert_eq!(s.parse::<Policy>().unwrap().to_string(), s);
        }
        assert_eq!(
            "thompson".parse::<Policy>().unwrap(),
            Policy::PosteriorSampling
        );
        assert!("epsilon-greedy".parse::<Policy>().is_err());
        assert!("epsilon-greedy:1.5".parse::<Policy>().is_err());
        assert!("softmax:0".parse::<Policy>().is_err());
        assert!("softmax:nan".parse::<Policy>().is_err());
        assert!("greedy".parse::<Policy>().is_err());
    }

    /// The branch-free pass picks what the reservoir picks and leaves the
    /// RNG where the reservoir leaves it: on values with no ties, with ties
    /// at the maximum, with ties superseded later, and with NaN.
    #[test]
    fn argmax_equals_the_reservoir_draw_for_draw() {
        use rand::RngExt;
        let mut values = learner_rng(9, 0, 0);
        let mut fast = learner_rng(10, 0, 0);
        let mut slow = fast.clone();
        let fixed: [&[f64]; 6] = [
            &[],
            &[0.2],
            &[0.5, 0.5, 0.9],
            &[0.1, 0.7, 0.3, 0.7],
            &[f64::NAN, 0.3, 0.3],
            &[0.3, f64::NAN, 0.9],
        ];
        let mut cases: Vec<Vec<f64>> = fixed.iter().map(|c| c.to_vec()).collect();
        for _ in 0..5000 {
            let n = values.random_range(1..12);
            // Few distinct values, so ties are common.
            cases.push(
                (0..n)
                    .map(|_| f64::from(values.random_range(0..4u8)))
                    .collect(),
            );
            cases.push((0..n).map(|_| values.random::<f64>()).collect());
        }
        for xs in &cases {
            let a = argmax_random_ties(xs, &mut fast);
            let b = reservoir_argmax(xs, &mut slow);
            assert_eq!(a, b, "{xs:?}");
            assert_eq!(fast.clone().next_u64(), slow.clone().next_u64(), "{xs:?}");
        }
    }

    #[test]
    fn ties_are_broken_uniformly() {
        let mut rng = learner_rng(4, 0, 0);
        let mut hits = [0u32; 4];
        for _ in 0..40_000 {
            hits[argmax_random_ties(&[1.0, 3.0, 3.0, 3.0], &mut rng)] += 1;
        }
        assert_eq!(hits[0], 0);
        for h in &hits[1..] {
            // Binomial(40000, 1/3): sd ≈ 94; allow 5 sd.
            assert!((*h as f64 - 40_000.0 / 3.0).abs() < 470.0, "{hits:?}");
        }
    }
}
