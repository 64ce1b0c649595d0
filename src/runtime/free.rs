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
use crate::env::Task;
use crate::error::{Error, Result};
use crate::learner::{Cohort, LearnerMetrics};
use crate::metrics::evidence_error;
use crate::model::Evidence;
use crate::observe::Observe;
use crate::record::{RecordKey, TrialRecord, Window};
use crate::scenario::Scenario;
use crate::share::{Aggregator, OthersUpdate, ShareMessage, Traffic};

/// The aggregator of a free-running experiment.
pub struct Publisher {
    aggregator: Aggregator,
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
pub struct PublisherArgs {
    /// The aggregator it owns.
    pub aggregator: Aggregator,
    /// Each cohort's learner ids and inbox.
    pub routes: Vec<(Range<u32>, UnboundedSender<Vec<OthersUpdate>>)>,
    /// Publish after this many batches ...
    pub every_batches: usize,
    /// ... or once this long has passed since the last publication.
    pub every: Duration,
}

impl Actor for Publisher {
    type Args = PublisherArgs;
    type Error = Infallible;

    async fn on_start(args: PublisherArgs, _me: ActorRef<Self>) -> Result<Self, Self::Error> {
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
pub struct Absorb(pub Vec<ShareMessage>);

impl Message<Absorb> for Publisher {
    type Reply = Result<(), Error>;

    async fn handle(&mut self, msg: Absorb, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
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

impl Publisher {
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
pub struct Snapshot;

/// The global counts and traffic at a moment.
#[derive(Reply)]
pub struct Snapped {
    /// `Σᵢ contrib[i]`.
    pub global: Evidence,
    /// Traffic so far.
    pub traffic: Traffic,
}

impl Message<Snapshot> for Publisher {
    type Reply = Snapped;

    async fn handle(&mut self, _: Snapshot, _ctx: &mut Context<Self, Self::Reply>) -> Snapped {
        Snapped {
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
pub async fn run_free<T: Task>(
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
            aggregator: Aggregator::new(config.structure().shape(), n)
                .with_downlink(config.agent().downlink())
                .with_prior(config.agent().prior()),
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
        tasks.push(tokio::spawn(run_cohort(
            c,
            cohort,
            inbox,
            publisher.clone(),
            scenario.clone(),
            progress_tx.clone(),
            continuity.stop.clone(),
        )));
    }
    drop(progress_tx);

    let key = RecordKey::new(agents, config, rep);
    let mut truth = config.task().clone();
    let mut window = Window::default();
    let mut records = Vec::new();
    // Trials every cohort has finished, and metrics waiting for the rest.
    let mut reached = vec![0u64; k];
    let mut done_through = 0u64;
    let mut pending: std::collections::BTreeMap<u64, Vec<Option<Vec<LearnerMetrics>>>> =
        Default::default();
    let result: Result<()> = async {
        while let Some(p) = progress.recv().await {
            let p = p?;
            reached[p.cohort] = p.trial;
            if let Some(m) = p.metrics {
                pending.entry(p.trial).or_insert_with(|| vec![None; k])[p.cohort] = Some(m);
            }
            let slowest = reached.iter().copied().min().unwrap_or(0);
            while done_through < slowest {
                done_through += 1;
                observer.on_trial();
                let Some(parts) = pending.remove(&done_through) else {
                    continue;
                };
                let metrics: Vec<LearnerMetrics> = parts.into_iter().flatten().flatten().collect();
                let snap = publisher
                    .ask(Snapshot)
                    .await
                    .map_err(|e| Error::Runtime(format!("aggregator failed: {e:?}")))?;
                truth.advance_to((done_through * plan.steps_per_trial).saturating_sub(1));
                let global_kl = evidence_error(&truth, config.agent().prior(), &snap.global);
                let record = TrialRecord::measure(
                    &key,
                    done_through,
                    &metrics,
                    global_kl,
                    snap.traffic,
                    &mut window,
                );
                observer.on_record(&record)?;
                records.push(record);
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
    if done_through < plan.trials {
        let stopped = continuity
            .stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst));
        return Err(if stopped {
            Error::Interrupted
        } else {
            Error::Runtime("a learner cohort stopped early".into())
        });
    }
    let timing = RunTiming {
        agents,
        rep,
        seconds: started.elapsed().as_secs_f64(),
        steps: plan.trials * plan.steps_per_trial * u64::from(agents),
        wire: None,
    };
    Ok((records, timing))
}

/// A cohort's free-running loop, until its last trial or until `stop`.
async fn run_cohort<T: Task>(
    c: usize,
    mut cohort: Cohort<T>,
    mut inbox: UnboundedReceiver<Vec<OthersUpdate>>,
    publisher: ActorRef<Publisher>,
    scenario: Scenario<T>,
    progress: UnboundedSender<Result<Progress>>,
    stop: Option<Arc<AtomicBool>>,
) {
    let plan = &scenario.run;
    let mut updates = Vec::new();
    for trial in 1..=plan.trials {
        if stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
            return;
        }
        updates.clear();
        while let Ok(batch) = inbox.try_recv() {
            updates.extend(batch);
        }
        let (measure, evaluate) = scenario.metrics.due(trial, plan.trials);
        let done = cohort.trial(&updates, plan.steps_per_trial, measure, evaluate);
        if !done.shares.is_empty() && publisher.tell(Absorb(done.shares)).await.is_err() {
            let _ = progress.send(Err(Error::Runtime("the aggregator stopped".into())));
            return;
        }
        let report = Progress {
            cohort: c,
            trial,
            metrics: measure.then_some(done.metrics),
        };
        if progress.send(Ok(report)).is_err() {
            return;
        }
        // Let the aggregator and the other cohorts run on this worker.
        tokio::task::yield_now().await;
    }
}
