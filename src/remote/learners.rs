//! A learner process: one block of a simulated run's learners, running
//! free, syncing with a remote aggregator after every trial.

use std::ops::Range;
use std::time::Duration;

use super::client::AggregatorClient;
use super::wire::{Progress, RunId, Totals};
use crate::env::Task;
use crate::error::{Error, Result};
use crate::learner::{Cohort, LearnerStats};
use crate::report::fingerprint;
use crate::scenario::Scenario;
use crate::share::Recovery;

/// The run experiment (`agents`, `rep`) of `scenario` is, for the wire: two
/// processes agree on it only if their scenarios agree on everything that
/// shapes the results.
pub fn run_id<T: Task>(scenario: &Scenario<T>, agents: u32, rep: u32) -> RunId {
    let mut one = scenario.clone();
    // The experiment's own size and repetition, not the scenario's lists.
    one.run.agents = vec![agents];
    one.run.reps = 1;
    RunId::new(
        fingerprint(&one),
        scenario.learner.structure().shape(),
        agents,
        rep,
    )
}

/// What a learner process did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// The trial it started from (after a restart, the one after the last
    /// the aggregator heard of).
    pub first_trial: u64,
    /// Trials it ran.
    pub trials: u64,
    /// Syncs it made.
    pub syncs: u64,
}

/// Runs learners `ids` of experiment (`agents`, `rep`) of `scenario`, with
/// the aggregator at `addr`: joins (or rejoins, and rebuilds the learners
/// from the aggregator's record, continuing after the last trial it heard
/// of), then runs every trial, syncing after each.
///
/// A share travels with the progress it belongs to, so after a kill the
/// aggregator's record and the trial to resume from agree: what is lost is
/// what a learner had not yet shared, as with any crash.
pub async fn serve_learners<T: Task>(
    scenario: &Scenario<T>,
    addr: &str,
    agents: u32,
    rep: u32,
    ids: Range<u32>,
    patience: Duration,
) -> Result<Served> {
    if ids.is_empty() || ids.end > agents {
        return Err(Error::invalid(
            "command line",
            "--ids",
            format!(
                "{}..{}: must be a non-empty block within 0..{agents}",
                ids.start, ids.end
            ),
        ));
    }
    let plan = &scenario.run;
    let mut client =
        AggregatorClient::connect(addr, run_id(scenario, agents, rep), patience).await?;
    let joined = client.join(ids.clone()).await?;
    let mut cohort = Cohort::new(&scenario.learner, plan.seed, rep, ids.clone());
    let first_trial = joined.resume_after + 1;
    if !joined.recoveries.is_empty() {
        let rebuilt: Vec<(Recovery, LearnerStats)> = joined
            .recoveries
            .into_iter()
            .zip(
                joined
                    .stats
                    .into_iter()
                    .chain(std::iter::repeat(LearnerStats::default())),
            )
            .collect();
        cohort.recover(first_trial, &rebuilt);
        tracing::info!(
            start = ids.start,
            end = ids.end,
            first_trial,
            "rebuilt from the aggregator's record"
        );
    }
    let mut updates = Vec::new();
    let mut served = Served {
        first_trial,
        trials: 0,
        syncs: 0,
    };
    for trial in first_trial..=plan.trials {
        let (measure, evaluate) = scenario.metrics.due(trial, plan.trials);
        let done = cohort.trial_reporting(&updates, plan.steps_per_trial, measure, evaluate, true);
        let records = if measure {
            vec![(trial, done.metrics)]
        } else {
            Vec::new()
        };
        let progress = Progress {
            reached: trial,
            stats: done.stats.into_iter().map(Totals::from).collect(),
            records,
        };
        let synced = client.sync(done.shares, Some(progress)).await?;
        updates = synced.updates;
        if synced.restarted {
            // The aggregator restarted from an older snapshot: it hears every
            // learner's full counts again.
            tracing::info!(
                start = ids.start,
                end = ids.end,
                trial,
                "resending everything shared"
            );
            updates.extend(client.sync(cohort.resend(), None).await?.updates);
            served.syncs += 1;
        }
        served.trials += 1;
        served.syncs += 1;
    }
    Ok(served)
}
