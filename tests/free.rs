//! The async (free-running) mode: it completes, counts every message, learns
//! like lockstep within noise, and refuses what it cannot do.

use parbayes::record::TrialRecord;
use parbayes::runtime::Mode;
use parbayes::share::ShareRule;
use parbayes::{Overrides, RunOptions, Scenario, run_scenario};

fn news(agents: u32, share: ShareRule, reps: u32) -> Scenario {
    Scenario::load(
        "scenarios/bandit-news.toml".as_ref(),
        &Overrides {
            agents: Some(vec![agents]),
            reps: Some(reps),
            trials: Some(2000),
            share: Some(share.into()),
            ..Default::default()
        },
    )
    .unwrap()
}

fn finals(records: &[TrialRecord]) -> Vec<&TrialRecord> {
    let last = records.iter().map(|r| r.trial).max().unwrap();
    records.iter().filter(|r| r.trial == last).collect()
}

fn run(scenario: &Scenario, mode: Mode) -> Vec<TrialRecord> {
    let options = RunOptions {
        mode,
        ..RunOptions::default()
    };
    run_scenario(scenario, &options, &mut ()).unwrap().records
}

#[test]
fn async_counts_every_message_and_records_every_trial_in_order() {
    let scenario = news(40, ShareRule::Always, 1);
    let records = run(&scenario, Mode::Async);
    let trials: Vec<u64> = records.iter().map(|r| r.trial).collect();
    let expected: Vec<u64> = (1..=2000).filter(|t| t % 50 == 0).collect();
    assert_eq!(trials, expected);
    let last = records.last().unwrap();
    // `always` sends one message per learner per trial, whatever the timing.
    assert_eq!(last.messages_up, 40 * 2000);
    assert_eq!(last.rows_up, 40 * 2000);
    assert!(last.messages_down > 0 && last.bytes_down > 0);
    assert_eq!(last.step, 2000);
}

#[test]
fn async_learns_like_lockstep_within_noise() {
    // 40 learners × 6 repetitions: mean regret per agent after 2000 pulls.
    let scenario = news(40, ShareRule::Kl(0.0001), 6);
    let mean_se = |records: &[TrialRecord]| {
        let xs: Vec<f64> = finals(records)
            .iter()
            .map(|r| r.regret_per_agent.unwrap())
            .collect();
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
        (m, (var / xs.len() as f64).sqrt())
    };
    let (lock, lock_se) = mean_se(&run(&scenario, Mode::Lockstep));
    let (free, free_se) = mean_se(&run(&scenario, Mode::Async));
    let never = mean_se(&run(&news(40, ShareRule::Never, 6), Mode::Lockstep)).0;
    // Within 4 combined standard errors, and both far below independent learners.
    let se = (lock_se.powi(2) + free_se.powi(2)).sqrt();
    assert!(
        (lock - free).abs() < 4.0 * se + 1.0,
        "{lock} ± {lock_se} vs {free} ± {free_se}"
    );
    eprintln!("lockstep {lock} ± {lock_se}, async {free} ± {free_se}, never {never}");
    assert!(
        free < 0.8 * never && lock < 0.8 * never,
        "{free} vs never {never}"
    );
}

#[test]
fn async_refuses_forgetting() {
    let scenario = Scenario::parse(
        "[task]\nkind = \"bandit\"\narms = [0.1, 0.2]\n[learner]\nforgetting = 0.99\n[run]\nagents = [2]\ntrials = 10\n",
        "forget.toml",
        "forget",
        &Overrides::default(),
    )
    .unwrap();
    let options = RunOptions {
        mode: Mode::Async,
        ..RunOptions::default()
    };
    let err = run_scenario(&scenario, &options, &mut ()).unwrap_err();
    assert!(
        err.is_bad_input() && err.to_string().contains("learner.forgetting"),
        "{err}"
    );
}
