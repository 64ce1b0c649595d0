//! The VM-allocation task: the exact transition model against simulation,
//! the queueing model's monotonicity, empirical response times, baselines.

use parbayes::env::{Environment, VmAllocation};
use parbayes::rng::learner_rng;
use parbayes::{Overrides, Scenario};

fn vm(text: &str) -> VmAllocation {
    match Scenario::parse(text, "vm.toml", "vm", &Overrides::default())
        .unwrap()
        .learner()
        .task()
        .clone()
    {
        Environment::Vm(v) => v,
        other => panic!("{other:?}"),
    }
}

fn shipped() -> VmAllocation {
    vm(&std::fs::read_to_string("scenarios/vm-allocation.toml").unwrap())
}

/// Asserts simulated bin frequencies match `truth` within five binomial
/// standard errors per bin.
fn assert_frequencies(freq: &[f64], truth: &[f64], n: f64, what: &str) {
    for (k, (f, p)) in freq.iter().zip(truth).enumerate() {
        let sd = (p * (1.0 - p) / n).sqrt().max(1e-12);
        assert!(
            (f / n - p).abs() <= 5.0 * sd,
            "{what}: bin {k}: {} vs {p}",
            f / n
        );
    }
}

#[test]
fn every_row_of_the_exact_model_is_a_distribution() {
    let env = shipped();
    let shape = env.shape();
    let mut p = vec![0.0; shape.outcomes];
    for row in 0..shape.rows() {
        env.truth().model().outcome_probs_into(row, &mut p);
        let total: f64 = p.iter().sum();
        assert!((total - 1.0).abs() < 1e-12, "row {row}: {total}");
        assert!(p.iter().all(|x| *x >= 0.0));
    }
    let start: f64 = env.truth().model().start().iter().sum();
    assert!((start - 1.0).abs() < 1e-12);
}

#[test]
fn simulated_response_bins_match_the_exact_model() {
    // Fixed demand: the kernel is P(q' | λ, v'), whatever q.
    let env = vm("[task]\nkind = \"vm\"\ndemand = 450\nnoise_sigma = 0.3\n");
    let mut rng = learner_rng(5, 0, 0);
    let n = 100_000;
    let shape = env.shape();
    let mut truth = vec![0.0; shape.outcomes];
    for (q, v, action) in [(3, 5, 1), (10, 5, 2), (0, 6, 0), (40, 10, 2), (7, 1, 0)] {
        let state = env.state(q, v);
        let mut freq = vec![0.0; shape.outcomes];
        for _ in 0..n {
            let t = env.step(state, action, &mut rng);
            assert_eq!(env.decode(t.next).1, env.next_vms(v, action));
            freq[t.outcome] += 1.0;
        }
        env.truth()
            .model()
            .outcome_probs_into(shape.row(state, action), &mut truth);
        assert_frequencies(&freq, &truth, n as f64, &format!("q {q} v {v} a {action}"));
    }
    // A daily profile: each phase's bins against simulation in that phase.
    let mut env = shipped();
    for phase in [0usize, 6, 12] {
        let mut freq = vec![0.0; shape.outcomes];
        for day in 0..n as u64 {
            env.advance_to(day * 24 + phase as u64);
            freq[env.step(env.state(5, 7), 1, &mut rng).outcome] += 1.0;
        }
        let truth = env.bin_distribution(phase, 7).to_vec();
        assert_frequencies(&freq, &truth, n as f64, &format!("phase {phase}"));
    }
}

/// `P(bin ≤ k)` for every k.
fn cdf(p: &[f64]) -> Vec<f64> {
    p.iter()
        .scan(0.0, |acc, x| {
            *acc += x;
            Some(*acc)
        })
        .collect()
}

#[test]
fn response_times_grow_with_load_and_shrink_with_vms() {
    let env = shipped();
    // Phases 0..=12 climb from 100 to 700 requests per period.
    for v in [3, 7, 10] {
        for phase in 0..12 {
            let lower = cdf(env.bin_distribution(phase, v));
            let higher = cdf(env.bin_distribution(phase + 1, v));
            for (a, b) in lower.iter().zip(&higher) {
                assert!(*a >= *b - 1e-12, "v {v}, phase {phase}");
            }
        }
    }
    for phase in [0, 8, 12] {
        for v in 1..10 {
            let fewer = cdf(env.bin_distribution(phase, v));
            let more = cdf(env.bin_distribution(phase, v + 1));
            for (a, b) in fewer.iter().zip(&more) {
                assert!(*a <= *b + 1e-12, "phase {phase}, v {v}");
            }
        }
    }
}

#[test]
fn empirical_response_times_are_drawn_from_the_nearest_load_level() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rt.csv"),
        "load,response_ms\n0.2,60\n0.2,80\n0.6,150\n0.6,250\n0.6,210\n1.0,900\n",
    )
    .unwrap();
    let path = dir.path().join("vm.toml");
    std::fs::write(
        &path,
        "[task]\nkind = \"vm\"\ndemand = 300\nresponse_times = \"rt.csv\"\n",
    )
    .unwrap();
    let s = Scenario::load(&path, &Overrides::default()).unwrap();
    let Environment::Vm(env) = s.learner().task() else {
        panic!()
    };
    // 300 requests on 5 VMs of 100: load 0.6, bins of 20 ms: 150 → 7, 210 → 10, 250 → 12.
    let p = env.bin_distribution(0, 5);
    for (bin, mass) in [(7, 1.0 / 3.0), (10, 1.0 / 3.0), (12, 1.0 / 3.0)] {
        // Poisson(300) puts a little mass on loads nearer 0.2 or 1.0.
        assert!((p[bin] - mass).abs() < 0.01, "bin {bin}: {}", p[bin]);
    }
    let mut rng = learner_rng(1, 0, 0);
    let n = 60_000;
    let mut freq = vec![0.0; p.len()];
    for _ in 0..n {
        freq[env.step(env.state(0, 5), 1, &mut rng).outcome] += 1.0;
    }
    assert_frequencies(&freq, p, n as f64, "empirical");
}

#[test]
fn baselines_cover_every_fixed_allocation_and_the_autoscaler() {
    let env = shipped();
    let b = env.baselines(20, 24, 2, 42);
    let names: Vec<&str> = b.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 11);
    assert_eq!(names[0], "fixed-1");
    assert_eq!(names[10], "threshold");
    // Ten VMs at 700 requests run at ρ ≈ 0.7 (≈ 170 ms): they pay 10 per
    // period and break the SLA almost never.
    assert!(b[9].1 <= -10.0 && b[9].1 > -10.2, "{b:?}");
    // Neither the smallest nor the largest allocation is the best fixed one.
    let best = (0..10).max_by(|&i, &j| b[i].1.total_cmp(&b[j].1)).unwrap();
    assert!(best > 0 && best < 9, "{b:?}");
}
