//! A task of the user's own runs through the library's run and sweep with
//! the outputs of a shipped scenario, and the builder checks what a
//! scenario file would be checked for.

use parbayes::env::{Step, Task};
use parbayes::model::{Known, Shape};
use parbayes::report::{ResultsDir, run_in_folder, sweep_in_folder};
use parbayes::share::{ShareRule, Sharing};
use parbayes::{AgentConfig, Error, RunOptions, Scenario};
use rand::{Rng, RngExt};

/// Two coins; heads pays 1. With `truth`, it tells the metrics its rates.
#[derive(Debug, Clone)]
struct Coins {
    heads: [f64; 2],
    truth: bool,
}

impl Task for Coins {
    fn kind(&self) -> &str {
        "coins"
    }

    fn shape(&self) -> Shape {
        Shape {
            states: 1,
            actions: 2,
            outcomes: 2,
        }
    }

    fn known(&self, _state: usize, _action: usize, outcome: usize) -> Known {
        Known {
            next: 0,
            reward: outcome as f64,
            terminal: false,
        }
    }

    fn step<R: Rng + ?Sized>(&self, _state: usize, coin: usize, rng: &mut R) -> Step {
        let heads = rng.random::<f64>() < self.heads[coin];
        Step {
            outcome: usize::from(heads),
            next: 0,
            reward: f64::from(u8::from(heads)),
            terminal: false,
        }
    }

    fn true_row_into(&self, coin: usize, out: &mut [f64]) -> bool {
        out.copy_from_slice(&[1.0 - self.heads[coin], self.heads[coin]]);
        self.truth
    }

    fn expected_reward(&self, _state: usize, coin: usize) -> Option<f64> {
        self.truth.then_some(self.heads[coin])
    }

    fn best_expected_reward(&self, _state: usize) -> Option<f64> {
        self.truth.then_some(self.heads[0].max(self.heads[1]))
    }
}

fn coins(truth: bool) -> Scenario<Coins> {
    Scenario::builder(
        "coins",
        Coins {
            heads: [0.3, 0.6],
            truth,
        },
    )
    .agent(
        AgentConfig::builder()
            .share(ShareRule::Periodic(10))
            .build()
            .unwrap(),
    )
    .agents([1, 4])
    .trials(300)
    .reps(3)
    .record_every(10)
    .build()
    .unwrap()
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn a_users_task_runs_into_a_results_folder_like_a_shipped_one() {
    let out = tempfile::tempdir().unwrap();
    let dir = ResultsDir::create(&out.path().join("coins")).unwrap();
    let summary = run_in_folder(&coins(true), &RunOptions::default(), dir, None, &mut ()).unwrap();
    let folder = out.path().join("coins");
    // 2 agent counts × 3 repetitions × 30 records, and a header.
    assert_eq!(
        read(&folder.join("trials.csv")).lines().count(),
        1 + 2 * 3 * 30
    );
    let json: serde_json::Value =
        serde_json::from_str(&read(&folder.join("summary.json"))).unwrap();
    assert_eq!(json["task"], "coins");
    assert!(read(&folder.join("curves.svg")).starts_with("<svg"));
    // Sharing helps: four learners regret less than one.
    let regret = |n: usize| summary.results[n].final_.regret_per_agent;
    assert!(regret(1) < regret(0), "{} vs {}", regret(1), regret(0));
    assert!(summary.results[0].final_.model_kl > 0.0);

    let dir = ResultsDir::create(&out.path().join("sweep")).unwrap();
    let rules = [ShareRule::Never, ShareRule::Periodic(10), ShareRule::Always].map(Sharing::from);
    let sweep = sweep_in_folder(
        &coins(true),
        &[],
        &rules,
        &RunOptions::default(),
        dir,
        &mut (),
    )
    .unwrap();
    assert_eq!(sweep.rows.len(), 6);
    assert_eq!(sweep.error, "regret_per_agent");
    let folder = out.path().join("sweep");
    assert_eq!(read(&folder.join("sweep.csv")).lines().count(), 1 + 6);
    assert!(read(&folder.join("pareto.svg")).starts_with("<svg"));
}

#[test]
fn metrics_a_task_cannot_know_are_left_empty_not_zero() {
    let out = tempfile::tempdir().unwrap();
    let dir = ResultsDir::create(&out.path().join("blind")).unwrap();
    run_in_folder(&coins(false), &RunOptions::default(), dir, None, &mut ()).unwrap();
    let csv = read(&out.path().join("blind").join("trials.csv"));
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let model_kl = header.iter().position(|h| *h == "model_kl").unwrap();
    for line in csv.lines().skip(1) {
        assert_eq!(line.split(',').nth(model_kl), Some(""), "{line}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&read(&out.path().join("blind").join("summary.json"))).unwrap();
    assert!(json["results"][0]["final"]["model_kl"].is_null());
}

#[test]
fn the_builder_refuses_what_a_scenario_file_would() {
    let task = Coins {
        heads: [0.3, 0.6],
        truth: true,
    };
    let field = |b: parbayes::scenario::ScenarioBuilder<Coins>| match b.build() {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let b = || Scenario::builder("coins", task.clone());
    assert_eq!(field(b().trials(0)), "run.trials");
    assert_eq!(field(b().steps_per_trial(0)), "run.steps_per_trial");
    assert_eq!(field(b().agents([])), "run.agents");
    assert_eq!(field(b().agents([0])), "run.agents");
    assert_eq!(field(b().reps(0)), "run.reps");
    assert_eq!(field(b().fault_kill(1.5)), "run.fault_kill");
    assert_eq!(field(b().broadcast_every(0)), "share.broadcast_every");
    assert_eq!(field(b().record_every(0)), "metrics.record_every");
    assert_eq!(field(b().eval_every(5)), "metrics.eval_every");
    assert_eq!(field(b().target_model_kl(-1.0)), "metrics.target_model_kl");
    assert_eq!(
        field(Scenario::builder("../up", task.clone())),
        "name",
        "a name that leaves the results folder"
    );
    let ucb = AgentConfig::builder()
        .policy(parbayes::policy::Policy::BayesUcb)
        .build()
        .unwrap();
    assert!(
        b().agent(ucb).build().is_ok(),
        "two coins paying 0 and 1 are a Bernoulli bandit"
    );
}
