//! One key's posterior, kept factored between decisions.

use nalgebra::{Cholesky, DMatrix, DVector};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Gamma, StandardNormal};
use serde::{Deserialize, Serialize};

use super::family::{Gaussian, Noise};
use crate::share::Family;

/// The posterior of one key: the lower Cholesky factor `L` of `Λ = L Lᵀ`
/// (prior included), `b`, the mean `μ = Λ⁻¹ b`, and what the noise's
/// posterior needs. An observation updates `L` by a rank-one step, O(d²);
/// only evidence from elsewhere refactors, O(d³).
#[derive(Debug, Clone)]
pub(crate) struct KeyPosterior {
    /// Lower triangular; the strict upper triangle is never read.
    l: DMatrix<f64>,
    b: DVector<f64>,
    mean: DVector<f64>,
    n: f64,
    squares: f64,
}

/// What a saved key holds: `L`'s lower triangle column by column, `b`, `n`
/// and `Σr²`. The mean is solved again on restore, by the same steps, so a
/// restored agent decides bit for bit as the saved one would have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyState {
    l: Vec<f64>,
    b: Vec<f64>,
    n: f64,
    squares: f64,
}

/// Buffers a decision or an observation reuses, so neither allocates.
#[derive(Debug, Clone)]
pub(crate) struct Work {
    /// L⁻¹ x, or a drawn θ̃.
    pub(crate) solved: DVector<f64>,
    /// Standard normal draws; the rank-one update's scratch.
    pub(crate) z: DVector<f64>,
    /// One arm's features.
    pub(crate) x: DVector<f64>,
    /// Posterior parameters of one key.
    pub(crate) post: Vec<f64>,
}

impl Work {
    pub(crate) fn new(family: &Gaussian) -> Self {
        let d = family.dim();
        Self {
            solved: DVector::zeros(d),
            z: DVector::zeros(d),
            x: DVector::zeros(d),
            post: vec![0.0; family.width()],
        }
    }
}

impl KeyPosterior {
    /// The prior's posterior: no evidence yet.
    pub(crate) fn prior(family: &Gaussian) -> Self {
        let d = family.dim();
        Self {
            l: DMatrix::identity(d, d) * family.ridge().sqrt(),
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
        let mut m = std::mem::take(&mut self.l);
        family.unpack_into(post, &mut m);
        match Cholesky::new(m) {
            Some(c) => self.l = c.unpack_dirty(),
            None => {
                *self = Self::prior(family);
                return;
            }
        }
        let (b, n, squares) = family.tail(post);
        self.b.as_mut_slice().copy_from_slice(b);
        (self.n, self.squares) = (n, squares);
        self.solve_mean();
    }

    /// Adds one observation `(x, r)`: `Λ += x xᵀ` by a rank-one update of
    /// `L`; `scratch` (d long) is overwritten.
    pub(crate) fn update(&mut self, x: &DVector<f64>, r: f64, scratch: &mut DVector<f64>) {
        scratch.copy_from(x);
        rank_one_update(&mut self.l, scratch);
        self.b.axpy(r, x, 1.0);
        self.n += 1.0;
        self.squares += r * r;
        self.solve_mean();
    }

    /// μ = Λ⁻¹ b = L⁻ᵀ L⁻¹ b.
    fn solve_mean(&mut self) {
        self.mean.copy_from(&self.b);
        self.l.solve_lower_triangular_unchecked_mut(&mut self.mean);
        self.l
            .tr_solve_lower_triangular_unchecked_mut(&mut self.mean);
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
        self.l.solve_lower_triangular_unchecked_mut(out);
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
        solved: &mut DVector<f64>,
        z: &mut DVector<f64>,
        rng: &mut R,
    ) -> f64 {
        let sd = scale * self.draw_variance(family, rng).sqrt();
        self.whiten(x, solved);
        for z in z.iter_mut() {
            *z = rng.sample(StandardNormal);
        }
        self.mean_value(x) + sd * solved.dot(z)
    }

    /// Draws a whole θ̃ ~ N(μ, v² σ² Λ⁻¹) into `work.solved`: `μ + v σ
    /// L⁻ᵀ z`, one triangular solve, for a model whose arms share θ.
    pub(crate) fn sample_theta<R: Rng + ?Sized>(
        &self,
        family: &Gaussian,
        scale: f64,
        work: &mut Work,
        rng: &mut R,
    ) {
        let sd = scale * self.draw_variance(family, rng).sqrt();
        for z in work.z.iter_mut() {
            *z = rng.sample(StandardNormal);
        }
        self.l.tr_solve_lower_triangular_unchecked_mut(&mut work.z);
        work.solved.copy_from(&self.mean);
        work.solved.axpy(sd, &work.z, 1.0);
    }

    /// The key as a saved agent keeps it.
    pub(crate) fn save(&self) -> KeyState {
        let d = self.l.nrows();
        let l = (0..d)
            .flat_map(|j| (j..d).map(move |i| (i, j)))
            .map(|ij| self.l[ij])
            .collect();
        KeyState {
            l,
            b: self.b.as_slice().to_vec(),
            n: self.n,
            squares: self.squares,
        }
    }

    /// The key `saved` describes, if it is a valid posterior of `family`.
    pub(crate) fn restore(family: &Gaussian, saved: &KeyState) -> Result<Self, String> {
        let d = family.dim();
        if saved.l.len() != d * (d + 1) / 2 || saved.b.len() != d {
            return Err(format!(
                "a key of {} factor and {} mean entries; the agents have d = {d}",
                saved.l.len(),
                saved.b.len()
            ));
        }
        let finite = saved.l.iter().chain(&saved.b).all(|v| v.is_finite());
        if !(finite && saved.n >= 0.0 && saved.squares >= 0.0) {
            return Err("a key with a non-finite entry or a negative n or Σr²".into());
        }
        let mut key = Self::prior(family);
        let mut k = 0;
        for j in 0..d {
            for i in j..d {
                key.l[(i, j)] = saved.l[k];
                k += 1;
            }
        }
        // Finite, checked above.
        if (0..d).any(|i| key.l[(i, i)] <= 0.0) {
            return Err("a key whose factor has a diagonal entry ≤ 0".into());
        }
        key.b.as_mut_slice().copy_from_slice(&saved.b);
        (key.n, key.squares) = (saved.n, saved.squares);
        key.solve_mean();
        Ok(key)
    }
}

/// `L ← chol(L Lᵀ + x xᵀ)` in place, destroying `x`.
///
/// The steps of nalgebra's `Cholesky::rank_one_update` (after Eigen's
/// `llt_rank_update_lower`) with σ = 1, in the same order, so the results
/// agree bit for bit; written out because nalgebra's public method copies
/// `x` into a fresh vector on every call, and an observation must not
/// allocate.
fn rank_one_update(l: &mut DMatrix<f64>, x: &mut DVector<f64>) {
    let n = x.len();
    let mut beta = 1.0;
    for j in 0..n {
        let diag = l[(j, j)];
        let diag2 = diag * diag;
        let xj = x[j];
        let xj2 = xj * xj;
        let gamma = diag2 * beta + xj2;
        let new_diag = (diag2 + xj2 / beta).sqrt();
        l[(j, j)] = new_diag;
        beta += xj2 / diag2;
        let a = -xj / diag;
        for i in j + 1..n {
            x[i] += a * l[(i, j)];
        }
        if gamma != 0.0 {
            let (a, b) = (new_diag / gamma * xj, new_diag / diag);
            for i in j + 1..n {
                l[(i, j)] = a * x[i] + b * l[(i, j)];
            }
        }
    }
}

impl Gaussian {
    /// The posterior mean of θ given a key's `evidence` (its statistics
    /// without the prior; `None`: none yet): `(λI + Σ x xᵀ)⁻¹ Σ r x`.
    ///
    /// ```
    /// use parbayes::linear::{Gaussian, Noise};
    /// use parbayes::share::Family;
    ///
    /// let family = Gaussian::new(1, 1.0, Noise::Known { variance: 1.0 })?;
    /// let mut stats = vec![0.0; family.width()];
    /// family.add(&mut stats, (&[2.0][..], 3.0));
    /// // (1 + 4)⁻¹ · 6
    /// assert!((family.posterior_mean(Some(&stats))[0] - 1.2).abs() < 1e-15);
    /// # Ok::<(), parbayes::Error>(())
    /// ```
    pub fn posterior_mean(&self, evidence: Option<&[f64]>) -> Vec<f64> {
        let mut post = vec![0.0; self.width()];
        self.posterior_into([evidence, None], &mut post);
        let mut key = KeyPosterior::prior(self);
        key.rebuild(self, &post);
        key.mean().as_slice().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A factor after a run of updates, and nalgebra's after the same run.
    #[test]
    fn the_rank_one_update_is_nalgebras_bit_for_bit() {
        let d = 7;
        let mut ours = DMatrix::identity(d, d) * 0.7;
        let mut theirs = Cholesky::new(&ours * ours.transpose()).unwrap();
        ours = theirs.l_dirty().clone_owned();
        for t in 0..200 {
            let x = DVector::from_fn(d, |i, _| ((t * 7 + i * 3) % 11) as f64 / 4.0 - 1.2);
            let mut scratch = x.clone();
            rank_one_update(&mut ours, &mut scratch);
            theirs.rank_one_update(&x, 1.0);
        }
        let theirs = theirs.l_dirty();
        for j in 0..d {
            for i in j..d {
                assert_eq!(
                    ours[(i, j)].to_bits(),
                    theirs[(i, j)].to_bits(),
                    "({i}, {j})"
                );
            }
        }
    }

    /// θ̃ = μ + L⁻ᵀ z has mean μ and covariance Λ⁻¹ (σ² = 1): 40,000
    /// draws' mean within 4 standard errors, their covariance within 5 %
    /// of Λ⁻¹'s diagonal scale.
    #[test]
    fn a_shared_theta_draw_has_the_posteriors_moments() {
        use rand::SeedableRng;
        let family = Gaussian::new(3, 1.0, Noise::Known { variance: 1.0 }).unwrap();
        let mut key = KeyPosterior::prior(&family);
        let mut work = Work::new(&family);
        for (x, r) in [
            ([1.0, 0.5, -1.0], 0.7),
            ([0.2, 1.0, 2.0], -0.3),
            ([-1.0, 1.0, 0.0], 1.1),
        ] {
            key.update(&DVector::from_column_slice(&x), r, &mut work.z);
        }
        let lam = &key.l * key.l.transpose();
        let cov = lam.try_inverse().unwrap();
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let n = 40_000;
        let mut sum = DVector::zeros(3);
        let mut outer = DMatrix::zeros(3, 3);
        for _ in 0..n {
            key.sample_theta(&family, 1.0, &mut work, &mut rng);
            sum += &work.solved;
            let c = &work.solved - key.mean();
            outer += &c * c.transpose();
        }
        let mean = sum / n as f64;
        let emp = outer / n as f64;
        for i in 0..3 {
            let se = (cov[(i, i)] / n as f64).sqrt();
            assert!((mean[i] - key.mean()[i]).abs() < 4.0 * se, "mean {i}");
            for j in 0..3 {
                let scale = (cov[(i, i)] * cov[(j, j)]).sqrt();
                assert!(
                    (emp[(i, j)] - cov[(i, j)]).abs() < 0.05 * scale,
                    "cov ({i}, {j})"
                );
            }
        }
    }
}
