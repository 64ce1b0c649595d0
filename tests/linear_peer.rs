//! parbayes's LinTS and LinUCB against the textbook numpy implementations
//! of `benches/peers/linear_textbook.py` (Sherman–Morrison inverses, a
//! fresh Cholesky per draw), on the same synthetic task: mean cumulative
//! regret over independent repetitions agrees within 4 combined standard
//! errors. The peer's numbers are in `tests/reference/linear_peer.json`,
//! which that script writes.

use parbayes::env::LinearBandit;
use parbayes::linear::{LinearAgent, LinearConfig, LinearPolicy, Noise};
use parbayes::rng::learner_rng;
use serde_json::Value;

fn regret(policy: LinearPolicy, peer: &Value, rep: u32) -> f64 {
    let n = |k: &str| peer[k].as_f64().unwrap();
    let (arms, dim, steps) = (n("arms") as usize, n("dim") as usize, n("steps") as usize);
    let sigma = n("sigma");
    let mut rng = learner_rng(2013, rep, 1000);
    let task = LinearBandit::random(arms, dim, sigma, &mut rng).unwrap();
    let config = LinearConfig::builder(arms, dim)
        .ridge(n("ridge"))
        .noise(Noise::Known {
            variance: sigma * sigma,
        })
        .policy(policy)
        .build()
        .unwrap();
    let mut agent = LinearAgent::new(&config, 0, 7 + u64::from(rep)).unwrap();
    let mut x = vec![0.0; dim];
    let mut total = 0.0;
    for _ in 0..steps {
        task.context_into(&mut rng, &mut x);
        let arm = agent.decide(&x).unwrap();
        total += task.regret(&x, arm);
        let r = task.reward(&x, arm, &mut rng);
        agent.observe(&x, arm, r).unwrap();
    }
    total
}

#[test]
fn lints_and_linucb_match_the_textbook_peer() {
    let peer: Value = serde_json::from_str(include_str!("reference/linear_peer.json")).unwrap();
    let reps = peer["reps"].as_u64().unwrap() as u32;
    let alpha = peer["alpha"].as_f64().unwrap();
    for (name, policy) in [
        ("lints", LinearPolicy::Thompson { scale: 1.0 }),
        ("linucb", LinearPolicy::LinUcb { alpha }),
    ] {
        let r: Vec<f64> = (0..reps).map(|rep| regret(policy, &peer, rep)).collect();
        let mean = r.iter().sum::<f64>() / f64::from(reps);
        let var = r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / f64::from(reps - 1);
        let se = (var / f64::from(reps)).sqrt();
        let (peer_mean, peer_se) = (
            peer[name]["mean"].as_f64().unwrap(),
            peer[name]["se"].as_f64().unwrap(),
        );
        let tolerance = 4.0 * (se * se + peer_se * peer_se).sqrt();
        eprintln!("{name}: parbayes {mean:.2} ± {se:.2}, numpy {peer_mean:.2} ± {peer_se:.2}");
        assert!(
            (mean - peer_mean).abs() < tolerance,
            "{name}: parbayes {mean} ± {se}, textbook {peer_mean} ± {peer_se}"
        );
    }
}
