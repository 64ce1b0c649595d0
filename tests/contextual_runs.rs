//! Contextual scenarios through the same runtime as the tabular ones:
//! reproducible on any split, exactly resumable, fault-tolerant, and the
//! aggregator's sums are the learners' evidence.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use common::StopAt;
use parbayes::env::{ContextualEnvironment, ContextualTask};
use parbayes::learner::{Cohort, SimConfig, SimLearner};
use parbayes::runtime::{Checkpoints, Continuity};
use parbayes::scenario::AnyScenario;
use parbayes::share::{Family, ShareRule};
use parbayes::{Error, Overrides, RunOptions, Scenario, run_scenario};

fn contextual(name: &str, overrides: &Overrides) -> Scenario<ContextualEnvironment> {
    match AnyScenario::load(name.as_ref(), overrides).unwrap() {
        AnyScenario::Contextual(s) => s,
        other => panic!("{name} is not contextual: {other:?}"),
    }
}

fn small(agents: Vec<u32>, trials: u64) -> Overrides {
    Overrides {
        agents: Some(agents),
        trials: Some(trials),
        reps: Some(2),
        ..Overrides::default()
    }
}

#[test]
fn a_contextual_run_has_the_same_records_on_any_split_and_thread_count() {
    let s = contextual("linear", &small(vec![1, 7], 60));
    let one = run_scenario(&s, &RunOptions::default(), &mut ()).unwrap();
    let split = RunOptions {
        cohorts: 3,
        threads: 1,
        ..RunOptions::default()
    };
    let other = run_scenario(&s, &split, &mut ()).unwrap();
    assert_eq!(one.records, other.records);
    // Learning happened, and the records are not a constant.
    let last = one.records.iter().rfind(|r| r.agents == 7).unwrap();
    assert!(last.model_kl.unwrap() < one.records[0].model_kl.unwrap());
    let reseeded = contextual(
        "linear",
        &Overrides {
            seed: Some(43),
            ..small(vec![1, 7], 60)
        },
    );
    let moved = run_scenario(&reseeded, &RunOptions::default(), &mut ()).unwrap();
    assert_ne!(one.records, moved.records);
}

/// Stops a run at trial `at` with checkpoints every `every` trials, resumes
/// it on another split, and compares with the run never stopped.
fn stop_and_resume(s: &Scenario<ContextualEnvironment>, every: u64, at: u64) {
    let whole = run_scenario(s, &RunOptions::default(), &mut ())
        .unwrap()
        .records;
    let dir = tempfile::tempdir().unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let checkpoints = Checkpoints {
        dir: Some(dir.path().to_path_buf()),
        every: Some(every),
        ..Checkpoints::default()
    };
    let stopping = RunOptions {
        continuity: Continuity {
            checkpoints: checkpoints.clone(),
            stop: Some(flag.clone()),
        },
        ..RunOptions::default()
    };
    let err = run_scenario(s, &stopping, &mut StopAt { at, flag }).unwrap_err();
    assert!(matches!(err, Error::Interrupted), "{err:?}");
    let resuming = RunOptions {
        cohorts: 3,
        continuity: Continuity {
            checkpoints: Checkpoints {
                resume: true,
                ..checkpoints
            },
            stop: None,
        },
        ..RunOptions::default()
    };
    let resumed = run_scenario(s, &resuming, &mut ()).unwrap().records;
    assert_eq!(whole, resumed);
}

#[test]
fn a_stopped_linear_run_resumes_exactly() {
    stop_and_resume(&contextual("linear", &small(vec![1, 5], 80)), 10, 35);
}

#[test]
fn a_stopped_dataset_run_resumes_exactly_mid_pass() {
    // Each learner's shuffled order through the digits is part of its state.
    let s = contextual(
        "digits",
        &Overrides {
            agents: Some(vec![4]),
            reps: Some(1),
            ..Overrides::default()
        },
    );
    stop_and_resume(&s, 20, 70);
}

#[test]
fn injected_faults_are_reproducible_and_cost_what_was_not_shared() {
    let faults = Overrides {
        fault_kill: Some(0.05),
        ..small(vec![6], 60)
    };
    let s = contextual("linear", &faults);
    let a = run_scenario(&s, &RunOptions::default(), &mut ()).unwrap();
    let b = run_scenario(&s, &RunOptions::default(), &mut ()).unwrap();
    assert_eq!(a.records, b.records);
    let healthy = run_scenario(
        &contextual("linear", &small(vec![6], 60)),
        &RunOptions::default(),
        &mut (),
    )
    .unwrap();
    assert_ne!(a.records, healthy.records);
    // Recovered learners keep learning: the run still ends far below its
    // start.
    let (first, last) = (
        &a.records[0],
        a.records.iter().rfind(|r| r.rep == 0).unwrap(),
    );
    assert!(last.model_kl.unwrap() < 0.2 * first.model_kl.unwrap());
}

#[test]
fn with_every_key_sent_the_global_evidence_is_the_sum_of_the_learners() {
    let s = contextual("linear", &Overrides::default());
    let config = s.learner().with_sharing(ShareRule::Always.into()).unwrap();
    let n = 5;
    let mut cohort = Cohort::new(&config, 3, 0, 0..n);
    let mut aggregator = config.aggregator(n as usize);
    let mut updates = Vec::new();
    for _ in 0..40 {
        let trial = cohort.trial(&updates, 7, false, false);
        // Duplicates are harmless: the second copy is stale.
        for m in &trial.shares {
            aggregator.receive(m).unwrap();
            assert!(aggregator.receive(m).is_err());
        }
        updates = aggregator.answer_all();
    }
    let family = config.agent().family().clone();
    for key in 0..config.agent().arms() {
        let mut sum = vec![0.0; family.width()];
        for l in cohort.learners() {
            if let Some(own) = l.agent().ledger().own().row(key) {
                sum.iter_mut().zip(own).for_each(|(s, o)| *s += o);
            }
        }
        let global = aggregator.global().row(key).unwrap();
        // The aggregator keeps its sum by replacing each learner's part
        // (global += new − old), which rounds differently from a fresh sum
        // of non-integer statistics: equal to 1e-9 relative; the counts n
        // are whole numbers and equal exactly.
        for (g, s) in global.iter().zip(&sum) {
            assert!((g - s).abs() <= 1e-9 * s.abs().max(1.0), "{g} vs {s}");
        }
        assert_eq!(family.mass(global), family.mass(&sum));
    }
    let observed: f64 = (0..config.agent().arms())
        .map(|k| family.mass(aggregator.global().row(k).unwrap()))
        .sum();
    assert_eq!(observed, (40 * 7 * n) as f64);
    // Every learner took every step the sums count.
    for l in cohort.learners() {
        assert_eq!(l.stats().steps, 280);
    }
}

#[test]
fn the_linear_model_error_is_the_expected_kl_over_contexts() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    let s = contextual("linear", &Overrides::default());
    let ContextualEnvironment::Linear(task) = s.learner().task() else {
        panic!("a linear task");
    };
    let sd = 0.5;
    // Some posterior means: the truth plus an offset.
    let means: Vec<Vec<f64>> = (0..task.arms())
        .map(|k| {
            task.theta(k)
                .iter()
                .enumerate()
                .map(|(i, t)| t + 0.1 * ((i + k) % 3) as f64 - 0.1)
                .collect()
        })
        .collect();
    let closed = ContextualTask::model_error(task, &means).unwrap();
    // Monte Carlo: E_x Σ_k KL(N(xᵀθ_k, σ²) ‖ N(xᵀμ_k, σ²)), x ~ N(0, I).
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
    let draws = 200_000;
    let mut total = 0.0;
    let mut x = vec![0.0; task.dim()];
    for _ in 0..draws {
        x.iter_mut()
            .for_each(|v| *v = StandardNormal.sample(&mut rng));
        for (k, mu) in means.iter().enumerate() {
            let gap: f64 = (task.theta(k).iter().zip(mu))
                .zip(&x)
                .map(|((t, m), x)| (t - m) * x)
                .sum();
            total += gap * gap / (2.0 * sd * sd);
        }
    }
    let mc = total / draws as f64;
    // The estimate's standard error is below 0.5 % of it at this size.
    assert!((mc - closed).abs() < 0.01 * closed, "{mc} vs {closed}");
}

#[test]
fn a_learner_saved_and_restored_continues_draw_for_draw() {
    let s = contextual("digits", &Overrides::default());
    let config = s.learner();
    let mut a = config.learner(1, 0, 2);
    a.trial(500);
    let state = serde_json::to_string(&a.save()).unwrap();
    let mut b = config
        .restore(serde_json::from_str(&state).unwrap())
        .unwrap();
    for _ in 0..5 {
        assert_eq!(a.trial(400), b.trial(400));
        assert_eq!(a.stats(), b.stats());
    }
    // A state from another dataset's stream does not fit.
    let mut other: serde_json::Value = serde_json::from_str(&state).unwrap();
    other["task"] = serde_json::json!([0, 0, 1, 2]);
    let refused = config.restore(serde_json::from_value(other).unwrap());
    assert!(refused.is_err());
}

/// A linear scenario in `dir` whose contexts come from `contexts.csv`.
fn with_context_file(dir: &std::path::Path, csv: &str) -> parbayes::Result<AnyScenario> {
    std::fs::write(dir.join("contexts.csv"), csv).unwrap();
    let scenario = "[task]\nkind = \"linear\"\narms = 3\ncontexts = \"contexts.csv\"\n\
                    [run]\nagents = [1, 3]\ntrials = 40\nsteps_per_trial = 5\n";
    let path = dir.join("ctx.toml");
    std::fs::write(&path, scenario).unwrap();
    AnyScenario::load(&path, &Overrides::default())
}

#[test]
fn contexts_from_a_file_are_streamed_resumed_and_measured_against_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    // Rows ±√3 e_i: their second moment is I, as for x ~ N(0, I).
    let r = 3f64.sqrt();
    let mut csv = "a,b,c\n".to_string();
    for i in 0..3 {
        for sign in [1.0, -1.0] {
            let mut row = [0.0; 3];
            row[i] = sign * r;
            csv += &format!("{},{},{}\n", row[0], row[1], row[2]);
        }
    }
    let AnyScenario::Contextual(s) = with_context_file(dir.path(), &csv).unwrap() else {
        panic!("contextual");
    };
    let ContextualEnvironment::Linear(task) = s.learner().task() else {
        panic!("linear");
    };
    // Every context is a row of the file, each row once per pass.
    let mut stream = task.clone();
    let mut rng = parbayes::rng::learner_rng(1, 0, 0);
    let mut x = [0.0; 3];
    let mut seen = Vec::new();
    for _ in 0..6 {
        stream.next_context(&mut rng, &mut x);
        seen.push(x.map(|v| (v * 1e6).round() as i64));
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 6);
    // The model error over the file's rows equals the N(0, I) closed form
    // when the rows' second moment is I.
    let gaussian =
        parbayes::env::LinearBandit::new((0..3).map(|k| task.theta(k).to_vec()).collect(), 0.5)
            .unwrap();
    let means: Vec<Vec<f64>> = (0..3).map(|k| vec![0.1 * k as f64; 3]).collect();
    let (a, b) = (
        ContextualTask::model_error(task, &means).unwrap(),
        ContextualTask::model_error(&gaussian, &means).unwrap(),
    );
    assert!((a - b).abs() < 1e-12 * b, "{a} vs {b}");
    // A stopped run resumes exactly: the stream's order is saved.
    stop_and_resume(&s, 10, 17);
    // A malformed file is refused naming the row and the column.
    let err = with_context_file(dir.path(), "a,b\n1,2\n3,x\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("contexts.csv") && text.contains("row 3, column `b`"),
        "{text}"
    );
}
