//! The contextual agent an application drives: a shared θ over per-arm
//! features against a brute-force solve, propensities against closed
//! forms, arms that come and go, and saving and restoring, each against an
//! independent computation.

use nalgebra::{DMatrix, DVector};
use parbayes::linear::{LinearAgent, LinearConfig, LinearModel, LinearPolicy};
use parbayes::share::Family;
use rand::{Rng, RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;
use statrs::distribution::{ContinuousCDF, Normal};

fn normal(rng: &mut impl Rng) -> f64 {
    rng.sample(StandardNormal)
}

/// Λ = λI + Σ x xᵀ and b = Σ r x, by plain sums.
fn brute_force(d: usize, ridge: f64, obs: &[(Vec<f64>, f64)]) -> (DMatrix<f64>, DVector<f64>) {
    let mut lam = DMatrix::identity(d, d) * ridge;
    let mut b = DVector::zeros(d);
    for (x, r) in obs {
        let x = DVector::from_column_slice(x);
        lam += &x * x.transpose();
        b += &x * *r;
    }
    (lam, b)
}

/// One θ shared by every arm: the agent's key holds the sums of the chosen
/// arms' own feature vectors, and its mean is a fresh solve of them.
#[test]
fn a_shared_theta_learns_from_the_chosen_arms_features() {
    let (arms, d) = (4, 3);
    let config = LinearConfig::builder(arms, d)
        .model(LinearModel::Shared)
        .ridge(0.5)
        .build()
        .unwrap();
    assert_eq!(config.shape().actions, 1, "one key for every arm");
    let mut agent = LinearAgent::new(&config, 0, 3).unwrap();
    assert_eq!(agent.context_len(), arms * d);
    let theta = [0.5, -1.0, 2.0];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let mut seen = Vec::new();
    for _ in 0..2000 {
        let context: Vec<f64> = (0..arms * d).map(|_| normal(&mut rng)).collect();
        let arm = agent.decide(&context).unwrap();
        let x = context[arm * d..(arm + 1) * d].to_vec();
        let r = x.iter().zip(theta).map(|(x, t)| x * t).sum::<f64>() + 0.1 * normal(&mut rng);
        agent.observe(&context, arm, r).unwrap();
        seen.push((x, r));
    }
    let (lam, b) = brute_force(d, 0.5, &seen);
    let fresh = lam.clone().lu().solve(&b).unwrap();
    for arm in 0..arms {
        let kept = DVector::from_column_slice(agent.mean(arm).unwrap());
        assert!((&kept - &fresh).amax() < 1e-9, "{kept} vs {fresh}");
    }
    // The key's statistics are the brute-force sums: Λ's upper triangle.
    let stats = agent.ledger().own().row(0).unwrap();
    let mut k = 0;
    for i in 0..d {
        for j in i..d {
            let want = lam[(i, j)] - if i == j { 0.5 } else { 0.0 };
            assert!((stats[k] - want).abs() < 1e-9 * (1.0 + want.abs()));
            k += 1;
        }
    }
    assert_eq!(agent.observations(2), 2000.0);
    // Greedy on the learned θ picks the arm of highest x_kᵀθ.
    let context: Vec<f64> = (0..arms * d).map(|k| (k as f64 * 0.37).sin()).collect();
    let best = (0..arms)
        .max_by(|&a, &b| {
            let v = |k: usize| (0..d).map(|i| context[k * d + i] * theta[i]).sum::<f64>();
            v(a).total_cmp(&v(b))
        })
        .unwrap();
    let mut greedy = LinearAgent::restore(
        &config
            .to_builder()
            .policy(LinearPolicy::EpsilonGreedy { epsilon: 0.0 })
            .build()
            .unwrap(),
        agent.save(),
    )
    .unwrap();
    assert_eq!(greedy.decide(&context).unwrap(), best);
}

/// Two arms with disjoint posteriors: Thompson sampling picks arm 1 with
/// probability Φ((m₁ − m₀) / √(v₀ + v₁)), mₖ = xᵀμₖ and vₖ = σ² xᵀΛₖ⁻¹x.
/// The estimate from 100,000 draws is within 4 standard errors of it.
#[test]
fn thompson_propensities_match_the_closed_form() {
    let d = 2;
    let config = LinearConfig::builder(2, d)
        .propensity_draws(100_000)
        .build()
        .unwrap();
    let mut agent = LinearAgent::new(&config, 0, 5).unwrap();
    let mut seen = [Vec::new(), Vec::new()];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    for t in 0..40 {
        let x = vec![1.0, normal(&mut rng)];
        let arm = t % 2;
        let r = [0.2, 0.5][arm] * x[0] + 0.3 * x[1] + normal(&mut rng);
        agent.observe(&x, arm, r).unwrap();
        seen[arm].push((x, r));
    }
    let x = [1.0, 0.3];
    let xv = DVector::from_column_slice(&x);
    let moments = |obs: &[(Vec<f64>, f64)]| {
        let (lam, b) = brute_force(d, 1.0, obs);
        let inv = lam.try_inverse().unwrap();
        let mean = &inv * b;
        (mean.dot(&xv), (xv.transpose() * &inv * &xv)[(0, 0)])
    };
    let ((m0, v0), (m1, v1)) = (moments(&seen[0]), moments(&seen[1]));
    let p1 = Normal::standard().cdf((m1 - m0) / (v0 + v1).sqrt());
    let decision = agent.decide_with_propensity(&x).unwrap();
    assert!(decision.estimated);
    let want = if decision.arm == 1 { p1 } else { 1.0 - p1 };
    let se = (want * (1.0 - want) / 100_000.0).sqrt();
    assert!(
        (decision.propensity - want).abs() < 4.0 * se + 1e-5,
        "arm {}: {} vs {want}",
        decision.arm,
        decision.propensity
    );
}

/// Deterministic policies: the greedy arm's probability is 1 over its
/// ties; LinUCB with no evidence ties every arm.
#[test]
fn exact_propensities_count_ties_and_exploration() {
    let config = LinearConfig::builder(5, 2)
        .policy(LinearPolicy::LinUcb { alpha: 1.0 })
        .build()
        .unwrap();
    let mut agent = LinearAgent::new(&config, 0, 1).unwrap();
    let d = agent.decide_with_propensity(&[1.0, 1.0]).unwrap();
    assert_eq!((d.propensity, d.estimated), (0.2, false));
    agent.retire(0).unwrap();
    let d = agent.decide_with_propensity(&[1.0, 1.0]).unwrap();
    assert_ne!(d.arm, 0);
    assert_eq!(d.propensity, 0.25, "four active arms tie");
    // ε-greedy: ε / K for every arm, plus 1 − ε for the greedy one.
    let config = LinearConfig::builder(3, 1)
        .policy(LinearPolicy::EpsilonGreedy { epsilon: 0.3 })
        .build()
        .unwrap();
    let mut agent = LinearAgent::new(&config, 0, 1).unwrap();
    agent.observe(&[1.0], 1, 2.0).unwrap();
    let mut total = [0.0; 3];
    let mut counts = [0u32; 3];
    for _ in 0..20_000 {
        let d = agent.decide_with_propensity(&[1.0]).unwrap();
        total[d.arm] = d.propensity;
        counts[d.arm] += 1;
    }
    for (got, want) in total.iter().zip([0.1, 0.8, 0.1]) {
        assert!((got - want).abs() < 1e-12, "{total:?}");
    }
    // And the frequencies agree with them (4 standard errors).
    for (arm, p) in total.iter().enumerate() {
        let f = f64::from(counts[arm]) / 20_000.0;
        assert!(
            (f - p).abs() < 4.0 * (p * (1.0 - p) / 20_000.0).sqrt(),
            "{arm}"
        );
    }
}

/// A retired arm is never chosen but still learns; the last active arm
/// cannot retire.
#[test]
fn retired_arms_are_not_chosen() {
    let config = LinearConfig::builder(3, 2).build().unwrap();
    let mut agent = LinearAgent::new(&config, 0, 4).unwrap();
    agent.retire(1).unwrap();
    for t in 0..500 {
        let x = [1.0, f64::from(t % 7)];
        let arm = agent.decide(&x).unwrap();
        assert_ne!(arm, 1);
        agent.observe(&x, 1, 1.0).unwrap();
    }
    assert_eq!(agent.observations(1), 500.0);
    agent.retire(0).unwrap();
    let e = agent.retire(2).unwrap_err().to_string();
    assert!(e.contains("last active arm"), "{e}");
    agent.reinstate(1).unwrap();
    agent.retire(2).unwrap();
    assert_eq!(agent.decide(&[1.0, 0.0]).unwrap(), 1);
}

/// New arms on disjoint models: a key the aggregator has not added is
/// refused; once both sides have it, the global statistics are again the
/// sum of every learner's own.
#[test]
fn arms_added_while_running_are_shared() {
    let config = LinearConfig::builder(2, 2).build().unwrap();
    let mut agg = config.aggregator(2);
    let mut a = LinearAgent::new(&config, 0, 1).unwrap();
    let mut b = LinearAgent::new(&config, 1, 2).unwrap();
    assert_eq!(a.add_arm(), 2);
    a.observe(&[1.0, 0.5], 2, 1.0).unwrap();
    let early = a.flush().unwrap();
    let before = format!("{agg:?}");
    assert!(agg.receive(&early).is_err(), "the aggregator has 2 keys");
    assert_eq!(
        format!("{agg:?}"),
        before,
        "a refused message changes nothing"
    );
    agg.add_keys(1).unwrap();
    agg.receive(&a.resend().unwrap()).unwrap();
    b.add_arm();
    for t in 0..50 {
        let x = [1.0, f64::from(t) / 50.0];
        for agent in [&mut a, &mut b] {
            let arm = agent.decide(&x).unwrap();
            agent.observe(&x, arm, x[1]).unwrap();
            if let Some(m) = agent.flush() {
                agg.receive(&m).unwrap();
            }
        }
    }
    let family = config.family();
    for key in 0..3 {
        let mut sum = vec![0.0; family.width()];
        for agent in [&a, &b] {
            if let Some(own) = agent.ledger().own().row(key) {
                sum.iter_mut().zip(own).for_each(|(s, o)| *s += o);
            }
        }
        let global = agg
            .global()
            .row(key)
            .map_or(vec![0.0; sum.len()], <[f64]>::to_vec);
        for (g, s) in global.iter().zip(&sum) {
            assert!((g - s).abs() < 1e-12 * (1.0 + s.abs()), "key {key}");
        }
    }
    let update = agg.answer(1).unwrap().unwrap();
    b.absorb(&update).unwrap();
    assert_eq!(b.observations(2), family.mass(agg.global().row(2).unwrap()));
    // A shared θ grows its context instead.
    let shared = LinearConfig::builder(2, 3)
        .model(LinearModel::Shared)
        .build()
        .unwrap();
    let mut s = LinearAgent::new(&shared, 0, 1).unwrap();
    s.add_arm();
    assert_eq!((s.context_len(), s.shape().actions), (9, 1));
    assert!(s.decide(&[0.0; 6]).is_err());
    assert!(s.decide(&[0.0; 9]).unwrap() < 3);
}

/// A saved agent restored from JSON and from MessagePack continues draw
/// for draw, through decisions, observations, shares and absorbed
/// updates; states that do not fit are refused.
#[test]
fn a_restored_agent_continues_exactly() {
    for model in [LinearModel::Disjoint, LinearModel::Shared] {
        let config = LinearConfig::builder(3, 4)
            .model(model)
            .noise(parbayes::linear::Noise::Unknown {
                shape: 2.0,
                rate: 1.0,
            })
            .build()
            .unwrap();
        let mut agg = config.aggregator(2);
        let mut agent = LinearAgent::new(&config, 0, 8).unwrap();
        let mut other = LinearAgent::new(&config, 1, 9).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let len = agent.context_len();
        let play = |agent: &mut LinearAgent, rng: &mut Xoshiro256PlusPlus| {
            let x: Vec<f64> = (0..len).map(|_| normal(rng)).collect();
            let arm = agent.decide(&x).unwrap();
            agent.observe(&x, arm, x[0] + normal(rng)).unwrap();
            arm
        };
        for _ in 0..300 {
            play(&mut agent, &mut rng);
            play(&mut other, &mut rng);
            if let Some(m) = other.share() {
                agg.receive(&m).unwrap();
            }
        }
        if let Some(u) = agg.answer(0).unwrap() {
            agent.absorb(&u).unwrap();
        }
        let json = serde_json::to_vec(&agent.save()).unwrap();
        let packed = rmp_serde::to_vec(&agent.save()).unwrap();
        let mut from_json =
            LinearAgent::restore(&config, serde_json::from_slice(&json).unwrap()).unwrap();
        let mut from_msgpack =
            LinearAgent::restore(&config, rmp_serde::from_slice(&packed).unwrap()).unwrap();
        let (mut r1, mut r2, mut r3) = (rng.clone(), rng.clone(), rng.clone());
        for _ in 0..300 {
            let a = play(&mut agent, &mut r1);
            assert_eq!(a, play(&mut from_json, &mut r2));
            assert_eq!(a, play(&mut from_msgpack, &mut r3));
        }
        for arm in 0..3 {
            assert_eq!(agent.mean(arm).unwrap(), from_json.mean(arm).unwrap());
        }
        assert_eq!(
            format!("{:?}", agent.share()),
            format!("{:?}", from_json.share())
        );

        // Another dimension, another prior: refused.
        for wrong in [
            LinearConfig::builder(3, 5).model(model).build().unwrap(),
            config.to_builder().ridge(2.0).build().unwrap(),
        ] {
            let e = LinearAgent::restore(&wrong, agent.save()).unwrap_err();
            assert!(e.to_string().contains("regression"), "{e}");
        }
        // A factor with a negative diagonal entry: refused.
        let mut bad: serde_json::Value = serde_json::from_slice(&json).unwrap();
        bad["keys"][0]["l"][0] = (-1.0).into();
        let e = LinearAgent::restore(&config, serde_json::from_value(bad).unwrap()).unwrap_err();
        assert!(e.to_string().contains("diagonal"), "{e}");
        // Own statistics that are not positive semi-definite: refused.
        let mut bad: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let own = &mut bad["ledger"]["own"]["counts"];
        own[0] = (-5.0).into();
        let e = LinearAgent::restore(&config, serde_json::from_value(bad).unwrap()).unwrap_err();
        assert!(e.to_string().contains("semi-definite"), "{e}");
    }
}

/// A restarted agent recovers what it shared from the aggregator's record
/// (its unshared evidence is gone), its posterior is the record's, and it
/// goes on sharing under sequence numbers the aggregator accepts.
#[test]
fn a_restarted_agent_recovers_what_it_shared() {
    let config = LinearConfig::builder(2, 3).build().unwrap();
    let mut agg = config.aggregator(2);
    let mut a = LinearAgent::new(&config, 0, 1).unwrap();
    let mut b = LinearAgent::new(&config, 1, 2).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
    for _ in 0..200 {
        for agent in [&mut a, &mut b] {
            let x: Vec<f64> = (0..3).map(|_| normal(&mut rng)).collect();
            let arm = agent.decide(&x).unwrap();
            agent.observe(&x, arm, x[0]).unwrap();
            if let Some(m) = agent.flush() {
                agg.receive(&m).unwrap();
            }
        }
    }
    let shared = a.ledger().own().clone();
    a.observe(&[1.0, 0.0, 0.0], 0, 5.0).unwrap(); // never shared: lost
    let record = agg.recovery(0).unwrap();
    assert!(b.recover(&record).is_err(), "another learner's record");
    let mut restarted = LinearAgent::new(&config, 0, 9).unwrap();
    restarted.recover(&record).unwrap();
    assert_eq!(restarted.ledger().own(), &shared);
    // Own + others is the global sum again.
    for arm in 0..2 {
        let global = agg.global().row(arm).unwrap();
        let mine = restarted.ledger().combined().row(arm).unwrap();
        for (m, s) in mine.iter().zip(global) {
            assert!((m - s).abs() < 1e-9 * (1.0 + s.abs()), "arm {arm}");
        }
    }
    restarted.observe(&[0.0, 1.0, 0.0], 1, 1.0).unwrap();
    agg.receive(&restarted.flush().unwrap()).unwrap();
}

/// The synthetic task through its trait: the best expected reward is the
/// best arm's, logistic clicks come at σ(xᵀθ) (4 standard errors over
/// 40,000 pulls), and drift changes θ from its step on.
#[test]
fn the_linear_task_pays_as_its_model_says() {
    use parbayes::env::{ContextualTask, LinearBandit, ThetaChange};
    let theta = vec![vec![0.5, -1.0], vec![-0.3, 0.8]];
    let mut task = LinearBandit::logistic(theta).unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
    let mut x = [0.0; 2];
    task.next_context(&mut rng, &mut x);
    let p: Vec<f64> = (0..2).map(|a| task.expected_reward(a).unwrap()).collect();
    assert_eq!(task.best_expected_reward(), Some(p[0].max(p[1])));
    let want = 1.0 / (1.0 + (-(0.5 * x[0] - x[1])).exp());
    assert!((p[0] - want).abs() < 1e-15);
    let n = 40_000;
    let clicks: f64 = (0..n)
        .map(|_| ContextualTask::reward(&mut task, 0, &mut rng))
        .sum();
    let se = (want * (1.0 - want) / f64::from(n)).sqrt();
    assert!((clicks / f64::from(n) - want).abs() < 4.0 * se);

    let changes = vec![ThetaChange {
        step: 10,
        scale: 1.0,
        set: vec![(0, vec![0.0, 0.0])],
    }];
    let mut task = task.with_drift(changes).unwrap();
    task.advance_to(10);
    assert_eq!(task.expected_reward(0), Some(0.5), "σ(0) after the change");
    let bad = |set: Vec<(usize, Vec<f64>)>| {
        LinearBandit::new(vec![vec![1.0]], 0.1)
            .unwrap()
            .with_drift(vec![ThetaChange {
                step: 1,
                scale: 1.0,
                set,
            }])
            .is_err()
    };
    assert!(
        bad(vec![(1, vec![1.0])])
            && bad(vec![(0, vec![1.0, 2.0])])
            && bad(vec![(0, vec![f64::NAN])])
    );
}
