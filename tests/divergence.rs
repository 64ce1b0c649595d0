//! Every closed-form KL against an independent computation.

use parbayes::posterior::divergence::{kl_beta, kl_categorical, kl_dirichlet, kl_dirichlet_means};
use parbayes::posterior::{BetaPosterior, DirichletPosterior};
use parbayes::rng::learner_rng;
use proptest::prelude::*;
use quadrature::double_exponential::integrate;
use statrs::function::gamma::ln_gamma;

fn ln_beta_density(a: f64, b: f64, x: f64) -> f64 {
    (a - 1.0) * x.ln() + (b - 1.0) * (1.0 - x).ln() - (ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b))
}

/// `∫₀¹ p ln(p/q) dx` by tanh-sinh quadrature, in `x = t⁴` so that a shape
/// below 1 (a density singular at 0) becomes a smooth integrand in `t`.
fn kl_beta_by_quadrature(a1: f64, b1: f64, a2: f64, b2: f64) -> f64 {
    let f = |t: f64| {
        let x = t.powi(4);
        let lp = ln_beta_density(a1, b1, x);
        if !lp.is_finite() {
            0.0
        } else {
            lp.exp() * (lp - ln_beta_density(a2, b2, x)) * 4.0 * t.powi(3)
        }
    };
    integrate(f, 0.0, 1.0, 1e-14).integral
}

#[test]
fn beta_kl_matches_quadrature_to_1e9() {
    let cases = [
        (2.0, 3.0, 1.0, 1.0),
        (1.0, 1.0, 5.0, 2.0),
        (12.5, 40.0, 10.0, 45.0),
        (3.0, 300.0, 5.0, 280.0),
        (0.7, 1.8, 1.2, 0.9),
        (50.0, 50.0, 49.0, 52.0),
    ];
    for (a1, b1, a2, b2) in cases {
        let closed = kl_beta(a1, b1, a2, b2);
        let numeric = kl_beta_by_quadrature(a1, b1, a2, b2);
        let rel = (closed - numeric).abs() / numeric.abs();
        assert!(
            rel <= 1e-9,
            "Beta({a1},{b1}) ‖ Beta({a2},{b2}): closed {closed}, quadrature {numeric}, rel {rel:e}"
        );
    }
}

fn ln_dirichlet_density(a: &[f64; 3], x: [f64; 3]) -> f64 {
    let norm = ln_gamma(a.iter().sum()) - a.iter().map(|v| ln_gamma(*v)).sum::<f64>();
    norm + a
        .iter()
        .zip(x)
        .map(|(ai, xi)| (ai - 1.0) * xi.ln())
        .sum::<f64>()
}

#[test]
fn dirichlet_kl_matches_nested_quadrature_on_the_simplex() {
    let cases = [
        ([2.0, 3.0, 4.0], [1.0, 1.0, 1.0]),
        ([5.0, 1.5, 2.5], [3.0, 3.0, 2.0]),
        ([1.0, 1.0, 1.0], [2.0, 6.0, 1.5]),
    ];
    for (a, b) in cases {
        let inner = |x1: f64| {
            let f = |x2: f64| {
                let x = [x1, x2, (1.0 - x1 - x2).max(0.0)];
                let lp = ln_dirichlet_density(&a, x);
                if !lp.is_finite() {
                    0.0
                } else {
                    lp.exp() * (lp - ln_dirichlet_density(&b, x))
                }
            };
            integrate(f, 0.0, 1.0 - x1, 1e-14).integral
        };
        let numeric = integrate(inner, 0.0, 1.0, 1e-13).integral;
        let closed = kl_dirichlet(&a, &b);
        let rel = (closed - numeric).abs() / numeric;
        assert!(
            rel <= 1e-9,
            "{a:?} ‖ {b:?}: closed {closed}, quadrature {numeric}, rel {rel:e}"
        );
    }
}

#[test]
fn dirichlet_kl_matches_monte_carlo_in_five_dimensions() {
    // E_p[ln p(X) − ln q(X)] over 400k draws; tolerance 5 standard errors.
    let a = [2.0, 0.8, 4.0, 1.5, 3.0];
    let b = [1.0, 1.0, 2.0, 2.0, 5.0];
    let ln_density = |al: &[f64], x: &[f64]| {
        ln_gamma(al.iter().sum()) - al.iter().map(|v| ln_gamma(*v)).sum::<f64>()
            + al.iter()
                .zip(x)
                .map(|(ai, xi)| (ai - 1.0) * xi.ln())
                .sum::<f64>()
    };
    let d = DirichletPosterior::new(&a).unwrap();
    let mut rng = learner_rng(11, 0, 0);
    let mut x = [0.0; 5];
    let n = 400_000;
    let (mut sum, mut sq) = (0.0, 0.0);
    for _ in 0..n {
        d.sample_into(&mut rng, &mut x);
        let v = ln_density(&a, &x) - ln_density(&b, &x);
        sum += v;
        sq += v * v;
    }
    let mean = sum / n as f64;
    let se = ((sq / n as f64 - mean * mean) / n as f64).sqrt();
    let closed = kl_dirichlet(&a, &b);
    assert!(
        (closed - mean).abs() < 5.0 * se,
        "closed {closed}, MC {mean} ± {se}"
    );
}

#[test]
fn beta_is_the_two_outcome_dirichlet() {
    let b = BetaPosterior::new(3.0, 7.0).unwrap();
    assert_eq!(
        kl_beta(b.alpha(), b.beta(), 2.0, 2.0),
        kl_dirichlet(&[3.0, 7.0], &[2.0, 2.0])
    );
}

#[test]
fn categorical_kl_is_infinite_where_q_has_no_mass() {
    assert_eq!(kl_categorical(&[0.2, 0.8], &[0.0, 1.0]), f64::INFINITY);
    assert_eq!(kl_dirichlet_means(&[1.0, 2.0], &[0.0, 3.0]), f64::INFINITY);
    assert_eq!(kl_categorical(&[0.0, 1.0], &[0.0, 1.0]), 0.0);
}

fn simplex(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.001f64..10.0, n).prop_map(|v| {
        let s: f64 = v.iter().sum();
        v.into_iter().map(|x| x / s).collect()
    })
}

proptest! {
    #[test]
    fn kl_is_non_negative_and_zero_only_for_equal_arguments(
        (p, q) in (2usize..8).prop_flat_map(|n| (simplex(n), simplex(n)))
    ) {
        let kl = kl_categorical(&p, &q);
        prop_assert!(kl >= 0.0 && !kl.is_nan());
        prop_assert_eq!(kl_categorical(&p, &p), 0.0);
        let differ = p.iter().zip(&q).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        if differ > 1e-6 {
            prop_assert!(kl > 0.0);
        }
    }

    #[test]
    fn dirichlet_kl_is_non_negative(
        (a, b) in (2usize..6).prop_flat_map(|n| (prop::collection::vec(0.1f64..50.0, n), prop::collection::vec(0.1f64..50.0, n)))
    ) {
        let kl = kl_dirichlet(&a, &b);
        prop_assert!(kl >= 0.0 && kl.is_finite());
        prop_assert_eq!(kl_dirichlet(&a, &a), 0.0);
    }
}
