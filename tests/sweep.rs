//! A sweep's counts are the aggregator's own, and its accuracy gain is the
//! stated ratio.

use parbayes::learner::Learner;
use parbayes::share::{Aggregator, OthersUpdate, ShareRule, Sharing, Traffic};
use parbayes::sweep::run_sweep;
use parbayes::{Overrides, RunOptions, Scenario};

/// The aggregator's traffic after a plain loop over the core: every learner
/// takes a trial, the aggregator folds their shares in id order and answers.
fn core_traffic(scenario: &Scenario, sharing: Sharing, n: u32) -> Traffic {
    let config = scenario.learner.with_sharing(sharing).unwrap();
    let mut learners: Vec<Learner> = (0..n)
        .map(|i| Learner::new(&config, scenario.run.seed, 0, i))
        .collect();
    let mut agg =
        Aggregator::new(config.structure().shape(), n as usize).with_downlink(sharing.downlink);
    let mut pending: Vec<OthersUpdate> = Vec::new();
    for _ in 0..scenario.run.trials {
        for u in pending.drain(..) {
            learners[u.learner as usize].apply(&u);
        }
        for l in &mut learners {
            if let Some(m) = l.trial(scenario.run.steps_per_trial) {
                agg.receive(&m).unwrap();
            }
        }
        pending = agg.answer_all();
    }
    agg.traffic()
}

#[test]
fn sweep_counts_equal_the_aggregators_counters_and_gains_are_the_ratio() {
    let scenario = Scenario::load(
        "scenarios/bandit-news.toml".as_ref(),
        &Overrides {
            agents: Some(vec![4]),
            reps: Some(1),
            trials: Some(400),
            ..Default::default()
        },
    )
    .unwrap();
    let rules = [
        ShareRule::Never.into(),
        ShareRule::Kl(0.0001).into(),
        "periodic:10/doubling:0.5".parse().unwrap(),
        ShareRule::Always.into(),
    ];
    let (sweep, _) = run_sweep(&scenario, &[], &rules, &RunOptions::default(), &mut ()).unwrap();
    assert_eq!(sweep.rows.len(), 4);
    for (row, rule) in sweep.rows.iter().zip(rules) {
        assert_eq!(row.share, rule.to_string());
        let t = core_traffic(&scenario, rule, 4);
        assert_eq!(row.messages_up, t.messages_up as f64, "{rule}");
        assert_eq!(row.messages_down, t.messages_down as f64, "{rule}");
        assert_eq!(row.rows_up, t.rows_up as f64, "{rule}");
        assert_eq!(row.rows_down, t.rows_down as f64, "{rule}");
        assert_eq!(row.bytes_up, t.bytes_up as f64, "{rule}");
        assert_eq!(row.bytes_down, t.bytes_down as f64, "{rule}");
    }
    let (never, kl, gated, always) = (
        &sweep.rows[0],
        &sweep.rows[1],
        &sweep.rows[2],
        &sweep.rows[3],
    );
    assert!(gated.rows_down < always.rows_down / 4.0);
    assert_eq!(never.bytes_up + never.bytes_down, 0.0);
    assert!(always.messages_up > kl.messages_up);
    let regret = |r: &parbayes::sweep::SweepRow| r.regret_per_agent.unwrap();
    let expected = (regret(never) - regret(kl)) / (regret(never) - regret(always));
    assert!((kl.accuracy_gain.unwrap() - expected).abs() < 1e-12);
    assert_eq!(never.accuracy_gain, Some(0.0));
    assert_eq!(always.accuracy_gain, Some(1.0));
}
