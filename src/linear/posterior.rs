//! One key's posterior, kept factored between decisions.

use nalgebra::{Cholesky, DMatrix, DVector, Dyn};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Gamma, StandardNormal};

use super::family::{Gaussian, Noise, solve_mean};

/// The posterior of one key: `Λ = L Lᵀ` (prior included), `b`, the mean
/// `μ = Λ⁻¹ b`, and the noise's posterior. An observation updates `L` by
/// a rank-one step, O(d²); only evidence from elsewhere refactors, O(d³).
#[derive(Debug, Clone)]
pub(crate) struct KeyPosterior {
    chol: Cholesky<f64, Dyn>,
    b: DVector<f64>,
    mean: DVector<f64>,
    n: f64,
    squares: f64,
}

/// Buffers a decision reuses.
#[derive(Debug, Clone)]
pub(crate) struct Work {
    /// L⁻¹ x.
    pub(crate) solved: DVector<f64>,
    /// Standard normal draws.
    pub(crate) z: DVector<f64>,
    /// Posterior parameters of one key.
    pub(crate) post: Vec<f64>,
}

impl Work {
    pub(crate) fn new(family: &Gaussian) -> Self {
        let d = family.dim();
        Self {
            solved: DVector::zeros(d),
            z: DVector::zeros(d),
            post: vec![0.0; family.width()],
        }
    }
}

impl KeyPosterior {
    /// The prior's posterior: no evidence yet.
    pub(crate) fn prior(family: &Gaussian) -> Self {
        let d = family.dim();
        let chol = Cholesky::new(DMatrix::identity(d, d) * family.ridge())
            .expect("λ I with λ > 0 is positive definite");
        Self {
            chol,
            b: DVector::zeros(d),
            mean: DVector::zeros(d),
            n: 0.0,
            squares: 0.0,
        }
    }

    /// Refactors from posterior parameters `post` (prior included), reusing
    /// the storage. `post` passed the family's check, so Λ is positive
    /// definite; if rounding made it not, the prior is kept.
    pub(crate) fn rebuild(&mut self, family: &Gaussian, post: &[f64]) {
        let mut m = std::mem::replace(&mut self.chol, Cholesky::pack_dirty(DMatrix::zeros(0, 0)))
            .unpack_dirty();
        family.unpack_into(post, &mut m);
        match Cholesky::new(m) {
            Some(c) => self.chol = c,
            None => {
                *self = Self::prior(family);
                return;
            }
        }
        let (b, n, squares) = family.tail(post);
        self.b.as_mut_slice().copy_from_slice(b);
        (self.n, self.squares) = (n, squares);
        solve_mean(&self.chol, b, &mut self.mean);
    }

    /// Adds one observation `(x, r)`: `Λ += x xᵀ` by a rank-one update.
    pub(crate) fn update(&mut self, x: &DVector<f64>, r: f64) {
        self.chol.rank_one_update(x, 1.0);
        self.b.axpy(r, x, 1.0);
        self.n += 1.0;
        self.squares += r * r;
        self.mean.copy_from(&self.b);
        self.chol.solve_mut(&mut self.mean);
    }

    /// `xᵀ μ`.
    #[inline]
    pub(crate) fn mean_value(&self, x: &DVector<f64>) -> f64 {
        self.mean.dot(x)
    }

    /// Writes `L⁻¹ x`, whose squared norm is `xᵀ Λ⁻¹ x`.
    #[inline]
    pub(crate) fn whiten(&self, x: &DVector<f64>, out: &mut DVector<f64>) {
        out.copy_from(x);
        self.chol
            .l_dirty()
            .solve_lower_triangular_unchecked_mut(out);
    }

    /// The noise variance a draw uses: σ² if known, else one draw of
    /// 1/τ with τ from the precision's posterior Gamma.
    pub(crate) fn draw_variance<R: Rng + ?Sized>(&self, family: &Gaussian, rng: &mut R) -> f64 {
        match family.noise() {
            Noise::Known { variance } => variance,
            Noise::Unknown { .. } => {
                let (a, b) = self.precision(family);
                // a > 0 and b > 0 by construction.
                let tau: f64 = Gamma::new(a, 1.0 / b).map_or(1.0, |g| g.sample(rng));
                1.0 / tau
            }
        }
    }

    /// The noise variance's posterior mean: σ² if known, else
    /// `E[1/τ] = b / (a − 1)` (the rate over the shape where a ≤ 1).
    pub(crate) fn mean_variance(&self, family: &Gaussian) -> f64 {
        match family.noise() {
            Noise::Known { variance } => variance,
            Noise::Unknown { .. } => {
                let (a, b) = self.precision(family);
                if a > 1.0 { b / (a - 1.0) } else { b / a }
            }
        }
    }

    /// Gamma(a, b) posterior of the noise precision (unknown noise).
    fn precision(&self, family: &Gaussian) -> (f64, f64) {
        let Noise::Unknown { shape, rate } = family.noise() else {
            return (1.0, 1.0);
        };
        let fit = self.mean.dot(&self.b);
        (
            shape + 0.5 * self.n,
            rate + 0.5 * (self.squares - fit).max(0.0),
        )
    }

    /// The posterior mean μ.
    pub(crate) fn mean(&self) -> &DVector<f64> {
        &self.mean
    }

    /// A Thompson draw's value `xᵀ θ̃`, θ̃ ~ N(μ, v² σ² Λ⁻¹): `xᵀμ + v σ
    /// (L⁻¹x)ᵀ z` with z standard normal, so a draw costs one triangular
    /// solve.
    pub(crate) fn sample_value<R: Rng + ?Sized>(
        &self,
        family: &Gaussian,
        x: &DVector<f64>,
        scale: f64,
        work: &mut Work,
        rng: &mut R,
    ) -> f64 {
        let sd = scale * self.draw_variance(family, rng).sqrt();
        self.whiten(x, &mut work.solved);
        for z in work.z.iter_mut() {
            *z = rng.sample(StandardNormal);
        }
        self.mean_value(x) + sd * work.solved.dot(&work.z)
    }
}
