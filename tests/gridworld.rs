//! The stochastic GridWorld and planning learners: the true model against
//! simulation, the known structure against the truth, the protocol against
//! a brute-force sum, reproducibility, and learning that improves with N.

use parbayes::env::{Environment, Task};
use parbayes::learner::Learner;
use parbayes::policy::Policy;
use parbayes::record::TrialRecord;
use parbayes::rng::learner_rng;
use parbayes::share::{Aggregator, ShareRule};
use parbayes::{Overrides, RunOptions, Scenario, run_scenario};

fn gridworld(overrides: Overrides) -> Scenario {
    Scenario::load("scenarios/gridworld.toml".as_ref(), &overrides).unwrap()
}

#[test]
fn simulated_moves_match_the_true_model() {
    let env = gridworld(Overrides::default()).learner().task().clone();
    let shape = env.shape();
    let mut rng = learner_rng(11, 0, 0);
    let n = 200_000;
    let mut truth = vec![0.0; shape.outcomes];
    let mut freq = vec![0.0; shape.outcomes];
    // An inside cell, a corner, a wall cell, and A.
    for (cell, action) in [(12, 0), (12, 3), (0, 0), (24, 1), (10, 2), (1, 2)] {
        freq.fill(0.0);
        for _ in 0..n {
            freq[env.step(cell, action, &mut rng).outcome] += 1.0;
        }
        env.true_row_into(shape.row(cell, action), &mut truth);
        for (f, p) in freq.iter().zip(&truth) {
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            // Five binomial standard errors, and exact zeros stay zero.
            assert!(
                (f / n as f64 - p).abs() <= 5.0 * sd,
                "cell {cell} action {action}"
            );
        }
    }
}

#[test]
fn the_known_structure_agrees_with_every_true_transition() {
    let env = gridworld(Overrides::default()).learner().task().clone();
    let shape = env.shape();
    let model = env.true_model();
    for s in 0..shape.states {
        for a in 0..shape.actions {
            for t in model.transitions(shape.row(s, a)) {
                let k = env.known(s, a, t.outcome);
                assert_eq!(
                    (k.next, k.reward, k.terminal),
                    (t.next, t.reward, t.terminal)
                );
            }
        }
    }
}

/// Every row's counts summed over learners, from their own counts.
fn brute_force(learners: &[Learner], row: usize, outcomes: usize) -> Vec<f64> {
    let mut sum = vec![0.0; outcomes];
    for l in learners {
        if let Some(c) = l.ledger().own().row(row) {
            for (s, x) in sum.iter_mut().zip(c) {
                *s += x;
            }
        }
    }
    sum
}

#[test]
fn sharing_always_pools_every_learners_moves_exactly() {
    let config = gridworld(Overrides::default())
        .learner()
        .with_share(ShareRule::Always)
        .unwrap();
    let shape = config.structure().shape();
    let n = 4;
    let mut learners: Vec<Learner> = (0..n).map(|i| Learner::new(&config, 3, 0, i)).collect();
    let mut agg = Aggregator::new(shape, n as usize);
    let mut alpha = vec![0.0; shape.outcomes];
    for _ in 0..20 {
        for l in &mut learners {
            if let Some(m) = l.trial(50) {
                agg.receive(&m).unwrap();
            }
        }
        for u in agg.answer_all() {
            learners[u.learner as usize].absorb(&u);
        }
        for row in 0..shape.rows() {
            let pooled = brute_force(&learners, row, shape.outcomes);
            let global = agg.global().row(row).map(<[f64]>::to_vec);
            assert_eq!(global.unwrap_or_else(|| vec![0.0; shape.outcomes]), pooled);
            for l in &learners {
                l.ledger().combined_alpha_into(row, &mut alpha);
                for (a, p) in alpha.iter().zip(&pooled) {
                    assert_eq!(*a, config.agent().prior() + p);
                }
            }
        }
    }
    assert_eq!(learners[0].stats().steps, 1000);
}

#[test]
fn same_seed_same_records_on_any_thread_count_and_cohort_split() {
    let scenario = gridworld(Overrides {
        agents: Some(vec![5]),
        reps: Some(2),
        trials: Some(40),
        ..Default::default()
    });
    let run = |threads, cohorts| {
        run_scenario(
            &scenario,
            &RunOptions {
                threads,
                cohorts,
                ..RunOptions::default()
            },
            &mut (),
        )
        .unwrap()
        .records
    };
    let base = run(1, 1);
    assert!(base.iter().any(|r| r.policy_loss.is_some()));
    assert_eq!(base, run(2, 0));
    assert_eq!(base, run(2, 5));
}

#[test]
fn policy_loss_vanishes_for_a_learner_that_knows_the_model() {
    // A learner that has seen each row's exact distribution 10⁹ times acts
    // optimally; one that has seen nothing acts on a uniform model.
    let scenario = gridworld(Overrides::default());
    let env = scenario.learner().task().clone();
    let shape = env.shape();
    let mut truth = vec![0.0; shape.outcomes];
    struct Known(Vec<Vec<f64>>);
    impl parbayes::policy::PosteriorRows for Known {
        fn alpha_into(&self, row: usize, out: &mut [f64]) {
            out.copy_from_slice(&self.0[row]);
        }
        fn prior(&self) -> f64 {
            1.0
        }
    }
    let rows = (0..shape.rows())
        .map(|r| {
            env.true_row_into(r, &mut truth);
            truth.iter().map(|p| 1.0 + 1e9 * p).collect()
        })
        .collect();
    let (truth, structure) = (env.truth().unwrap(), scenario.learner().structure());
    let loss = parbayes::policy::policy_loss(truth, structure, &Known(rows));
    assert!(loss.abs() < 1e-9, "{loss}");
    let uniform = Known(vec![vec![1.0; shape.outcomes]; shape.rows()]);
    let loss = parbayes::policy::policy_loss(truth, structure, &uniform);
    assert!(loss > 1.0, "{loss}");
}

/// Mean over repetitions of the last record's model error, per agent count.
fn final_model_error(records: &[TrialRecord], agents: &[u32]) -> Vec<f64> {
    let last = records.iter().map(|r| r.trial).max().unwrap();
    agents
        .iter()
        .map(|&n| {
            let xs: Vec<f64> = records
                .iter()
                .filter(|r| r.agents == n && r.trial == last)
                .map(|r| r.model_kl.unwrap())
                .collect();
            xs.iter().sum::<f64>() / xs.len() as f64
        })
        .collect()
}

#[test]
fn model_error_falls_as_learners_are_added_for_every_policy() {
    let agents = vec![1, 2, 5, 10];
    for policy in [
        Policy::PosteriorSampling,
        Policy::EpsilonGreedy { epsilon: 0.15 },
        Policy::Softmax { temperature: 1.0 },
    ] {
        let scenario = gridworld(Overrides {
            agents: Some(agents.clone()),
            reps: Some(4),
            trials: Some(200),
            policy: Some(policy),
            ..Default::default()
        });
        let records = run_scenario(&scenario, &RunOptions::default(), &mut ())
            .unwrap()
            .records;
        let errors = final_model_error(&records, &agents);
        assert!(
            errors.windows(2).all(|w| w[1] < w[0]),
            "{policy}: {errors:?}"
        );
    }
}

#[test]
fn a_tabular_model_file_runs_and_its_learners_find_the_far_bank() {
    // RiverSwim: posterior sampling finds the right bank's reward 1, which
    // ε-greedy rarely reaches; the greedy mean policy ends optimal.
    let run = |policy| {
        let s = Scenario::load(
            "scenarios/riverswim.toml".as_ref(),
            &Overrides {
                agents: Some(vec![5]),
                reps: Some(3),
                policy: Some(policy),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(matches!(s.learner().task(), Environment::Tabular(_)));
        let records = run_scenario(&s, &RunOptions::default(), &mut ())
            .unwrap()
            .records;
        let last: Vec<&TrialRecord> = records.iter().filter(|r| r.trial == 200).collect();
        let reward = last.iter().map(|r| r.reward_per_step).sum::<f64>() / last.len() as f64;
        let loss = last.iter().map(|r| r.policy_loss.unwrap()).sum::<f64>() / last.len() as f64;
        (reward, loss)
    };
    let (ps_reward, ps_loss) = run(Policy::PosteriorSampling);
    let (eg_reward, _) = run(Policy::EpsilonGreedy { epsilon: 0.15 });
    assert!(ps_reward > 1.3 * eg_reward, "{ps_reward} vs {eg_reward}");
    assert!(ps_loss < 1e-6, "{ps_loss}");
}

#[test]
fn the_drift_scenarios_model_error_rises_at_each_change_and_falls_again() {
    let scenario = Scenario::load(
        "scenarios/gridworld-drift.toml".as_ref(),
        &Overrides {
            agents: Some(vec![2]),
            reps: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    let records = run_scenario(&scenario, &RunOptions::default(), &mut ())
        .unwrap()
        .records;
    let global = |trial: u64| {
        let xs: Vec<f64> = records
            .iter()
            .filter(|r| r.trial == trial)
            .map(|r| r.global_model_kl.unwrap())
            .collect();
        xs.iter().sum::<f64>() / xs.len() as f64
    };
    for (change, next) in [(100, 200), (200, 300), (300, 600)] {
        let before = global(change);
        let after = global(change + 5);
        assert!(
            after > before + 1.0,
            "change at {change}: {before} → {after}"
        );
        assert!(global(next) < before, "no recovery after {change}");
    }
}
