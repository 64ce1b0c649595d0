//! A synthetic contextual bandit with linear expected rewards.

use std::sync::Arc;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Normal, StandardNormal};

use super::contextual::ContextualTask;
use super::stream::RowStream;
use crate::error::{Error, Result};

/// How a [`LinearBandit`]'s arm pays in context x.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum LinearRewards {
    /// `xᵀθ_k + ε`, ε ~ N(0, σ²).
    Gaussian {
        /// σ ≥ 0.
        noise_sd: f64,
    },
    /// 1 with probability `1 / (1 + exp(−xᵀθ_k))`, else 0: a click.
    Logistic,
}

/// A scheduled change of a [`LinearBandit`]'s parameters: from `step` on,
/// every θ is multiplied by `scale`, then the arms in `set` take new θ.
#[derive(Debug, Clone, PartialEq)]
pub struct ThetaChange {
    /// The 0-based step the change holds from.
    pub step: u64,
    /// Every θ is multiplied by this first.
    pub scale: f64,
    /// Then these arms take these parameters.
    pub set: Vec<(usize, Vec<f64>)>,
}

/// K arms with true parameters θ₁ … θ_K ∈ ℝᵈ; a context x ~ N(0, I) comes
/// with every decision and arm k pays `xᵀθ_k + ε`, ε ~ N(0, σ²) (or a
/// click with probability σ(xᵀθ_k), [`LinearBandit::logistic`]). Regret is
/// against the best arm for each context, in expectation over the noise.
///
/// ```
/// use parbayes::env::LinearBandit;
/// use rand::SeedableRng;
///
/// let task = LinearBandit::new(vec![vec![1.0, 0.0], vec![0.0, 1.0]], 0.1)?;
/// let x = [0.5, 2.0];
/// assert_eq!(task.best_arm(&x), 1);
/// assert_eq!(task.regret(&x, 0), 1.5);
/// let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
/// assert!((task.reward(&x, 1, &mut rng) - 2.0).abs() < 1.0);
/// # Ok::<(), parbayes::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinearBandit {
    dim: usize,
    /// θ of arm k at `k·dim .. (k+1)·dim`.
    theta: Vec<f64>,
    noise: Normal<f64>,
    logistic: bool,
    /// The context of the current decision, as a [`ContextualTask`].
    current: Vec<f64>,
    changes: Vec<ThetaChange>,
    next_change: usize,
    /// Contexts from a file, row after row, and this learner's order
    /// through them; `None`: x ~ N(0, I).
    contexts: Option<(Arc<Vec<f64>>, RowStream)>,
}

impl LinearBandit {
    /// A task with the given true parameters (one vector per arm) and
    /// reward noise σ ≥ 0.
    pub fn new(theta: Vec<Vec<f64>>, noise_sd: f64) -> Result<Self> {
        let bad = |field: &str, problem: String| Err(Error::invalid("linear task", field, problem));
        let dim = theta.first().map_or(0, Vec::len);
        if theta.is_empty() || dim == 0 {
            return bad(
                "theta",
                "no arms or no features; give one vector per arm".into(),
            );
        }
        if let Some(k) = theta.iter().position(|t| t.len() != dim) {
            return bad(
                "theta",
                format!("arm {k} has {} features; arm 0 has {dim}", theta[k].len()),
            );
        }
        if theta.iter().flatten().any(|v| !v.is_finite()) {
            return bad("theta", "a parameter is not finite".into());
        }
        let Ok(noise) = Normal::new(0.0, noise_sd) else {
            return bad("noise", format!("σ = {noise_sd}; it is finite and ≥ 0"));
        };
        if !noise_sd.is_finite() {
            return bad("noise", format!("σ = {noise_sd}; it is finite and ≥ 0"));
        }
        Ok(Self {
            dim,
            theta: theta.concat(),
            noise,
            logistic: false,
            current: vec![0.0; dim],
            changes: Vec::new(),
            next_change: 0,
            contexts: None,
        })
    }

    /// The same task drawing its contexts from `rows` (d numbers each, row
    /// after row) instead of N(0, I): each learner streams them in an order
    /// of its own, shuffled afresh every pass.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use parbayes::env::{ContextualTask, LinearBandit};
    /// use rand::SeedableRng;
    ///
    /// let task = LinearBandit::new(vec![vec![1.0, 0.0], vec![0.0, 1.0]], 0.0)?;
    /// let mut task = task.with_contexts(Arc::new(vec![1.0, 2.0, 3.0, 0.0]))?;
    /// let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    /// let mut x = [0.0; 2];
    /// task.next_context(&mut rng, &mut x);
    /// assert!(x == [1.0, 2.0] || x == [3.0, 0.0]);
    /// # Ok::<(), parbayes::Error>(())
    /// ```
    pub fn with_contexts(mut self, rows: Arc<Vec<f64>>) -> Result<Self> {
        let bad = |problem: String| Err(Error::invalid("linear task", "contexts", problem));
        if rows.is_empty() || !rows.len().is_multiple_of(self.dim) {
            return bad(format!(
                "{} numbers are not rows of {} features",
                rows.len(),
                self.dim
            ));
        }
        if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
            return bad(format!("row {}: a feature is not finite", i / self.dim));
        }
        let stream = RowStream::new(rows.len() / self.dim);
        self.contexts = Some((rows, stream));
        Ok(self)
    }

    /// The same task with a drift schedule, in increasing order of step;
    /// a change that names an arm or a dimension the task does not have, a
    /// parameter that is not finite or steps out of order is refused.
    ///
    /// ```
    /// use parbayes::env::{ContextualTask, LinearBandit, ThetaChange};
    ///
    /// let task = LinearBandit::new(vec![vec![1.0], vec![0.5]], 0.0)?;
    /// let mut task = task.with_drift(vec![ThetaChange { step: 100, scale: 0.5, set: vec![(1, vec![2.0])] }])?;
    /// task.advance_to(99);
    /// assert_eq!((task.theta(0), task.theta(1)), (&[1.0][..], &[0.5][..]));
    /// task.advance_to(100);
    /// assert_eq!((task.theta(0), task.theta(1)), (&[0.5][..], &[2.0][..]));
    /// # Ok::<(), parbayes::Error>(())
    /// ```
    pub fn with_drift(mut self, changes: Vec<ThetaChange>) -> Result<Self> {
        let bad = |k: usize, problem: String| {
            Err(Error::invalid(
                "linear task",
                format!("drift[{k}]"),
                problem,
            ))
        };
        for (k, c) in changes.iter().enumerate() {
            if k > 0 && c.step <= changes[k - 1].step {
                return bad(
                    k,
                    format!("step {} is not after the change before it", c.step),
                );
            }
            if !c.scale.is_finite() {
                return bad(k, format!("scale {}; it is finite", c.scale));
            }
            for (arm, theta) in &c.set {
                if *arm >= self.arms() {
                    return bad(k, format!("arm {arm}; the task has {}", self.arms()));
                }
                if theta.len() != self.dim || theta.iter().any(|v| !v.is_finite()) {
                    return bad(
                        k,
                        format!("θ of arm {arm} needs {} finite numbers", self.dim),
                    );
                }
            }
        }
        self.changes = changes;
        self.next_change = 0;
        Ok(self)
    }

    /// A task with the given true parameters whose rewards are clicks:
    /// arm k pays 1 with probability `1 / (1 + exp(−xᵀθ_k))`.
    pub fn logistic(theta: Vec<Vec<f64>>) -> Result<Self> {
        Ok(Self {
            logistic: true,
            ..Self::new(theta, 0.0)?
        })
    }

    /// How the arms pay.
    pub fn rewards(&self) -> LinearRewards {
        if self.logistic {
            LinearRewards::Logistic
        } else {
            LinearRewards::Gaussian {
                noise_sd: self.noise.std_dev(),
            }
        }
    }

    /// A task whose parameters are drawn θ_k ~ N(0, I/d), so `xᵀθ_k` has
    /// unit variance over contexts whatever d.
    pub fn random<R: Rng + ?Sized>(
        arms: usize,
        dim: usize,
        noise_sd: f64,
        rng: &mut R,
    ) -> Result<Self> {
        let scale = 1.0 / (dim.max(1) as f64).sqrt();
        let theta = (0..arms)
            .map(|_| {
                (0..dim)
                    .map(|_| scale * Distribution::<f64>::sample(&StandardNormal, rng))
                    .collect::<Vec<f64>>()
            })
            .collect();
        Self::new(theta, noise_sd)
    }

    /// Every arm's θ, one vector per arm.
    pub fn theta_rows(&self) -> Vec<Vec<f64>> {
        self.theta.chunks(self.dim).map(<[f64]>::to_vec).collect()
    }

    /// The drift schedule.
    pub fn changes(&self) -> &[ThetaChange] {
        &self.changes
    }

    /// The number of arms.
    pub fn arms(&self) -> usize {
        self.theta.len() / self.dim
    }

    /// The number of features.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// θ of `arm`.
    pub fn theta(&self, arm: usize) -> &[f64] {
        &self.theta[arm * self.dim..(arm + 1) * self.dim]
    }

    /// Draws a context x ~ N(0, I) into `out`.
    pub fn context_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        out.iter_mut().for_each(|v| *v = StandardNormal.sample(rng));
    }

    /// The expected reward: `xᵀθ_arm`, or its logistic σ(xᵀθ_arm).
    pub fn mean(&self, x: &[f64], arm: usize) -> f64 {
        let z: f64 = self.theta(arm).iter().zip(x).map(|(t, x)| t * x).sum();
        if self.logistic {
            1.0 / (1.0 + (-z).exp())
        } else {
            z
        }
    }

    /// A reward of `arm` in context `x`.
    pub fn reward<R: Rng + ?Sized>(&self, x: &[f64], arm: usize, rng: &mut R) -> f64 {
        if self.logistic {
            f64::from(u8::from(rng.random::<f64>() < self.mean(x, arm)))
        } else {
            self.mean(x, arm) + self.noise.sample(rng)
        }
    }

    /// The arm of highest expected reward in `x` (the first, on a tie).
    pub fn best_arm(&self, x: &[f64]) -> usize {
        (0..self.arms()).fold(0, |best, k| {
            if self.mean(x, k) > self.mean(x, best) {
                k
            } else {
                best
            }
        })
    }

    /// Expected reward lost by playing `arm` in `x`.
    pub fn regret(&self, x: &[f64], arm: usize) -> f64 {
        self.mean(x, self.best_arm(x)) - self.mean(x, arm)
    }
}

impl ContextualTask for LinearBandit {
    fn kind(&self) -> &str {
        "linear"
    }

    fn change_steps(&self) -> Vec<u64> {
        self.changes.iter().map(|c| c.step).collect()
    }

    fn copy_bytes(&self) -> u64 {
        self.contexts.as_ref().map_or(0, |(_, s)| s.bytes())
            + 8 * (self.theta.len() + self.dim) as u64
            + self
                .changes
                .iter()
                .map(|c| 8 * c.set.len() as u64 * (self.dim as u64 + 1))
                .sum::<u64>()
    }

    fn arms(&self) -> usize {
        LinearBandit::arms(self)
    }

    fn context_len(&self) -> usize {
        self.dim
    }

    fn next_context<R: Rng + ?Sized>(&mut self, rng: &mut R, out: &mut [f64]) {
        match &mut self.contexts {
            Some((rows, stream)) => {
                let row = stream.advance(rng);
                out.copy_from_slice(&rows[row * self.dim..(row + 1) * self.dim]);
            }
            None => self.context_into(rng, out),
        }
        self.current.copy_from_slice(out);
    }

    fn stream_position(&self) -> Vec<u64> {
        self.contexts
            .as_ref()
            .map_or_else(Vec::new, |(_, s)| s.position())
    }

    fn resume_at(&mut self, position: &[u64]) -> Result<(), String> {
        match &mut self.contexts {
            Some((_, stream)) => stream.resume_at(position),
            None if position.is_empty() => Ok(()),
            None => Err(format!(
                "{} numbers; contexts from N(0, I) keep none",
                position.len()
            )),
        }
    }

    fn reward<R: Rng + ?Sized>(&mut self, arm: usize, rng: &mut R) -> f64 {
        LinearBandit::reward(self, &self.current, arm, rng)
    }

    fn expected_reward(&self, arm: usize) -> Option<f64> {
        Some(self.mean(&self.current, arm))
    }

    /// With Gaussian rewards of σ > 0, the expected KL divergence, over
    /// contexts x ~ N(0, I), from each arm's true reward distribution
    /// N(xᵀθ_k, σ²) to the one the means predict, N(xᵀμ_k, σ²), summed over
    /// arms: `Σ_k ‖θ_k − μ_k‖² / 2σ²`; with contexts from a file, the mean
    /// over its rows of `Σ_k (xᵀ(θ_k − μ_k))² / 2σ²`. Unknown for clicks and
    /// for σ = 0.
    fn model_error(&self, means: &[Vec<f64>]) -> Option<f64> {
        let sd = self.noise.std_dev();
        if self.logistic || sd <= 0.0 || means.len() != self.arms() {
            return None;
        }
        let squares: f64 = means
            .iter()
            .enumerate()
            .map(|(k, mu)| {
                let theta = self.theta(k);
                let gap = |x: &[f64]| -> f64 {
                    (theta.iter().zip(mu).zip(x))
                        .map(|((t, m), x)| (t - m) * x)
                        .sum()
                };
                match &self.contexts {
                    None => theta.iter().zip(mu).map(|(t, m)| (t - m).powi(2)).sum(),
                    Some((rows, _)) => {
                        let squares: f64 =
                            rows.chunks_exact(self.dim).map(|x| gap(x).powi(2)).sum();
                        squares / (rows.len() / self.dim) as f64
                    }
                }
            })
            .sum();
        Some(squares / (2.0 * sd * sd))
    }

    fn advance_to(&mut self, step: u64) {
        while let Some(c) = self.changes.get(self.next_change) {
            if c.step > step {
                break;
            }
            for t in &mut self.theta {
                *t *= c.scale;
            }
            for (arm, theta) in &c.set {
                self.theta[arm * self.dim..(arm + 1) * self.dim].copy_from_slice(theta);
            }
            self.next_change += 1;
        }
    }
}
