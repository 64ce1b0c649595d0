use rand::Rng;
use rand_distr::{Distribution, Gamma};
use statrs::function::beta::inv_beta_reg;

use crate::error::{Error, Result};

/// `Beta(α, β)`: the posterior of a success probability after `α − α₀`
/// successes and `β − α₀` failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BetaPosterior {
    alpha: f64,
    beta: f64,
}

impl BetaPosterior {
    /// Both shapes must be finite and positive.
    pub fn new(alpha: f64, beta: f64) -> Result<Self> {
        for (name, v) in [("alpha", alpha), ("beta", beta)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(
                    "Beta posterior",
                    name,
                    format!("{v} is not a finite positive number"),
                ));
            }
        }
        Ok(Self { alpha, beta })
    }

    /// For shapes the caller built from a positive prior and non-negative
    /// counts; skips the checks on the hot path.
    pub(crate) fn from_valid(alpha: f64, beta: f64) -> Self {
        debug_assert!(alpha > 0.0 && beta > 0.0, "Beta({alpha}, {beta})");
        Self { alpha, beta }
    }

    /// The first shape, α.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The second shape, β.
    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// The posterior mean `α / (α + β)`.
    pub fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    /// The `p`-quantile (inverse CDF), for Bayes-UCB.
    pub fn quantile(&self, p: f64) -> f64 {
        inv_beta_reg(self.alpha, self.beta, p.clamp(0.0, 1.0))
    }

    /// A draw by the ratio of two gammas: cheaper than rand_distr's Beta,
    /// which re-derives Cheng's constants for every new (α, β).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let x = gamma_draw(self.alpha, rng);
        let y = gamma_draw(self.beta, rng);
        x / (x + y)
    }
}

impl Distribution<f64> for BetaPosterior {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        BetaPosterior::sample(self, rng)
    }
}

/// One `Gamma(shape, 1)` draw; `shape` is positive and finite by construction.
#[inline]
pub(crate) fn gamma_draw<R: Rng + ?Sized>(shape: f64, rng: &mut R) -> f64 {
    match Gamma::new(shape, 1.0) {
        Ok(g) => g.sample(rng),
        // Unreachable for the positive shapes our posteriors hold.
        Err(_) => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::learner_rng;

    #[test]
    fn rejects_bad_shapes() {
        assert!(BetaPosterior::new(0.0, 1.0).is_err());
        assert!(BetaPosterior::new(1.0, f64::NAN).is_err());
        assert!(BetaPosterior::new(f64::INFINITY, 1.0).is_err());
    }

    #[test]
    fn sample_moments_match_closed_form() {
        // 200k draws: the standard error of the mean is sd/447 ≈ 2.4e-4 here.
        let b = BetaPosterior::new(3.5, 7.0).unwrap();
        let mut rng = learner_rng(1, 0, 0);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| b.sample(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let (a, c) = (3.5f64, 7.0f64);
        let true_var = a * c / ((a + c).powi(2) * (a + c + 1.0));
        assert!((mean - b.mean()).abs() < 5.0 * (true_var / n as f64).sqrt());
        assert!((var - true_var).abs() / true_var < 0.02);
    }

    #[test]
    fn quantile_inverts_the_cdf() {
        let b = BetaPosterior::new(2.0, 5.0).unwrap();
        for p in [0.01, 0.3, 0.5, 0.9, 0.999] {
            let x = b.quantile(p);
            let back = statrs::function::beta::beta_reg(2.0, 5.0, x);
            assert!((back - p).abs() < 1e-10, "p={p} x={x} back={back}");
        }
    }
}
