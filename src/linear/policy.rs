//! How a contextual agent turns its arms' posteriors into a choice.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ParamError;

/// A contextual bandit policy. Each arm gets a value from its posterior
/// and the context; the arm of highest value is chosen, ties at random.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LinearPolicy {
    /// Linear Thompson sampling (Agrawal & Goyal 2013): the value is
    /// `xᵀθ̃` with θ̃ ~ N(μ, v²σ²Λ⁻¹), σ² known or drawn from its posterior;
    /// `scale` v = 1 draws from the posterior itself.
    Thompson {
        /// v > 0, the inflation of the posterior's spread.
        scale: f64,
    },
    /// LinUCB (Li, Chu, Langford & Schapire 2010): `xᵀμ + α √(xᵀΛ⁻¹x)`.
    LinUcb {
        /// α ≥ 0, the width of the confidence bonus.
        alpha: f64,
    },
    /// Bayes-UCB (Kaufmann, Cappé & Garivier 2012) on the predictive mean
    /// `xᵀθ`: its `1 − 1/t` quantile, t = 1 + the agent's observations,
    /// with the noise variance at its posterior mean.
    BayesUcb,
    /// Greedy on `xᵀμ`; a uniformly random arm with probability ε.
    EpsilonGreedy {
        /// The probability of a random arm, in `[0, 1]`.
        epsilon: f64,
    },
}

/// The forms [`LinearPolicy`] parses.
pub const LINEAR_POLICY_FORMS: &str = "thompson (or thompson:V with V > 0), linucb:A with A ≥ 0, ucb, epsilon-greedy:E with E in [0, 1], greedy";

impl LinearPolicy {
    /// Checks the parameters: the one gate, used by parsing too.
    pub fn check(self) -> Result<Self, ParamError> {
        let bad = |p: String| Err(ParamError::new("policy", p));
        match self {
            LinearPolicy::Thompson { scale } if !(scale.is_finite() && scale > 0.0) => {
                bad(format!("scale {scale} must be finite and > 0"))
            }
            LinearPolicy::LinUcb { alpha } if !(alpha.is_finite() && alpha >= 0.0) => {
                bad(format!("α = {alpha} must be finite and ≥ 0"))
            }
            LinearPolicy::EpsilonGreedy { epsilon } if !(0.0..=1.0).contains(&epsilon) => {
                bad(format!("ε = {epsilon} is outside [0, 1]"))
            }
            p => Ok(p),
        }
    }
}

/// Linear Thompson sampling from the posterior itself.
impl Default for LinearPolicy {
    fn default() -> Self {
        LinearPolicy::Thompson { scale: 1.0 }
    }
}

impl fmt::Display for LinearPolicy {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            LinearPolicy::Thompson { scale } if *scale == 1.0 => write!(f, "thompson"),
            LinearPolicy::Thompson { scale } => write!(f, "thompson:{scale}"),
            LinearPolicy::LinUcb { alpha } => write!(f, "linucb:{alpha}"),
            LinearPolicy::BayesUcb => write!(f, "ucb"),
            LinearPolicy::EpsilonGreedy { epsilon } if *epsilon == 0.0 => write!(f, "greedy"),
            LinearPolicy::EpsilonGreedy { epsilon } => write!(f, "epsilon-greedy:{epsilon}"),
        }
    }
}

impl FromStr for LinearPolicy {
    type Err = ParamError;

    /// ```
    /// use parbayes::linear::LinearPolicy;
    ///
    /// assert_eq!("linucb:0.5".parse(), Ok(LinearPolicy::LinUcb { alpha: 0.5 }));
    /// assert_eq!("greedy".parse(), Ok(LinearPolicy::EpsilonGreedy { epsilon: 0.0 }));
    /// assert!("linucb:-1".parse::<LinearPolicy>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, ParamError> {
        let bad = |p: String| ParamError::new("policy", p);
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let number = |what: &str| -> Result<f64, ParamError> {
            let a = arg
                .ok_or_else(|| bad(format!("`{name}` needs a parameter, e.g. `{name}:{what}`")))?;
            a.parse().map_err(|_| bad(format!("`{a}` is not a number")))
        };
        let policy = match (name, arg) {
            ("thompson", None) => LinearPolicy::Thompson { scale: 1.0 },
            ("thompson", Some(_)) => LinearPolicy::Thompson {
                scale: number("1")?,
            },
            ("linucb", _) => LinearPolicy::LinUcb {
                alpha: number("1")?,
            },
            ("ucb" | "bayes-ucb", None) => LinearPolicy::BayesUcb,
            ("epsilon-greedy", _) => LinearPolicy::EpsilonGreedy {
                epsilon: number("0.1")?,
            },
            ("greedy", None) => LinearPolicy::EpsilonGreedy { epsilon: 0.0 },
            _ => {
                return Err(bad(format!(
                    "unknown policy `{s}`; use {LINEAR_POLICY_FORMS}"
                )));
            }
        };
        policy.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_reads_back_what_it_prints() {
        for s in [
            "thompson",
            "thompson:0.5",
            "linucb:1",
            "ucb",
            "epsilon-greedy:0.1",
            "greedy",
        ] {
            let p: LinearPolicy = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        for bad in [
            "thompson:0",
            "linucb",
            "linucb:nan",
            "epsilon-greedy:2",
            "softmax:1",
        ] {
            assert!(bad.parse::<LinearPolicy>().is_err(), "{bad}");
        }
    }
}
