//! Stop and resume: a lockstep run stopped at some trial and resumed from
//! its checkpoints gives exactly the records of a run never stopped.

mod common;

use common::StopAt;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use parbayes::record::TrialRecord;
use parbayes::runtime::{Checkpoints, Continuity};
use parbayes::{Error, Observe, Overrides, RunOptions, Scenario, run_scenario};

/// Options that write checkpoints into `dir` every `every` trials (and when
/// `stop` is raised).
fn checkpointing(dir: &Path, every: Option<u64>, stop: Option<Arc<AtomicBool>>) -> RunOptions {
    RunOptions {
        continuity: Continuity {
            checkpoints: Checkpoints {
                dir: Some(dir.to_path_buf()),
                every,
                ..Checkpoints::default()
            },
            stop,
        },
        ..RunOptions::default()
    }
}

/// Options that continue from the checkpoints in `dir`.
fn resuming(dir: &Path) -> RunOptions {
    let mut options = checkpointing(dir, None, None);
    options.continuity.checkpoints.resume = true;
    options
}

fn stop_and_resume(scenario: &Scenario, every: u64, at: u64) {
    let whole = run_scenario(scenario, &RunOptions::default(), &mut ())
        .unwrap()
        .records;

    let dir = tempfile::tempdir().unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let stopping = checkpointing(dir.path(), Some(every), Some(flag.clone()));
    let mut stop = StopAt { at, flag };
    let err = run_scenario(scenario, &stopping, &mut stop).unwrap_err();
    assert!(matches!(err, Error::Interrupted), "{err:?}");

    let saved: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".msgpack"))
        .collect();
    assert!(!saved.is_empty());
    // At least one experiment was stopped part-way.
    let reader = resuming(dir.path()).continuity.checkpoints;
    let part_way = scenario.run().agents().iter().any(|&a| {
        (0..scenario.run().reps()).any(|rep| {
            reader
                .read(a, rep)
                .unwrap()
                .is_some_and(|s| !s.finished && s.trial < scenario.run().trials())
        })
    });
    assert!(part_way, "{saved:?}");
    // A copy of the checkpoints and their records as the stop left them.
    let copy = tempfile::tempdir().unwrap();
    for name in &saved {
        let records = name.replace(".msgpack", ".records");
        for file in [name, &records] {
            std::fs::copy(dir.path().join(file), copy.path().join(file)).unwrap();
        }
    }

    let again = RunOptions {
        // Another split of learners into actors: results must not care.
        cohorts: 3,
        ..resuming(dir.path())
    };
    let resumed = run_scenario(scenario, &again, &mut ()).unwrap().records;
    assert_eq!(whole, resumed);

    // Proof that the checkpoints were used: under another seed, experiments
    // with a checkpoint still continue the first run's learners exactly;
    // the others start afresh and differ.
    let reseeded = scenario
        .to_builder()
        .seed(scenario.run().seed() + 1)
        .build()
        .unwrap();
    let from_copy = resuming(copy.path());
    let mixed = run_scenario(&reseeded, &from_copy, &mut ())
        .unwrap()
        .records;
    let of = |records: &[TrialRecord], agents: u32, rep: u32| -> Vec<TrialRecord> {
        records
            .iter()
            .filter(|r| r.agents == agents && r.rep == rep)
            .cloned()
            .collect()
    };
    for &agents in scenario.run().agents() {
        for rep in 0..scenario.run().reps() {
            let name = format!("agents-{agents}-rep-{rep}.msgpack");
            let same = of(&whole, agents, rep) == of(&mixed, agents, rep);
            assert_eq!(same, saved.contains(&name), "{name}: {saved:?}");
        }
    }
}

#[test]
fn a_stopped_and_resumed_bandit_run_equals_an_uninterrupted_one() {
    let scenario = Scenario::load(
        "scenarios/bandit-news-drift.toml".as_ref(),
        &Overrides {
            agents: Some(vec![1, 4]),
            reps: Some(2),
            trials: Some(9000),
            ..Default::default()
        },
    )
    .unwrap();
    // Drift at pull 8000 and forgetting: every piece of state matters.
    stop_and_resume(&scenario, 1000, 4200);
}

#[test]
fn a_stopped_and_resumed_gridworld_run_equals_an_uninterrupted_one() {
    let scenario = Scenario::load(
        "scenarios/gridworld.toml".as_ref(),
        &Overrides {
            agents: Some(vec![3]),
            reps: Some(2),
            trials: Some(60),
            ..Default::default()
        },
    )
    .unwrap();
    stop_and_resume(&scenario, 10, 27);
}

/// Sends on `tx` at the first record at or after trial `at`.
struct SignalAt {
    at: u64,
    tx: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Observe for SignalAt {
    fn on_record(&mut self, record: &TrialRecord) -> parbayes::Result<()> {
        if record.trial >= self.at
            && let Some(tx) = self.tx.take()
        {
            let _ = tx.send(());
        }
        Ok(())
    }
}

#[test]
fn a_shutdown_future_stops_an_async_caller_s_run_which_then_resumes_exactly() {
    let overrides = Overrides {
        agents: Some(vec![2, 3]),
        reps: Some(1),
        trials: Some(3000),
        ..Default::default()
    };
    let scenario = Scenario::load("bandit-news".as_ref(), &overrides).unwrap();
    let whole = run_scenario(&scenario, &RunOptions::default(), &mut ())
        .unwrap()
        .records;
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        threads: 1,
        ..checkpointing(dir.path(), None, None)
    };
    // The caller already runs tokio; the run stops when its future says so.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut signal = SignalAt {
        at: 1000,
        tx: Some(tx),
    };
    let stopped = runtime.block_on(parbayes::runtime::run_scenario_until(
        &scenario,
        &options,
        &mut signal,
        async {
            let _ = rx.await;
        },
    ));
    assert!(matches!(stopped, Err(Error::Interrupted)), "{stopped:?}");
    let again = resuming(dir.path());
    let resumed = runtime
        .block_on(parbayes::run_scenario_async(&scenario, &again, &mut ()))
        .unwrap()
        .records;
    assert_eq!(whole, resumed);
}

#[test]
fn a_checkpoint_does_not_grow_with_the_records_and_a_cut_append_is_dropped() {
    let text = r#"
        [task]
        kind = "bandit"
        arms = [0.1, 0.3, 0.5]
        [run]
        agents = [2]
        trials = 4000
        [metrics]
        record_every = 1
    "#;
    let scenario = Scenario::parse(text, "many.toml", "many", &Overrides::default()).unwrap();
    let whole = run_scenario(&scenario, &RunOptions::default(), &mut ())
        .unwrap()
        .records;
    let dir = tempfile::tempdir().unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let options = checkpointing(dir.path(), Some(500), Some(flag.clone()));
    let mut stop = StopAt { at: 3000, flag };
    assert!(matches!(
        run_scenario(&scenario, &options, &mut stop),
        Err(Error::Interrupted)
    ));
    // Three thousand records sit in the records file, not in the checkpoint,
    // which holds two learners of three arms and the aggregator.
    let size = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().len();
    assert!(size("agents-2-rep-0.records") > 3000 * 100);
    assert!(
        size("agents-2-rep-0.msgpack") < 20_000,
        "{}",
        size("agents-2-rep-0.msgpack")
    );
    // An append cut short by a crash is dropped on resume.
    let mut records = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("agents-2-rep-0.records"))
        .unwrap();
    std::io::Write::write_all(&mut records, b"\x85half a record").unwrap();
    let again = resuming(dir.path());
    let resumed = run_scenario(&scenario, &again, &mut ()).unwrap().records;
    assert_eq!(whole, resumed);
    // The finished experiment's records file holds exactly its records.
    let replayed = run_scenario(&scenario, &again, &mut ()).unwrap().records;
    assert_eq!(whole, replayed);
}

/// When every learner is sure to share nothing for a while (the rule
/// `never`, or the step-counting `periodic` and `ramp` between sends), the
/// lockstep runtime runs many trials per message, records and all; a
/// checkpoint due every trial forces one trial per message. Both give the
/// same records, bit for bit: on one-step trials, with the aggregator
/// answering on its own clock between sends (also in a recorded trial),
/// and on episodes with drift, forgetting and policy evaluation.
#[test]
fn trials_run_in_batches_give_exactly_the_records_of_one_trial_at_a_time() {
    let cases = [
        ("bandit-news", "never", 1, 300, 2),
        ("bandit-news", "ramp:100/doubling:0.03", 1, 300, 2),
        ("bandit-news", "periodic:5", 3, 300, 1),
        // Sent in trial 148, answered in trial 150, which is recorded.
        ("bandit-news", "periodic:37", 3, 300, 1),
        ("gridworld-drift", "never", 50, 301, 1),
        ("gridworld-drift", "periodic:120", 50, 301, 1),
    ];
    for (name, share, broadcast_every, trials, reps) in cases {
        let overrides = Overrides {
            agents: Some(vec![1, 3]),
            reps: Some(reps),
            trials: Some(trials),
            share: Some(share.parse().unwrap()),
            ..Default::default()
        };
        let scenario = Scenario::load(name.as_ref(), &overrides)
            .unwrap()
            .to_builder()
            .broadcast_every(broadcast_every)
            .build()
            .unwrap();
        let name = format!("{name} {share}");
        let batched = run_scenario(&scenario, &RunOptions::default(), &mut ())
            .unwrap()
            .records;
        let dir = tempfile::tempdir().unwrap();
        let one_by_one = run_scenario(
            &scenario,
            &checkpointing(dir.path(), Some(1), None),
            &mut (),
        )
        .unwrap()
        .records;
        assert_eq!(batched.len(), one_by_one.len(), "{name}");
        assert!(!batched.is_empty());
        for (a, b) in batched.iter().zip(&one_by_one) {
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{name}");
        }
    }
}
