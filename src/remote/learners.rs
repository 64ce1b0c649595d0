//! A learner process: one block of a simulated run's learners, running
//! free, syncing with a remote aggregator after every trial.

use std::ops::Range;
use std::time::Duration;

use super::client::AggregatorClient;
use super::wire::{Progress, RunId, Synced, Totals};
use crate::error::RemoteError;
use crate::error::{Error, Result};
use crate::learner::{Cohort, LearnerMetrics, LearnerStats};
use crate::learner::{SimConfig, SimLearner, Workload};
use crate::report::fingerprint;
use crate::runtime::{Uplink, run_free_cohort};
use crate::scenario::Scenario;
use crate::share::{OthersUpdate, Recovery, ShareMessage};
use tokio::task::JoinHandle;

/// The run experiment (`agents`, `rep`) of `scenario` is, for the wire: two
/// processes agree on it only if their scenarios agree on everything that
/// shapes the results.
pub fn run_id<T: Workload>(scenario: &Scenario<T>, agents: u32, rep: u32) -> RunId {
    let mut one = scenario.clone();
    // The experiment's own size and repetition, not the scenario's lists.
    one.run.agents = vec![agents];
    one.run.reps = 1;
    RunId::new(fingerprint(&one), scenario.learner.shape(), agents, rep)
}

/// A block's syncs, one in flight at a time while its learners run on: the
/// shares and records of the trials run meanwhile go together in the next.
struct Pipe {
    /// The block's learner ids.
    ids: Range<u32>,
    /// How many trials past the last acknowledged one the learners may run.
    ahead: u64,
    /// The run's last trial.
    last_trial: u64,
    /// Syncs made.
    syncs: u64,
    /// Here unless a sync has it.
    client: Option<AggregatorClient>,
    in_flight: Option<JoinHandle<(AggregatorClient, Result<Synced>)>>,
    shares: Vec<ShareMessage>,
    records: Vec<(u64, Vec<LearnerMetrics>)>,
    /// The last trial an acknowledged sync reported.
    acknowledged: u64,
    /// The last trial a sync in flight or acknowledged reports.
    dispatched: u64,
    /// The aggregator restarted: the next sync resends everything shared.
    resend: bool,
}

impl Pipe {
    /// Sends what has gathered, with the block's progress through `reached`.
    fn dispatch<T: Workload>(&mut self, cohort: &mut Cohort<T::Config>, reached: u64) {
        let mut shares = std::mem::take(&mut self.shares);
        if std::mem::take(&mut self.resend) {
            // Newer than anything gathered, and full counts: after them.
            shares.extend(cohort.resend());
        }
        let progress = Progress {
            reached,
            stats: cohort
                .learners()
                .iter()
                .map(|l| Totals::from(l.stats()))
                .collect(),
            records: std::mem::take(&mut self.records),
        };
        let mut client = self.client.take().expect("no sync in flight");
        self.in_flight = Some(tokio::spawn(async move {
            let synced = client.sync(shares, Some(progress)).await;
            (client, synced)
        }));
        self.dispatched = reached;
    }

    /// Waits for the sync in flight; returns the others' counts it brought.
    async fn collect(&mut self, trial: u64) -> Result<Vec<OthersUpdate>> {
        let handle = self.in_flight.take().expect("a sync in flight");
        let (client, synced) = handle
            .await
            .map_err(|e| RemoteError::Failed(format!("a sync failed: {e}")))?;
        self.client = Some(client);
        let synced = synced?;
        self.syncs += 1;
        self.acknowledged = self.dispatched;
        if synced.restarted {
            // The aggregator restarted from an older snapshot: it hears every
            // learner's full counts again.
            tracing::info!(
                start = self.ids.start,
                end = self.ids.end,
                trial,
                "resending everything shared"
            );
            self.resend = true;
        }
        Ok(synced.updates)
    }
}

impl<T: Workload> Uplink<T> for Pipe {
    async fn after_trial(
        &mut self,
        cohort: &mut Cohort<T::Config>,
        trial: u64,
        shares: Vec<ShareMessage>,
        metrics: Option<Vec<LearnerMetrics>>,
    ) -> Result<Vec<OthersUpdate>> {
        self.shares.extend(shares);
        if let Some(metrics) = metrics {
            self.records.push((trial, metrics));
        }
        let mut updates = Vec::new();
        // Collect a sync that has come back, or wait for one too far behind.
        let behind = trial - self.acknowledged > self.ahead;
        if self
            .in_flight
            .as_ref()
            .is_some_and(|h| h.is_finished() || behind)
        {
            updates = self.collect(trial).await?;
        }
        if self.in_flight.is_none() {
            self.dispatch::<T>(cohort, trial);
            if self.ahead == 0 {
                updates = self.collect(trial).await?;
            }
        }
        // Let the sync in flight make progress on this thread too.
        tokio::task::yield_now().await;
        Ok(updates)
    }

    async fn finish(&mut self, cohort: &mut Cohort<T::Config>) -> Result<()> {
        loop {
            if self.in_flight.is_some() {
                self.collect(self.last_trial).await?;
            }
            if self.dispatched >= self.last_trial && self.shares.is_empty() && !self.resend {
                return Ok(());
            }
            self.dispatch::<T>(cohort, self.last_trial);
        }
    }
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
/// of), then runs every trial. With `ahead` 0 it syncs after every trial and
/// waits for the answer; otherwise one sync is in flight while the learners
/// run on, at most `ahead` trials past the last acknowledged one, and the
/// next carries everything gathered meanwhile: faster, with the others'
/// news up to `ahead` trials late.
///
/// A share travels with the progress it belongs to, so after a kill the
/// aggregator's record and the trial to resume from agree: what is lost is
/// what a learner had not yet shared, as with any crash.
pub async fn serve_learners<T: Workload>(
    scenario: &Scenario<T>,
    addr: &str,
    agents: u32,
    rep: u32,
    ids: Range<u32>,
    patience: Duration,
    ahead: u64,
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
    let mut pipe = Pipe {
        ids: ids.clone(),
        ahead,
        last_trial: plan.trials,
        syncs: 0,
        client: Some(client),
        in_flight: None,
        shares: Vec::new(),
        records: Vec::new(),
        acknowledged: first_trial - 1,
        dispatched: first_trial - 1,
        resend: false,
    };
    let trials = run_free_cohort(&mut cohort, scenario, first_trial, &mut pipe, None).await?;
    let served = Served {
        first_trial,
        trials,
        syncs: pipe.syncs,
    };
    Ok(served)
}
