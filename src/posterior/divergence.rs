//! Kullback–Leibler divergences in nats.
//!
//! Share rules compare a learner's combined estimate with its picture of the
//! global one; model error compares the truth with an estimate. Every function
//! here returns a value in `[0, +∞]`, never NaN for valid inputs.

use statrs::function::gamma::{digamma, ln_gamma};

/// `KL(p ‖ q) = Σ pᵢ ln(pᵢ / qᵢ)` between two categorical distributions.
///
/// Terms with `pᵢ = 0` add nothing; a `qᵢ = 0` where `pᵢ > 0` makes the
/// divergence `+∞`. Rounding can push a true zero slightly below; it is
/// clamped to 0.
pub fn kl_categorical(p: &[f64], q: &[f64]) -> f64 {
    debug_assert_eq!(p.len(), q.len());
    let mut kl = 0.0;
    for (&pi, &qi) in p.iter().zip(q) {
        if pi > 0.0 {
            if qi <= 0.0 {
                return f64::INFINITY;
            }
            kl += pi * (pi / qi).ln();
        }
    }
    kl.max(0.0)
}

/// `KL(mean(Dir(a)) ‖ mean(Dir(b)))`: the paper's share test, on
/// concentration vectors, without allocating the means.
pub fn kl_dirichlet_means(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let sa: f64 = a.iter().sum();
    let sb: f64 = b.iter().sum();
    let mut kl = 0.0;
    for (&ai, &bi) in a.iter().zip(b) {
        if ai > 0.0 {
            if bi <= 0.0 {
                return f64::INFINITY;
            }
            let p = ai / sa;
            kl += p * (p / (bi / sb)).ln();
        }
    }
    kl.max(0.0)
}

/// `KL(Bernoulli(p) ‖ Bernoulli(q))`, the `kl(μ_a, μ*)` of the Lai–Robbins
/// bound.
pub fn kl_bernoulli(p: f64, q: f64) -> f64 {
    kl_categorical(&[1.0 - p, p], &[1.0 - q, q])
}

/// Closed-form `KL(Dir(a) ‖ Dir(b))`:
/// `ln Γ(a₀) − Σ ln Γ(aᵢ) − ln Γ(b₀) + Σ ln Γ(bᵢ) + Σ (aᵢ − bᵢ)(ψ(aᵢ) − ψ(a₀))`.
pub fn kl_dirichlet(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let a0: f64 = a.iter().sum();
    let b0: f64 = b.iter().sum();
    let psi_a0 = digamma(a0);
    let mut kl = ln_gamma(a0) - ln_gamma(b0);
    for (&ai, &bi) in a.iter().zip(b) {
        kl += ln_gamma(bi) - ln_gamma(ai) + (ai - bi) * (digamma(ai) - psi_a0);
    }
    kl.max(0.0)
}

/// Closed-form `KL(Beta(a₁, b₁) ‖ Beta(a₂, b₂))`.
pub fn kl_beta(a1: f64, b1: f64, a2: f64, b2: f64) -> f64 {
    kl_dirichlet(&[a1, b1], &[a2, b2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categorical_edge_cases() {
        assert_eq!(kl_categorical(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
        assert_eq!(kl_categorical(&[0.5, 0.5], &[1.0, 0.0]), f64::INFINITY);
        // No mass where q has none: finite.
        assert_eq!(kl_categorical(&[1.0, 0.0], &[0.5, 0.5]), 2f64.ln());
        assert!(!kl_categorical(&[0.0, 1.0], &[0.0, 1.0]).is_nan());
    }

    #[test]
    fn means_form_agrees_with_categorical() {
        let a = [2.0, 5.0, 1.5];
        let b = [1.0, 1.0, 4.0];
        let p: Vec<f64> = a.iter().map(|x| x / 8.5).collect();
        let q: Vec<f64> = b.iter().map(|x| x / 6.0).collect();
        let want = kl_categorical(&p, &q);
        assert!((kl_dirichlet_means(&a, &b) - want).abs() <= 1e-15 * want.max(1.0));
    }

    #[test]
    fn dirichlet_of_equal_arguments_is_zero() {
        assert_eq!(kl_dirichlet(&[3.0, 4.0, 0.5], &[3.0, 4.0, 0.5]), 0.0);
    }
}
