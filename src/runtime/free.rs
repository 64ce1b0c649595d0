//! The async (free-running) mode: no barrier. Each cohort of
//! learners runs its trials as fast as it can, hands its share messages to
//! the aggregator with a `tell` into an unbounded mailbox, and picks up
//! whatever answers have arrived at the start of each trial. The aggregator
//! publishes on its own schedule into per-cohort channels with a send that
//! never waits, so no actor ever awaits another that may be waiting on it
//! (the mailbox-cycle deadlock of two actors each awaiting a bounded send to
//! the other).
//!
//! Results depend on timing: the same seed gives the same learners' random
//! streams, not the same records.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kameo::error::Infallible;
use kameo::prelude::*;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::cohort::cohort_ranges;
use super::options::{Continuity, RunTiming};
use super::recorder::TrialRecorder;
use crate::error::{Error, Result, RuntimeError};
use crate::learner::{Cohort, LearnerMetrics};
use crate::learner::{SimConfig, Workload};
use crate::model::Evidence;
use crate::observe::Observe;
use crate::record::TrialRecord;
use crate::scenario::Scenario;
use crate::share::{Aggregator, Dirichlet, Family, OthersUpdate, ShareMessage, Traffic};

/// The aggregator of a free-running experiment.
pub struct Publisher<F: Family = Dirichlet> {
    aggregator: Aggregator<F>,
    /// Each cohort's learner ids and inbox.
    routes: Vec<(Range<u32>, UnboundedSender<Vec<OthersUpdate>>)>,
    /// Publish after this many batches ...
    every_batches: usize,
    /// ... or once this long has passed since the last publication.
    every: Duration,
    batches: usize,
    last: Instant,
}

/// What a [`Publisher`] starts from.
pub struct PublisherArgs<F: Family = Dirichlet> {
    /// The aggregator it owns.
    pub aggregator: Aggregator<F>,
    /// Each cohort's learner ids and inbox.
    pub routes: Vec<(Range<u32>, UnboundedSender<Vec<OthersUpdate>>)>,
    /// Publish after this many batches ...
    pub every_batches: usize,
    /// ... or once this long has passed since the last publication.
    pub every: Duration,
}

impl<F: Family> Actor for Publisher<F> {
    type Args = PublisherArgs<F>;
    type Error = Infallible;

    async fn on_start(args: PublisherArgs<F>, _me: ActorRef<Self>) -> Result<Self, Self::Error> {
        Ok(Self {
            aggregator: args.aggregator,
            routes: args.routes,
            every_batches: args.every_batches.max(1),
            every: args.every,
            batches: 0,
            last: Instant::now(),
        })
    }
}

/// One cohort's share messages from one trial.
pub struct Shares(pub Vec<ShareMessage>);

impl<F: Family> Message<Shares> for Publisher<F> {
    type Reply = Result<(), Error>;

    async fn handle(&mut self, msg: Shares, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        for share in &msg.0 {
            self.aggregator.receive(share)?;
        }
        self.batches += 1;
        if self.batches >= self.every_batches || self.last.elapsed() >= self.every {
            self.publish();
        }
        Ok(())
    }
}

impl<F: Family> Publisher<F> {
    fn publish(&mut self) {
        self.batches = 0;
        self.last = Instant::now();
        let updates = self.aggregator.answer_all();
        let mut updates = updates.into_iter().peekable();
        for (range, inbox) in &self.routes {
            let mut mine = Vec::new();
            while let Some(u) = updates.next_if(|u| range.contains(&u.learner)) {
                mine.push(u);
            }
            // A cohort that has finished has dropped its inbox; nothing is lost
            // that it could still use.
            if !mine.is_empty() {
                let _ = inbox.send(mine);
            }
        }
    }
}

/// The global counts and traffic now.
pub struct LookGlobal;

/// The global counts and traffic at a moment.
#[derive(Reply)]
pub struct GlobalNow {
    /// `Σᵢ contrib[i]`.
    pub global: Evidence,
    /// Traffic so far.
    pub traffic: Traffic,
}

impl<F: Family> Message<LookGlobal> for Publisher<F> {
    type Reply = GlobalNow;

    async fn handle(&mut self, _: LookGlobal, _ctx: &mut Context<Self, Self::Reply>) -> GlobalNow {
        GlobalNow {
            global: self.aggregator.global().clone(),
            traffic: self.aggregator.traffic(),
        }
    }
}

/// What a cohort tells the driver after each trial.
struct Progress {
    cohort: usize,
    trial: u64,
    /// At record trials.
    metrics: Option<Vec<LearnerMetrics>>,
}

/// One experiment, free-running. Records are still emitted in trial order:
/// trial t is recorded once every cohort has finished it, with the learners'
/// metrics as of their trial t and the aggregator's global estimate and
/// traffic as of that moment.
pub async fn run_free<T: Workload>(
    scenario: &Scenario<T>,
    agents: u32,
    rep: u32,
    cohorts: usize,
    observer: &mut (dyn Observe + Send),
    continuity: &Continuity,
) -> Result<(Vec<TrialRecord>, RunTiming)> {
    let started = Instant::now();
    let config = &scenario.learner;
    let plan = &scenario.run;
    let n = agents as usize;
    let ranges = cohort_ranges(agents, cohorts);
    let k = ranges.len();
    let (inboxes, receivers): (Vec<_>, Vec<_>) = (0..k).map(|_| unbounded_channel()).unzip();
    let publisher = Publisher::spawn_with_mailbox(
        PublisherArgs {
            aggregator: config.aggregator(n),
            routes: ranges.iter().cloned().zip(inboxes).collect(),
            every_batches: k,
            every: Duration::from_millis(1),
        },
        kameo::mailbox::unbounded(),
    );
    let (progress_tx, mut progress) = unbounded_channel::<Result<Progress>>();
    let mut tasks = Vec::with_capacity(k);
    for (c, (range, inbox)) in ranges.iter().zip(receivers).enumerate() {
        let cohort = Cohort::new(config, plan.seed, rep, range.clone());
        let uplink = LocalUplink {
            cohort: c,
            inbox,
            publisher: publisher.clone(),
            progress: progress_tx.clone(),
        };
        tasks.push(tokio::spawn(run_cohort(
            cohort,
            scenario.clone(),
            uplink,
            continuity.stop.clone(),
        )));
    }
    drop(progress_tx);

    let mut recorder = TrialRecorder::new(scenario, agents, rep);
    // The last trial each cohort has finished.
    let mut reached = vec![0u64; k];
    let result: Result<()> = async {
        while let Some(p) = progress.recv().await {
            let p = p?;
            reached[p.cohort] = p.trial;
            if let Some(m) = p.metrics {
                recorder.hold(p.trial, ranges[p.cohort].start, m);
            }
            let slowest = reached.iter().copied().min().unwrap_or(0);
            while let Some((trial, metrics)) = recorder.next_due(slowest, observer) {
                let snap = publisher
                    .ask(LookGlobal)
                    .await
                    .map_err(|e| RuntimeError::Aggregator(format!("{e:?}")))?;
                recorder.record(trial, &metrics, &snap.global, snap.traffic, observer)?;
            }
        }
        Ok(())
    }
    .await;
    for t in tasks {
        let _ = t.await;
    }
    let _ = publisher.stop_gracefully().await;
    publisher.wait_for_shutdown().await;
    result?;
    if recorder.released() < plan.trials {
        let stopped = continuity
            .stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst));
        return Err(if stopped {
            Error::Interrupted
        } else {
            RuntimeError::StoppedEarly("a learner cohort").into()
        });
    }
    Ok(recorder.finish(started.elapsed().as_secs_f64(), None))
}

/// Where a free-running cohort sends what each trial produced and hears
/// the others' news: a channel to the aggregator actor in this process, or
/// syncs with an aggregator in another.
pub(crate) trait Uplink<T: Workload>: Send {
    /// Takes trial `trial`'s share messages and, at record trials, its
    /// metrics; returns the others' updates to absorb before the next trial
    /// (none when nothing has arrived).
    fn after_trial(
        &mut self,
        cohort: &mut Cohort<T::Config>,
        trial: u64,
        shares: Vec<ShareMessage>,
        metrics: Option<Vec<LearnerMetrics>>,
    ) -> impl Future<Output = Result<Vec<OthersUpdate>>> + Send;

    /// After the last trial: everything gathered reaches the aggregator.
    fn finish(&mut self, cohort: &mut Cohort<T::Config>)
    -> impl Future<Output = Result<()>> + Send;
}

/// A cohort's free-running loop from `first` to the scenario's last trial,
/// or until `stop` is set; returns the trials it ran.
pub(crate) async fn run_free_cohort<T: Workload, U: Uplink<T>>(
    cohort: &mut Cohort<T::Config>,
    scenario: &Scenario<T>,
    first: u64,
    uplink: &mut U,
    stop: Option<&AtomicBool>,
) -> Result<u64> {
    let plan = &scenario.run;
    let mut updates = Vec::new();
    for trial in first..=plan.trials {
        if stop.is_some_and(|f| f.load(Ordering::SeqCst)) {
            return Ok(trial - first);
        }
        let (measure, evaluate) = scenario.metrics.due(trial, plan.trials);
        let done = cohort.trial(&updates, plan.steps_per_trial, measure, evaluate);
        let metrics = measure.then_some(done.metrics);
        updates = uplink
            .after_trial(cohort, trial, done.shares, metrics)
            .await?;
    }
    uplink.finish(cohort).await?;
    Ok((plan.trials + 1).saturating_sub(first))
}

/// A cohort's way to the [`Publisher`] of this process.
struct LocalUplink<F: Family> {
    cohort: usize,
    inbox: UnboundedReceiver<Vec<OthersUpdate>>,
    publisher: ActorRef<Publisher<F>>,
    progress: UnboundedSender<Result<Progress>>,
}

impl<T: Workload> Uplink<T> for LocalUplink<<T::Config as SimConfig>::Family> {
    async fn after_trial(
        &mut self,
        _cohort: &mut Cohort<T::Config>,
        trial: u64,
        shares: Vec<ShareMessage>,
        metrics: Option<Vec<LearnerMetrics>>,
    ) -> Result<Vec<OthersUpdate>> {
        if !shares.is_empty() && self.publisher.tell(Shares(shares)).await.is_err() {
            return Err(RuntimeError::StoppedEarly("the aggregator").into());
        }
        let report = Progress {
            cohort: self.cohort,
            trial,
            metrics,
        };
        if self.progress.send(Ok(report)).is_err() {
            return Err(RuntimeError::StoppedEarly("the driver").into());
        }
        // Let the aggregator and the other cohorts run on this worker.
        tokio::task::yield_now().await;
        let mut updates = Vec::new();
        while let Ok(batch) = self.inbox.try_recv() {
            updates.extend(batch);
        }
        Ok(updates)
    }

    async fn finish(&mut self, _cohort: &mut Cohort<T::Config>) -> Result<()> {
        Ok(())
    }
}

/// A cohort of this process, free-running; a failure reaches the driver.
async fn run_cohort<T: Workload>(
    mut cohort: Cohort<T::Config>,
    scenario: Scenario<T>,
    mut uplink: LocalUplink<<T::Config as SimConfig>::Family>,
    stop: Option<Arc<AtomicBool>>,
) {
    let progress = uplink.progress.clone();
    if let Err(e) = run_free_cohort(&mut cohort, &scenario, 1, &mut uplink, stop.as_deref()).await {
        // The driver may be gone already; then nobody needs to know.
        let _ = progress.send(Err(e));
    }
}
