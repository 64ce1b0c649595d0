//! The linear Gaussian family against independent computations: its KL
//! divergences against 50-digit references and Monte Carlo, the protocol's
//! sums against a brute-force sum, and the agent's factored posterior
//! against a fresh solve.

use nalgebra::{DMatrix, DVector};
use parbayes::linear::{Gaussian, LinearAgent, LinearConfig, Noise, kl_gamma};
use parbayes::share::{Divergence, Family, OthersUpdate, RowBatch, ShareMessage, ShareRule};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Gamma, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

const RIDGE: f64 = 0.5;
const VARIANCE: f64 = 0.25;
const P_OBS: [([f64; 3], f64); 4] = [
    ([1.0, 0.5, -1.0], 0.7),
    ([0.25, 1.0, 2.0], -0.3),
    ([-1.0, 1.0, 0.0], 1.1),
    ([2.0, -0.5, 0.5], 0.4),
];
const Q_OBS: [([f64; 3], f64); 2] = [([1.0, 0.5, -1.0], 0.6), ([0.5, 0.5, 0.5], 0.2)];

fn known() -> Gaussian {
    Gaussian::new(3, RIDGE, Noise::Known { variance: VARIANCE }).unwrap()
}

fn unknown() -> Gaussian {
    Gaussian::new(
        3,
        RIDGE,
        Noise::Unknown {
            shape: 2.0,
            rate: 1.5,
        },
    )
    .unwrap()
}

/// Posterior parameters (prior included) after `obs`.
fn posterior(family: &Gaussian, obs: &[([f64; 3], f64)]) -> Vec<f64> {
    let mut stats = vec![0.0; family.width()];
    for (x, r) in obs {
        family.add(&mut stats, (x, *r));
    }
    let mut post = vec![0.0; family.width()];
    family.posterior_into([Some(&stats), None], &mut post);
    post
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// The references are printed by `tests/reference/linear_kl.py` (mpmath,
/// 50 digits, explicit inverses and determinants).
#[test]
fn kl_divergences_match_50_digit_references() {
    let reference = |s: &str| s.parse::<f64>().unwrap();
    for (mut family, expected) in [
        (
            known(),
            "1.4426230870598384156026253399908893398199535993258",
        ),
        (
            unknown(),
            "1.3092713110616467182355328317347404235518627983197",
        ),
    ] {
        let (p, q) = (posterior(&family, &P_OBS), posterior(&family, &Q_OBS));
        let kl = family.divergence(Divergence::Posteriors, &p, &q);
        assert!(
            rel(kl, reference(expected)) < 1e-12,
            "{:?}: {kl} vs {expected}",
            family.noise()
        );
        // The same posterior has no divergence from itself.
        assert!(family.divergence(Divergence::Means, &p, &p).abs() < 1e-12);
    }
    let g = kl_gamma(3.0, 2.0, 1.5, 0.7);
    assert!(
        rel(
            g,
            reference("0.19498027120052670982228754668561414216868347393801")
        ) < 1e-13
    );
}

/// Mean, full matrix and Cholesky-free inverse of posterior parameters.
fn moments(family: &Gaussian, post: &[f64]) -> (DVector<f64>, DMatrix<f64>) {
    let d = family.dim();
    let mut lam = DMatrix::zeros(d, d);
    let mut k = 0;
    for i in 0..d {
        for j in i..d {
            (lam[(i, j)], lam[(j, i)]) = (post[k], post[k]);
            k += 1;
        }
    }
    let b = DVector::from_column_slice(&post[k..k + d]);
    let mean = lam.clone().lu().solve(&b).unwrap();
    (mean, lam)
}

/// log N(θ; μ, (s Λ)⁻¹) up to the constant both sides share.
fn log_normal(theta: &DVector<f64>, mean: &DVector<f64>, lam: &DMatrix<f64>, s: f64) -> f64 {
    let d = theta.len() as f64;
    let delta = theta - mean;
    0.5 * (lam.determinant().ln() + d * s.ln())
        - 0.5 * s * (delta.transpose() * lam * &delta)[(0, 0)]
}

#[test]
fn kl_divergences_match_monte_carlo() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    const DRAWS: usize = 200_000;
    for mut family in [known(), unknown()] {
        let (p, q) = (posterior(&family, &P_OBS), posterior(&family, &Q_OBS));
        let exact = family.divergence(Divergence::Posteriors, &p, &q);
        let ((mp, lp), (mq, lq)) = (moments(&family, &p), moments(&family, &q));
        let gamma = |post: &[f64], mean: &DVector<f64>| {
            let Noise::Unknown { shape, rate } = family.noise() else {
                unreachable!()
            };
            let (n, squares) = (post[9], post[10]);
            let b = DVector::from_column_slice(&post[6..9]);
            (shape + n / 2.0, rate + (squares - mean.dot(&b)) / 2.0)
        };
        let chol = lp.clone().cholesky().unwrap();
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for _ in 0..DRAWS {
            let z = DVector::from_fn(3, |_, _| rng.sample::<f64, _>(StandardNormal));
            let (tau, log_tau_ratio) = match family.noise() {
                Noise::Known { variance } => (1.0 / variance, 0.0),
                _ => {
                    let ((ap, bp), (aq, bq)) = (gamma(&p, &mp), gamma(&q, &mq));
                    let tau = Gamma::new(ap, 1.0 / bp).unwrap().sample(&mut rng);
                    let log_gamma = |a: f64, b: f64| {
                        a * b.ln() - statrs::function::gamma::ln_gamma(a) + (a - 1.0) * tau.ln()
                            - b * tau
                    };
                    (tau, log_gamma(ap, bp) - log_gamma(aq, bq))
                }
            };
            // θ = μ + (τ Λ)^{-1/2} z through Λ = L Lᵀ: θ = μ + L⁻ᵀ z / √τ.
            let theta = &mp + chol.l().transpose().lu().solve(&z).unwrap() / tau.sqrt();
            let ratio = log_normal(&theta, &mp, &lp, tau) - log_normal(&theta, &mq, &lq, tau)
                + log_tau_ratio;
            sum += ratio;
            sum_sq += ratio * ratio;
        }
        let mean = sum / DRAWS as f64;
        let se = ((sum_sq / DRAWS as f64 - mean * mean) / DRAWS as f64).sqrt();
        assert!(
            (mean - exact).abs() < 4.0 * se,
            "{:?}: Monte Carlo {mean} ± {se}, closed form {exact}",
            family.noise()
        );
    }
}

/// Features and rewards on a grid of eighths: every sum the protocol
/// forms is exact in f64, so "equal" can mean bit for bit.
fn dyadic(rng: &mut Xoshiro256PlusPlus) -> f64 {
    f64::from(rng.random_range(-16i32..=16)) / 8.0
}

#[test]
fn global_statistics_are_the_sum_of_every_learners_own() {
    let config = LinearConfig::builder(4, 3)
        .share(ShareRule::Always)
        .build()
        .unwrap();
    let mut agg = config.aggregator(5);
    let mut agents: Vec<LinearAgent> = (0..5)
        .map(|i| LinearAgent::new(&config, i, 3).unwrap())
        .collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    for _ in 0..300 {
        for agent in &mut agents {
            let x = [dyadic(&mut rng), dyadic(&mut rng), dyadic(&mut rng)];
            let arm = agent.decide(&x).unwrap();
            agent.observe(&x, arm, dyadic(&mut rng)).unwrap();
            if let Some(m) = agent.share() {
                agg.receive(&m).unwrap();
            }
        }
        for agent in &mut agents {
            if let Some(u) = agg.answer(agent.id()).unwrap() {
                agent.absorb(&u).unwrap();
            }
        }
    }
    for arm in 0..4 {
        let mut brute = vec![0.0; config.family().width()];
        for agent in &agents {
            if let Some(own) = agent.ledger().own().row(arm) {
                brute.iter_mut().zip(own).for_each(|(b, o)| *b += o);
            }
        }
        assert_eq!(agg.global().row(arm).unwrap(), &brute[..], "arm {arm}");
        // Each agent's own + others is the global estimate.
        for agent in &agents {
            assert_eq!(agent.ledger().combined().row(arm).unwrap(), &brute[..]);
        }
    }
}

/// Five messages of one learner, delivered shuffled and twice over, leave
/// the aggregator as the in-order delivery does.
#[test]
fn duplicates_and_reordering_are_harmless() {
    let config = LinearConfig::builder(2, 2)
        .share(ShareRule::Always)
        .build()
        .unwrap();
    let mut agent = LinearAgent::new(&config, 0, 1).unwrap();
    let mut messages = Vec::new();
    for t in 0..5 {
        let x = [1.0, f64::from(t) / 3.0];
        agent
            .observe(&x, t as usize % 2, 0.1 * f64::from(t))
            .unwrap();
        messages.push(agent.share().unwrap());
    }
    let mut in_order = config.aggregator(1);
    messages.iter().for_each(|m| in_order.receive(m).unwrap());
    let mut shuffled = config.aggregator(1);
    for k in [4, 2, 4, 0, 3, 1, 0, 2, 1, 3] {
        let _ = shuffled.receive(&messages[k]);
    }
    for arm in 0..2 {
        assert_eq!(in_order.global().row(arm), shuffled.global().row(arm));
        assert_eq!(in_order.global().row(arm), agent.ledger().own().row(arm));
    }
}

#[test]
fn malformed_messages_are_refused_and_change_nothing() {
    let config = LinearConfig::builder(2, 2).build().unwrap();
    let width = config.family().width();
    let mut agg = config.aggregator(2);
    let good = |stats: &[f64]| {
        let mut rows = RowBatch::new(width);
        rows.push(1, stats);
        rows
    };
    // Λ = [[1, 0], [0, 1]] (upper triangle 1, 0, 1), b, n = 1, Σr² = 1.
    let valid = [1.0, 0.0, 1.0, 0.5, 0.5, 1.0, 1.0];
    agg.receive(&ShareMessage {
        learner: 0,
        seq: 1,
        rows: good(&valid),
    })
    .unwrap();
    let before = serde_json::to_string(&agg).unwrap();
    let mut nan = valid;
    nan[3] = f64::NAN;
    // Not positive semi-definite: an off-diagonal entry above both diagonals.
    let indefinite = [1.0, 3.0, 1.0, 0.5, 0.5, 1.0, 1.0];
    let negative_n = [1.0, 0.0, 1.0, 0.5, 0.5, -1.0, 1.0];
    let cases: Vec<(RowBatch, &str)> = vec![
        (good(&nan), "finite"),
        (good(&indefinite), "positive semi-definite"),
        (good(&negative_n), "≥ 0"),
        (
            RowBatch {
                outcomes: 6,
                rows: vec![1],
                counts: vec![0.0; 6],
            },
            "outcomes",
        ),
    ];
    for (rows, expected) in cases {
        let e = agg
            .receive(&ShareMessage {
                learner: 1,
                seq: 1,
                rows,
            })
            .unwrap_err();
        assert!(e.to_string().contains(expected), "{e} lacks {expected}");
        assert_eq!(serde_json::to_string(&agg).unwrap(), before, "{e}");
    }
    // The same check guards an agent's absorb.
    let mut agent = LinearAgent::new(&config, 1, 0).unwrap();
    let e = agent
        .absorb(&OthersUpdate {
            learner: 1,
            stamp: 9,
            rows: good(&indefinite),
        })
        .unwrap_err();
    assert!(e.to_string().contains("positive semi-definite"), "{e}");
    assert_eq!(agent.observations(1), 0.0);
}

/// After thousands of rank-one updates and the others' evidence, each
/// arm's mean is what a fresh solve of (λI + Λ) μ = b gives.
#[test]
fn the_factored_posterior_is_a_fresh_solve() {
    let config = LinearConfig::builder(3, 5).ridge(2.0).build().unwrap();
    let mut agg = config.aggregator(2);
    let mut a = LinearAgent::new(&config, 0, 1).unwrap();
    let mut b = LinearAgent::new(&config, 1, 2).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
    for _ in 0..3000 {
        let x: Vec<f64> = (0..5).map(|_| rng.sample(StandardNormal)).collect();
        for agent in [&mut a, &mut b] {
            let arm = agent.decide(&x).unwrap();
            let r = x[arm] + 0.1 * rng.sample::<f64, _>(StandardNormal);
            agent.observe(&x, arm, r).unwrap();
            if let Some(m) = agent.share() {
                agg.receive(&m).unwrap();
            }
        }
        if let Some(u) = agg.answer(0).unwrap() {
            a.absorb(&u).unwrap();
        }
    }
    let family = config.family();
    for arm in 0..3 {
        let mut post = vec![0.0; family.width()];
        family.posterior_into([a.ledger().combined().row(arm), None], &mut post);
        let (fresh, _) = moments(family, &post);
        let kept = DVector::from_column_slice(a.mean(arm).unwrap());
        assert!(
            (&kept - &fresh).amax() < 1e-9 * (1.0 + fresh.amax()),
            "arm {arm}: {kept} vs {fresh}"
        );
    }
}

#[test]
fn bad_contexts_and_rewards_are_refused() {
    let config = LinearConfig::builder(2, 3).build().unwrap();
    let mut agent = LinearAgent::new(&config, 0, 0).unwrap();
    let e = agent.decide(&[1.0, 2.0]).unwrap_err().to_string();
    assert!(e.contains("2 features; the agents have 3"), "{e}");
    let e = agent.decide(&[1.0, f64::NAN, 0.0]).unwrap_err().to_string();
    assert!(e.contains("feature 1"), "{e}");
    let e = agent
        .observe(&[1.0, 0.0, 0.0], 2, 1.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("arm 2 is out of range"), "{e}");
    let e = agent
        .observe(&[1.0, 0.0, 0.0], 1, f64::INFINITY)
        .unwrap_err()
        .to_string();
    assert!(e.contains("reward"), "{e}");
    assert_eq!(agent.observations(1), 0.0);
    let e = LinearConfig::builder(2, 0).build().unwrap_err().to_string();
    assert!(e.contains("0 features"), "{e}");
}
