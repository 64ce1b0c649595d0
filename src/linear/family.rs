//! Bayesian linear regression as a protocol family: additive statistics,
//! the prior added once when the posterior is formed, Gaussian and
//! normal-inverse-gamma KL divergences.

use nalgebra::{Cholesky, DMatrix, DVector, Dyn};
use serde::{Deserialize, Serialize};
use statrs::function::gamma::{digamma, ln_gamma};

use crate::model::{MAX_FEATURES, linear_width as width};
use crate::share::{Divergence, Family};

/// What is known of the reward noise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Noise {
    /// A known variance σ²: the posterior of θ is Gaussian.
    Known {
        /// σ².
        variance: f64,
    },
    /// An unknown variance with a Gamma(`shape`, `rate`) prior on the
    /// precision 1/σ²: the posterior is normal-inverse-gamma.
    Unknown {
        /// The Gamma prior's shape a₀.
        shape: f64,
        /// The Gamma prior's rate b₀.
        rate: f64,
    },
}

/// Bayesian linear regression on `dim` features, one posterior per key:
/// the evidence of a key is `Λ = Σ x xᵀ` (its upper triangle, row by row),
/// `b = Σ r x`, the number of observations `n` and `Σ r²`, so a learner's
/// and the others' evidence add. The prior `θ ~ N(0, (λ I)⁻¹)` (scaled by
/// σ², or by the drawn noise variance) enters once, when the posterior is
/// formed, never once per learner.
///
/// ```
/// use parbayes::linear::{Gaussian, Noise};
/// use parbayes::share::Family;
///
/// let family = Gaussian::new(2, 1.0, Noise::Known { variance: 0.25 })?;
/// let mut stats = vec![0.0; family.width()];
/// family.add(&mut stats, (&[1.0, 2.0], 0.5));
/// // Λ's upper triangle (1, 2, 4), b = (0.5, 1), n = 1, Σr² = 0.25.
/// assert_eq!(stats, [1.0, 2.0, 4.0, 0.5, 1.0, 1.0, 0.25]);
/// # Ok::<(), parbayes::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gaussian {
    dim: usize,
    ridge: f64,
    noise: Noise,
    #[serde(skip)]
    work: Workspace,
}

/// Room for the two posteriors a divergence compares.
#[derive(Debug, Clone, Default)]
struct Workspace {
    p: DMatrix<f64>,
    q: DMatrix<f64>,
    cross: DMatrix<f64>,
    mean_p: DVector<f64>,
    mean_q: DVector<f64>,
}

/// Equal when the model is: dimension, prior and noise (the workspace is
/// scratch).
impl PartialEq for Gaussian {
    fn eq(&self, other: &Self) -> bool {
        (self.dim, self.ridge, self.noise) == (other.dim, other.ridge, other.noise)
    }
}

/// One feature, ridge 1, noise variance 1.
impl Default for Gaussian {
    fn default() -> Self {
        Self {
            dim: 1,
            ridge: 1.0,
            noise: Noise::Known { variance: 1.0 },
            work: Workspace::default(),
        }
    }
}

impl Gaussian {
    /// Regression on `dim` features with prior precision `ridge` (λ > 0)
    /// and the given noise.
    pub fn new(dim: usize, ridge: f64, noise: Noise) -> crate::Result<Self> {
        let invalid = |field: &str, problem: String| crate::Error::invalid("value", field, problem);
        if dim == 0 || dim > MAX_FEATURES {
            return Err(invalid(
                "dimension",
                format!("{dim} features; use 1 to {MAX_FEATURES}"),
            ));
        }
        if !(ridge.is_finite() && ridge > 0.0) {
            return Err(invalid(
                "ridge",
                format!("{ridge}; the prior precision λ is finite and > 0"),
            ));
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        match noise {
            Noise::Known { variance } if !positive(variance) => {
                return Err(invalid(
                    "noise",
                    format!("variance {variance}; it is finite and > 0"),
                ));
            }
            Noise::Unknown { shape, rate } if !(positive(shape) && positive(rate)) => {
                return Err(invalid(
                    "noise",
                    format!("Gamma({shape}, {rate}) prior; shape and rate are finite and > 0"),
                ));
            }
            _ => {}
        }
        Ok(Self {
            dim,
            ridge,
            noise,
            work: Workspace::default(),
        })
    }

    /// The number of features d.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The prior precision λ.
    pub fn ridge(&self) -> f64 {
        self.ridge
    }

    /// What is known of the noise.
    pub fn noise(&self) -> Noise {
        self.noise
    }

    /// Statistics per key: d(d+1)/2 + d + 2.
    pub fn width(&self) -> usize {
        width(self.dim)
    }

    /// Where b starts in a key's statistics.
    pub(crate) fn b_at(&self) -> usize {
        self.dim * (self.dim + 1) / 2
    }

    /// Writes the full symmetric matrix of a packed upper triangle.
    pub(crate) fn unpack_into(&self, stats: &[f64], out: &mut DMatrix<f64>) {
        let d = self.dim;
        if out.shape() != (d, d) {
            *out = DMatrix::zeros(d, d);
        }
        let mut k = 0;
        for i in 0..d {
            for j in i..d {
                out[(i, j)] = stats[k];
                out[(j, i)] = stats[k];
                k += 1;
            }
        }
    }

    /// The posterior's noise-precision Gamma(a, b) from posterior
    /// parameters whose mean is `mean`, or `None` for a known noise.
    pub(crate) fn precision_posterior(
        &self,
        post: &[f64],
        mean: &DVector<f64>,
    ) -> Option<(f64, f64)> {
        let Noise::Unknown { shape, rate } = self.noise else {
            return None;
        };
        let (b, n, squares) = self.tail(post);
        // b₀ + ½(Σr² − μᵀΛμ), with Λμ = b; rounding may take it below b₀'s
        // share of what it can be, never below zero.
        let fit: f64 = mean.iter().zip(b).map(|(m, b)| m * b).sum();
        let rate = rate + 0.5 * (squares - fit).max(0.0);
        Some((shape + 0.5 * n, rate))
    }

    /// b, n and Σr² of a key's statistics.
    pub(crate) fn tail<'a>(&self, stats: &'a [f64]) -> (&'a [f64], f64, f64) {
        let at = self.b_at();
        let d = self.dim;
        (&stats[at..at + d], stats[at + d], stats[at + d + 1])
    }
}

/// The Cholesky factor of `m`, kept in `m`'s storage; `None` (and `m`
/// emptied) if `m` is not positive definite.
fn factor(m: &mut DMatrix<f64>) -> Option<Cholesky<f64, Dyn>> {
    Cholesky::new(std::mem::take(m))
}

impl Family for Gaussian {
    /// A context's features and the reward that followed.
    type Observation<'a> = (&'a [f64], f64);

    #[inline]
    fn add(&self, stats: &mut [f64], (x, r): (&[f64], f64)) {
        let d = self.dim;
        let mut k = 0;
        for i in 0..d {
            let xi = x[i];
            for &xj in &x[i..d] {
                stats[k] += xi * xj;
                k += 1;
            }
        }
        for (b, xi) in stats[k..k + d].iter_mut().zip(x) {
            *b += r * xi;
        }
        stats[k + d] += 1.0;
        stats[k + d + 1] += r * r;
    }

    #[inline]
    fn others_into(&self, global: &[f64], own: Option<&[f64]>, out: &mut [f64]) {
        // Exact subtraction: b may be negative, and a clamp would bias it.
        out.copy_from_slice(global);
        if let Some(own) = own {
            out.iter_mut().zip(own).for_each(|(o, c)| *o -= c);
        }
    }

    #[inline]
    fn mass(&self, stats: &[f64]) -> f64 {
        stats[self.b_at() + self.dim]
    }

    fn posterior_into(&self, parts: [Option<&[f64]>; 2], out: &mut [f64]) {
        out.fill(0.0);
        let mut k = 0;
        for i in 0..self.dim {
            out[k] = self.ridge;
            k += self.dim - i;
        }
        for stats in parts.into_iter().flatten() {
            out.iter_mut().zip(stats).for_each(|(o, s)| *o += s);
        }
    }

    fn divergence(&mut self, _kind: Divergence, p: &[f64], q: &[f64]) -> f64 {
        // The posterior mean alone has no divergence of its own: both kinds
        // compare the posteriors over θ (and the noise, if unknown).
        let mut w = std::mem::take(&mut self.work);
        let kl = self.kl(&mut w, p, q);
        self.work = w;
        kl
    }

    fn check_stats(&self, stats: &[f64]) -> Result<(), String> {
        if let Some(v) = stats.iter().find(|v| !v.is_finite()) {
            return Err(format!("a statistic of {v}; statistics are finite"));
        }
        let (_, n, squares) = self.tail(stats);
        if n < 0.0 || squares < 0.0 {
            return Err(format!("n = {n}, Σr² = {squares}; both are ≥ 0"));
        }
        let mut m = DMatrix::zeros(self.dim, self.dim);
        self.unpack_into(stats, &mut m);
        // Positive semi-definite up to rounding: Λ + δI factors.
        let delta = 1e-9 * (1.0 + m.diagonal().amax());
        for i in 0..self.dim {
            m[(i, i)] += delta;
        }
        match Cholesky::new(m) {
            Some(_) => Ok(()),
            None => Err("Σ x xᵀ is not positive semi-definite".into()),
        }
    }
}

impl Gaussian {
    /// KL(p ‖ q) between the posteriors with parameters `p` and `q`.
    fn kl(&self, w: &mut Workspace, p: &[f64], q: &[f64]) -> f64 {
        let d = self.dim;
        self.unpack_into(p, &mut w.p);
        self.unpack_into(q, &mut w.q);
        let (Some(cp), Some(cq)) = (factor(&mut w.p), factor(&mut w.q)) else {
            return f64::INFINITY;
        };
        solve_mean(&cp, self.tail(p).0, &mut w.mean_p);
        solve_mean(&cq, self.tail(q).0, &mut w.mean_q);
        // tr(Λq Λp⁻¹) = ‖Lp⁻¹ Lq‖²_F.
        w.cross.clone_from(cq.l_dirty());
        w.cross.fill_upper_triangle(0.0, 1);
        cp.l_dirty()
            .solve_lower_triangular_unchecked_mut(&mut w.cross);
        let trace = w.cross.norm_squared();
        let log_det = |c: &Cholesky<f64, Dyn>| 2.0 * c.l_dirty().diagonal().map(f64::ln).sum();
        let log_dets = log_det(&cp) - log_det(&cq);
        // Δᵀ Λq Δ = ‖Lqᵀ Δ‖².
        w.mean_p -= &w.mean_q;
        let delta = &w.mean_p;
        let mahalanobis = {
            let l = cq.l_dirty();
            (0..d)
                .map(|j| (j..d).map(|i| l[(i, j)] * delta[i]).sum::<f64>().powi(2))
                .sum::<f64>()
        };
        let kl = match self.noise {
            Noise::Known { variance } => {
                0.5 * (trace + mahalanobis / variance - d as f64 + log_dets)
            }
            Noise::Unknown { .. } => {
                w.mean_p += &w.mean_q;
                let (ap, bp) = self
                    .precision_posterior(p, &w.mean_p)
                    .expect("unknown noise");
                let (aq, bq) = self
                    .precision_posterior(q, &w.mean_q)
                    .expect("unknown noise");
                kl_gamma(ap, bp, aq, bq)
                    + 0.5 * (ap / bp * mahalanobis + trace - d as f64 + log_dets)
            }
        };
        w.p = cp.unpack_dirty();
        w.q = cq.unpack_dirty();
        kl.max(0.0)
    }
}

/// μ = Λ⁻¹ b, into `out`.
pub(crate) fn solve_mean(chol: &Cholesky<f64, Dyn>, b: &[f64], out: &mut DVector<f64>) {
    if out.len() != b.len() {
        *out = DVector::zeros(b.len());
    }
    out.as_mut_slice().copy_from_slice(b);
    chol.solve_mut(out);
}

/// KL(Gamma(a₁, b₁) ‖ Gamma(a₂, b₂)), shape and rate.
pub fn kl_gamma(a1: f64, b1: f64, a2: f64, b2: f64) -> f64 {
    (a1 - a2) * digamma(a1) - ln_gamma(a1)
        + ln_gamma(a2)
        + a2 * (b1.ln() - b2.ln())
        + a1 * (b2 - b1) / b1
}
