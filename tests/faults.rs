//! Crash recovery: learners that crash are rebuilt from the aggregator's
//! record, the run completes, and the aggregator never loses or double
//! counts acknowledged evidence.

use parbayes::learner::{Cohort, crashed};
use parbayes::share::{Aggregator, OthersUpdate};
use parbayes::{Overrides, RunOptions, Scenario, run_scenario};

fn news(fault_kill: f64) -> Scenario {
    Scenario::load(
        "scenarios/bandit-news.toml".as_ref(),
        &Overrides {
            agents: Some(vec![8]),
            reps: Some(1),
            trials: Some(600),
            fault_kill: Some(fault_kill),
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn with_crashes_the_global_evidence_is_the_sum_of_what_each_learner_last_shared() {
    let scenario = news(0.1);
    let config = scenario.learner();
    let shape = config.structure().shape();
    let (seed, n) = (scenario.run().seed(), 8u32);
    let mut cohort = Cohort::new(config, seed, 0, 0..n);
    let mut agg = Aggregator::new(shape, n as usize).with_downlink(config.agent().downlink());
    let mut pending: Vec<OthersUpdate> = Vec::new();
    let mut crashes = 0;
    for trial in 1..=scenario.run().trials() {
        let victims = crashed(seed, 0, trial, n, scenario.run().fault_kill());
        crashes += victims.len();
        let recoveries: Vec<_> = victims
            .iter()
            .map(|&i| {
                (
                    agg.recovery(i).unwrap(),
                    cohort.learners()[i as usize].stats(),
                )
            })
            .collect();
        cohort.recover(trial, &recoveries);
        // A rebuilt learner's picture of the global estimate is exact.
        for (rec, _) in &recoveries {
            let l = &cohort.learners()[rec.learner as usize];
            let mut alpha = vec![0.0; shape.outcomes];
            for row in 0..shape.rows() {
                l.ledger().global_alpha_into(row, &mut alpha);
                let global = agg
                    .global()
                    .row(row)
                    .map_or(vec![0.0; shape.outcomes], <[f64]>::to_vec);
                for (a, g) in alpha.iter().zip(&global) {
                    assert_eq!(*a, config.agent().prior() + g);
                }
            }
        }
        let done = cohort.trial(&pending, 1, false, false);
        for m in &done.shares {
            agg.receive(m).unwrap();
        }
        pending = agg.answer_all();
        // Brute force: Σ over learners of what each last sent.
        for row in 0..shape.rows() {
            let mut sum = vec![0.0; shape.outcomes];
            for l in cohort.learners() {
                if let Some(sent) = l.ledger().sent().row(row) {
                    for (s, x) in sum.iter_mut().zip(sent) {
                        *s += x;
                    }
                }
            }
            let global = agg
                .global()
                .row(row)
                .map_or(vec![0.0; shape.outcomes], <[f64]>::to_vec);
            assert_eq!(global, sum, "trial {trial}, row {row}");
        }
    }
    // 8 learners × 600 trials × 0.1: about 480 crashes.
    assert!((400..560).contains(&crashes), "{crashes}");

    // The actor run does the same, crash for crash.
    let out = run_scenario(&scenario, &RunOptions::default(), &mut ()).unwrap();
    let last = out.records.last().unwrap();
    let regret = cohort
        .learners()
        .iter()
        .map(|l| l.stats().regret)
        .sum::<f64>()
        / n as f64;
    assert_eq!(last.regret_per_agent, Some(regret));
    assert_eq!(last.messages_down, agg.traffic().messages_down);
    assert_eq!(last.bytes_down, agg.traffic().bytes_down);
}

#[test]
fn crashes_cost_accuracy_but_sharing_keeps_most_of_it() {
    // Mean regret per agent over 4 repetitions (standard errors ≈ 0.5).
    let regret = |s: &Scenario| {
        let out = run_scenario(s, &RunOptions::default(), &mut ()).unwrap();
        let summary = parbayes::summary::Summary::new(s, &out);
        summary.results[0].final_.regret_per_agent
    };
    let with_reps = |s: Scenario| s.to_builder().reps(4).build().unwrap();
    // A crash every 100 pulls on average, against a send every 100 at most.
    let (none, some) = (
        regret(&with_reps(news(0.0))),
        regret(&with_reps(news(0.01))),
    );
    let never = with_reps(news(0.0));
    let learner = never
        .learner()
        .with_share(parbayes::share::ShareRule::Never);
    let never = never.with_learner(learner.unwrap());
    let alone = regret(&never);
    // A rebuilt learner keeps what it last sent, so crashes cost what it
    // had not sent yet; learners that lose that now and then still beat
    // learners that never share.
    assert!(
        none < some && some < alone,
        "p = 0: {none}, p = 0.01: {some}, never sharing: {alone}"
    );
}
