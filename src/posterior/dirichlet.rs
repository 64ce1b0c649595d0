use rand::Rng;

use super::KeptGamma;
use super::beta::gamma_draw;
use crate::error::{Error, Result};

/// `Dir(α)` over the outcomes of one row, borrowed from the caller's buffer
/// so sampling allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct DirichletPosterior<'a> {
    alpha: &'a [f64],
}

impl<'a> DirichletPosterior<'a> {
    /// At least two concentrations, each finite and positive.
    pub fn new(alpha: &'a [f64]) -> Result<Self> {
        if alpha.len() < 2 {
            return Err(Error::invalid(
                "Dirichlet posterior",
                "alpha",
                format!("{} outcomes; a Dirichlet needs at least 2", alpha.len()),
            ));
        }
        if let Some((i, v)) = alpha
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v > 0.0))
        {
            return Err(Error::invalid(
                "Dirichlet posterior",
                format!("alpha[{i}]"),
                format!("{v} is not a finite positive number"),
            ));
        }
        Ok(Self { alpha })
    }

    /// The concentrations.
    pub fn alpha(&self) -> &[f64] {
        self.alpha
    }

    /// Writes the posterior mean into `out`.
    pub fn mean_into(&self, out: &mut [f64]) {
        let total: f64 = self.alpha.iter().sum();
        for (o, a) in out.iter_mut().zip(self.alpha) {
            *o = a / total;
        }
    }

    /// Writes one draw into `out`, by normalised gammas.
    pub fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        normalised_gammas(self.alpha, out, |_, a| gamma_draw(a, rng));
    }

    /// Overwrites the concentrations `alpha` with one draw from `Dir(alpha)`,
    /// for callers that need no copy of α afterwards.
    pub fn sample_in_place<R: Rng + ?Sized>(alpha: &mut [f64], rng: &mut R) {
        // Neighbouring outcomes often share a concentration (every outcome
        // never seen holds the prior), and then a kept sampler.
        let mut sampler = KeptGamma::default();
        let mut total = 0.0;
        for a in alpha.iter_mut() {
            *a = sampler.draw(*a, rng);
            total += *a;
        }
        for a in alpha.iter_mut() {
            *a /= total;
        }
    }
}

/// A draw from `Dir(alpha)` into `out`: `gamma(o, α_o)` for every outcome
/// `o`, in order, normalised. `gamma` is where the draws come from (a fresh
/// sampler each, or samplers kept between draws).
#[inline]
pub(crate) fn normalised_gammas(
    alpha: &[f64],
    out: &mut [f64],
    mut gamma: impl FnMut(usize, f64) -> f64,
) {
    let mut total = 0.0;
    for (o, (x, a)) in out.iter_mut().zip(alpha).enumerate() {
        *x = gamma(o, *a);
        total += *x;
    }
    for x in out.iter_mut() {
        *x /= total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::learner_rng;

    /// Drawing in place, with a sampler kept across equal neighbours,
    /// gives what fresh samplers give, bit for bit: runs of the prior,
    /// shapes below and above 1, and shapes that come back after a change.
    #[test]
    fn in_place_draws_equal_fresh_samplers() {
        let rows: [&[f64]; 4] = [
            &[1.0, 1.0, 1.0, 4.0, 1.0, 1.0, 7.5, 7.5],
            &[0.02, 0.02, 0.02, 3.02, 0.02, 0.02],
            &[0.5, 2.0, 0.5, 2.0],
            &[250.0, 250.0, 1.0],
        ];
        let mut in_place_rng = learner_rng(3, 0, 0);
        let mut fresh_rng = in_place_rng.clone();
        for round in 0..50 {
            for alpha in rows {
                let mut in_place = alpha.to_vec();
                DirichletPosterior::sample_in_place(&mut in_place, &mut in_place_rng);
                let mut fresh = vec![0.0; alpha.len()];
                DirichletPosterior::new(alpha)
                    .unwrap()
                    .sample_into(&mut fresh_rng, &mut fresh);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&in_place), bits(&fresh), "round {round}, {alpha:?}");
            }
        }
    }

    #[test]
    fn rejects_bad_concentrations() {
        assert!(DirichletPosterior::new(&[1.0]).is_err());
        assert!(DirichletPosterior::new(&[1.0, -1.0]).is_err());
        assert!(DirichletPosterior::new(&[1.0, f64::NAN, 2.0]).is_err());
    }

    #[test]
    fn sample_means_match_closed_form() {
        let alpha = [1.0, 2.5, 6.5];
        let d = DirichletPosterior::new(&alpha).unwrap();
        let mut rng = learner_rng(2, 0, 0);
        let mut draw = [0.0; 3];
        let mut sum = [0.0; 3];
        let n = 100_000;
        for _ in 0..n {
            d.sample_into(&mut rng, &mut draw);
            assert!((draw.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for (s, x) in sum.iter_mut().zip(draw) {
                *s += x;
            }
        }
        let mut mean = [0.0; 3];
        d.mean_into(&mut mean);
        for (s, m) in sum.iter().zip(mean) {
            // sd of each coordinate ≤ 0.5, so 5 standard errors ≤ 0.008.
            assert!((s / n as f64 - m).abs() < 0.008);
        }
    }
}
