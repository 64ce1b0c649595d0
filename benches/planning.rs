//! Planning: value iteration on the GridWorld, on a 500-state model with 50
//! outcomes per row and on the VM task's 1500-row model, and the steps per
//! second of one posterior-sampling learner on the GridWorld and the VM task
//! (a draw of every row and a warm-started plan per trial). Fixed seeds;
//! parameters in the BenchmarkId.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use parbayes::learner::Learner;
use parbayes::model::{Mdp, Shape, Transition, ValueIteration};
use parbayes::{Overrides, Scenario};
use rand::RngExt;

fn shipped(file: &str) -> Scenario {
    Scenario::load(file.as_ref(), &Overrides::default()).expect("shipped scenario")
}

/// `states` states, 3 actions, each row reaching `fanout` random states.
fn random_mdp(states: usize, fanout: usize, seed: u64) -> Mdp {
    let shape = Shape {
        states,
        actions: 3,
        outcomes: states,
    };
    let mut rng = parbayes::rng::learner_rng(seed, 0, 0);
    let rows: Vec<Vec<Transition>> = (0..shape.rows())
        .map(|_| {
            let mut next: Vec<usize> = (0..states).collect();
            for k in 0..fanout {
                let j = rng.random_range(k..states);
                next.swap(k, j);
            }
            let w: Vec<f64> = (0..fanout).map(|_| rng.random::<f64>() + 0.01).collect();
            let total: f64 = w.iter().sum();
            next[..fanout]
                .iter()
                .zip(&w)
                .map(|(&n, w)| Transition {
                    outcome: n,
                    next: n,
                    prob: w / total,
                    reward: rng.random::<f64>(),
                    terminal: false,
                })
                .collect()
        })
        .collect();
    Mdp::new(shape, vec![1.0 / states as f64; states], &rows).expect("valid rows")
}

fn value_iteration(c: &mut Criterion) {
    let mut group = c.benchmark_group("value_iteration");
    let grid = shipped("scenarios/gridworld.toml")
        .learner()
        .task()
        .true_model();
    let large = random_mdp(500, 50, 7);
    let vm = shipped("scenarios/vm-allocation.toml")
        .learner()
        .task()
        .true_model();
    for (name, mdp) in [
        ("gridworld-5x5", &grid),
        ("random-500x3x50", &large),
        ("vm-allocation", &vm),
    ] {
        for gamma in [0.9, 0.99] {
            let id = BenchmarkId::new(
                name,
                format!(
                    "rows={}/entries={}/gamma={gamma}/tol=1e-6/cold",
                    mdp.shape().rows(),
                    mdp.entries()
                ),
            );
            group.bench_function(id, |b| {
                b.iter_batched_ref(
                    || ValueIteration::new(mdp),
                    |vi| vi.solve(mdp, gamma, 1e-6),
                    criterion::BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

/// Steps per second of one posterior-sampling learner on a shipped MDP
/// scenario: a draw of every row and a warm-started plan per trial.
fn planning_learner(c: &mut Criterion) {
    let mut group = c.benchmark_group("planning_learner");
    for (name, file, trials) in [
        ("gridworld-5x5", "scenarios/gridworld.toml", 100u64),
        ("vm-allocation", "scenarios/vm-allocation.toml", 10),
    ] {
        let scenario = shipped(file);
        let steps = scenario.run().steps_per_trial();
        group.throughput(Throughput::Elements(trials * steps));
        let id = BenchmarkId::new(
            name,
            format!(
                "posterior-sampling/rows={}/steps_per_trial={steps}/trials={trials}/seed=42",
                scenario.learner().structure().shape().rows()
            ),
        );
        group.bench_function(id, |b| {
            b.iter_batched_ref(
                || Learner::new(scenario.learner(), 42, 0, 0),
                |l| {
                    for _ in 0..trials {
                        l.trial(steps);
                    }
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, value_iteration, planning_learner);
criterion_main!(benches);
