//! What the protocol needs to know of a posterior family.
//!
//! The ledger and the aggregator never look inside a key's evidence: it is a
//! vector of additive sufficient statistics of a fixed width, summed over
//! learners, replaced whole by each message. The few operations that depend
//! on what the numbers mean are a [`Family`]'s, statically dispatched so
//! the Dirichlet hot path compiles to what it was before the seam.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::posterior::divergence::{kl_dirichlet, kl_dirichlet_means};

/// Which divergence a KL rule or a KL-gated downlink compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence {
    /// Between the predictive distributions (the posterior means): `kl:θ`.
    Means,
    /// Between the posteriors themselves: `klpost:θ`.
    Posteriors,
}

/// A posterior family whose evidence adds: the family-specific half of
/// the sharing protocol.
///
/// Implementations are small values (the prior and the key's dimension)
/// that ledgers and aggregators hold by value; `&mut self` lets a family
/// keep workspace for its divergences so a check allocates nothing.
pub trait Family:
    Clone + Debug + Default + Send + Sync + Serialize + DeserializeOwned + 'static
{
    /// One observation of a key, as [`add`](Family::add) takes it.
    type Observation<'a>: Copy;

    /// Adds one observation to a key's statistics.
    fn add(&self, stats: &mut [f64], obs: Self::Observation<'_>);

    /// Writes the others' statistics `global − own`: what the aggregator
    /// answers a learner with.
    fn others_into(&self, global: &[f64], own: Option<&[f64]>, out: &mut [f64]);

    /// The amount of evidence a doubling rule counts.
    fn mass(&self, stats: &[f64]) -> f64;

    /// Writes the posterior's parameters: the prior plus each part present
    /// (own and others, or sent and others), added in that order.
    fn posterior_into(&self, parts: [Option<&[f64]>; 2], out: &mut [f64]);

    /// The divergence of `kind` from the posterior with parameters `p` to
    /// the one with parameters `q` (both written by
    /// [`posterior_into`](Family::posterior_into)).
    fn divergence(&mut self, kind: Divergence, p: &[f64], q: &[f64]) -> f64;

    /// Checks one key's statistics from outside (a message or a file).
    fn check_stats(&self, stats: &[f64]) -> Result<(), String>;
}

/// Dirichlet (and Beta) posteriors over categorical outcomes: a key's
/// evidence is its outcome counts, the posterior `prior + counts`.
///
/// Serialised as the bare prior pseudo-count, so ledgers and aggregators
/// saved before the family seam read back unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Dirichlet {
    prior: f64,
}

impl Dirichlet {
    /// Counts under a symmetric prior of `prior` pseudo-counts per outcome.
    pub fn new(prior: f64) -> Self {
        Self { prior }
    }

    /// The prior pseudo-count per outcome.
    pub fn prior(&self) -> f64 {
        self.prior
    }
}

/// A uniform prior, one pseudo-count per outcome.
impl Default for Dirichlet {
    fn default() -> Self {
        Self { prior: 1.0 }
    }
}

impl Family for Dirichlet {
    /// The outcome observed.
    type Observation<'a> = usize;

    #[inline]
    fn add(&self, stats: &mut [f64], outcome: usize) {
        stats[outcome] += 1.0;
    }

    #[inline]
    fn others_into(&self, global: &[f64], own: Option<&[f64]>, out: &mut [f64]) {
        out.copy_from_slice(global);
        if let Some(own) = own {
            for (o, c) in out.iter_mut().zip(own) {
                // Exact for whole counts; clamp rounding of discounted ones.
                *o = (*o - c).max(0.0);
            }
        }
    }

    #[inline]
    fn mass(&self, stats: &[f64]) -> f64 {
        stats.iter().sum()
    }

    #[inline]
    fn posterior_into(&self, parts: [Option<&[f64]>; 2], out: &mut [f64]) {
        out.fill(self.prior);
        for counts in parts.into_iter().flatten() {
            for (o, c) in out.iter_mut().zip(counts) {
                *o += c;
            }
        }
    }

    #[inline]
    fn divergence(&mut self, kind: Divergence, p: &[f64], q: &[f64]) -> f64 {
        match kind {
            Divergence::Means => kl_dirichlet_means(p, q),
            Divergence::Posteriors => kl_dirichlet(p, q),
        }
    }

    fn check_stats(&self, counts: &[f64]) -> Result<(), String> {
        match counts.iter().find(|c| !(c.is_finite() && **c >= 0.0)) {
            Some(c) => Err(format!("count {c}; counts must be finite and ≥ 0")),
            None => Ok(()),
        }
    }
}
