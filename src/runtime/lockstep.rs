//! One experiment in lockstep: a barrier every trial, so results do not
//! depend on threads or timing.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::future::join_all;
use kameo::error::SendError;
use kameo::prelude::*;
use kameo::supervision::RestartPolicy;

use super::aggregator::{AggregatorActor, Fold, Recover, SaveAggregator};
use super::checkpoint::{Checkpoints, ExperimentSnapshot};
use super::cohort::{CohortActor, Crash, Ping, RunTrial, SaveCohort, Supervisor, cohort_of};
use super::options::{Continuity, RunTiming};
use super::recorder::TrialRecorder;
use crate::error::{Error, Result, RuntimeError};
use crate::learner::{Cohort, LearnerStats, SimLearner, StateOf, crashed};
use crate::learner::{SimConfig, Workload};
use crate::observe::Observe;
use crate::record::TrialRecord;
use crate::scenario::Scenario;
use crate::share::{Aggregator, OthersUpdate, Recovery, Schedule};

/// A checkpoint of an experiment on `T`.
type Snapshot<T> = ExperimentSnapshot<StateOf<<T as Workload>::Config>, FamilyOf<T>>;

/// What an experiment starts from: the driver's state, its cohorts and
/// its aggregator.
type Parts<T> = (
    Lockstep<T>,
    Vec<Cohort<<T as Workload>::Config>>,
    Aggregator<FamilyOf<T>>,
);

/// The posterior family of learners on `T`.
type FamilyOf<T> = <<T as Workload>::Config as SimConfig>::Family;

/// One experiment in lockstep: every trial, each cohort applies the
/// aggregator's last answers and steps its learners; the driver hands their
/// share messages to the aggregator in learner-id order, when the protocol's
/// [`Schedule`] says. The same scenario, seed and repetition give the same
/// records on any thread count and cohort split, and a run resumed from a
/// checkpoint gives the same records as one never stopped.
pub async fn run_lockstep<T: Workload>(
    scenario: &Scenario<T>,
    agents: u32,
    rep: u32,
    cohorts: Vec<Range<u32>>,
    observer: &mut (dyn Observe + Send),
    continuity: &Continuity,
    resume: Option<Snapshot<T>>,
) -> Result<(Vec<TrialRecord>, RunTiming)> {
    let started = Instant::now();
    let plan = &scenario.run;
    let (mut state, cohort_states, aggregator) = match resume {
        Some(s) => Lockstep::resume(scenario, agents, rep, cohorts, s, observer)?,
        None => Lockstep::start(scenario, agents, rep, cohorts),
    };
    let actors = Actors::spawn(cohort_states, aggregator, plan.fault_kill > 0.0).await;
    let mut trial = state.trial;
    let mut result = Ok(());
    // Trials that fit in `BATCH_SECONDS`, as the last message measured.
    let mut fit = 1;
    while trial < plan.trials {
        let most = fit.min(state.quiet.saturating_add(1));
        let count = batch(scenario, trial + 1, continuity, most, state.schedule);
        let sent = Instant::now();
        result = state
            .trials(scenario, trial + 1, count, &actors, observer)
            .await;
        let per_trial = sent.elapsed().as_secs_f64() / count as f64;
        fit = (BATCH_SECONDS / per_trial.max(1e-9)).clamp(1.0, MAX_BATCH as f64) as u64;
        trial += count;
        if result.is_err() {
            break;
        }
        let stop = continuity
            .stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst));
        let due = continuity
            .checkpoints
            .every
            .is_some_and(|e| trial.is_multiple_of(e));
        if trial < plan.trials && (stop || due) && continuity.checkpoints.dir.is_some() {
            let seconds = state.seconds_before + started.elapsed().as_secs_f64();
            result = match state
                .snapshot(&actors, &continuity.checkpoints, seconds)
                .await
            {
                Ok(s) => continuity.checkpoints.write(&s),
                Err(e) => Err(e),
            };
        }
        if result.is_ok() && stop && trial < plan.trials {
            result = Err(Error::Interrupted);
        }
        if result.is_err() {
            break;
        }
    }
    actors.stop().await;
    result?;

    let seconds = state.seconds_before + started.elapsed().as_secs_f64();
    // A finished experiment keeps only its records, so a resumed run skips it.
    let finished = state.finished(&continuity.checkpoints, seconds)?;
    continuity.checkpoints.write(&finished)?;
    Ok(state.recorder.finish(seconds, None))
}

/// The most trials one message runs.
const MAX_BATCH: u64 = 1024;

/// About how long one message of trials may run, so that a stop request
/// waits no longer and the progress bar moves at least this often, however
/// slow a trial is.
const BATCH_SECONDS: f64 = 0.1;

/// How many trials from `first` on, at `most`, can run in one message to
/// each cohort: one, unless nothing can pass between the learners and the
/// driver before the last of them ends. That needs no injected faults, no
/// checkpoint due, every learner sure to share nothing for all but the
/// last trial (the caller's `most` says how long), and no answer due from
/// the aggregator on its own `schedule`.
/// Records may fall inside a batch: the cohorts take their metrics after
/// the trial, and the aggregator's snapshot, which a quiet trial leaves
/// alone, is taken afterwards. Batching changes no result: each learner
/// steps its own random stream exactly as it would one trial at a time.
fn batch<T: Workload>(
    scenario: &Scenario<T>,
    first: u64,
    continuity: &Continuity,
    most: u64,
    mut schedule: Schedule,
) -> u64 {
    let plan = &scenario.run;
    if plan.fault_kill > 0.0 {
        return 1;
    }
    let mut last = first;
    while last < plan.trials && last - first + 1 < most {
        let (measure, _) = scenario.metrics.due(last, plan.trials);
        let checkpoint = continuity
            .checkpoints
            .every
            .is_some_and(|e| last.is_multiple_of(e));
        // Folding nothing new answers nothing; a fold with something still
        // unanswered would have news for the learners.
        let unanswered = schedule.unanswered();
        let due = schedule.after_trial(false, measure);
        if checkpoint || (due.is_some() && (unanswered || !measure)) {
            break;
        }
        last += 1;
    }
    last - first + 1
}

/// The actors of one lockstep experiment.
struct Actors<T: Workload> {
    cohorts: Vec<ActorRef<CohortActor<T>>>,
    aggregator: ActorRef<AggregatorActor<FamilyOf<T>>>,
    supervisor: Option<ActorRef<Supervisor>>,
}

impl<T: Workload> Actors<T> {
    /// One actor per cohort (under a supervisor that restarts crashed ones
    /// if `faults`), and the aggregator.
    async fn spawn(
        cohorts: Vec<Cohort<T::Config>>,
        aggregator: Aggregator<FamilyOf<T>>,
        faults: bool,
    ) -> Self {
        let supervisor = faults.then(|| Supervisor::spawn(()));
        let mut actors = Vec::with_capacity(cohorts.len());
        for cohort in cohorts {
            actors.push(match &supervisor {
                // Restarted only when it fails, as often as it fails.
                Some(sup) => {
                    CohortActor::supervise(sup, cohort)
                        .restart_policy(RestartPolicy::Transient)
                        .restart_limit(u32::MAX, std::time::Duration::from_secs(1))
                        .spawn()
                        .await
                }
                None => CohortActor::spawn(cohort),
            });
        }
        Self {
            cohorts: actors,
            aggregator: AggregatorActor::spawn(aggregator),
            supervisor,
        }
    }

    /// Crashes learner `v` (one learner per actor under faults) and waits
    /// until its supervisor has started it again.
    async fn crash(&self, v: u32) -> Result<()> {
        let actor = &self.cohorts[v as usize];
        actor.tell(Crash).await.map_err(|e| RuntimeError::Restart {
            learner: v,
            problem: format!("cannot crash it: {e:?}"),
        })?;
        for _ in 0..100_000 {
            if actor.ask(Ping).await.is_ok() {
                return Ok(());
            }
            tokio::task::yield_now().await;
        }
        Err(RuntimeError::Restart {
            learner: v,
            problem: "not restarted after its crash".into(),
        }
        .into())
    }

    /// Stops every actor, learners first, and waits for them.
    async fn stop(&self) {
        if let Some(sup) = &self.supervisor {
            let _ = sup.stop_gracefully().await;
        }
        for actor in &self.cohorts {
            let _ = actor.stop_gracefully().await;
        }
        let _ = self.aggregator.stop_gracefully().await;
        for actor in &self.cohorts {
            actor.wait_for_shutdown().await;
        }
        self.aggregator.wait_for_shutdown().await;
    }
}

fn cohort_failed<E: std::fmt::Debug>(e: E) -> Error {
    RuntimeError::Cohort(format!("{e:?}")).into()
}

fn aggregator_failed<E: std::fmt::Debug>(e: E) -> Error {
    RuntimeError::Aggregator(format!("{e:?}")).into()
}

/// The driver's side of a lockstep experiment: everything a checkpoint
/// keeps besides the learners and the aggregator.
struct Lockstep<T: Workload> {
    agents: u32,
    rep: u32,
    ranges: Vec<Range<u32>>,
    recorder: TrialRecorder<T>,
    schedule: Schedule,
    /// Answers to deliver at the start of the next trial, by cohort.
    pending: Vec<Vec<OthersUpdate>>,
    /// Every learner's running totals as last reported (fault injection).
    stats: Vec<LearnerStats>,
    /// Trials completed.
    trial: u64,
    seconds_before: f64,
    /// Records in the checkpoint's records file, and its length in bytes.
    on_disk: (u64, u64),
    /// Trials every learner can run from here with nothing to share, as
    /// the cohorts last reported (0 until they do).
    quiet: u64,
}

impl<T: Workload> Lockstep<T> {
    fn new(scenario: &Scenario<T>, agents: u32, rep: u32, ranges: Vec<Range<u32>>) -> Self {
        let config = &scenario.learner;
        Self {
            agents,
            rep,
            recorder: TrialRecorder::new(scenario, agents, rep),
            schedule: Schedule::new(
                scenario.broadcast_every,
                scenario.run.steps_per_trial,
                config.forgetting(),
            ),
            pending: vec![Vec::new(); ranges.len()],
            ranges,
            stats: vec![LearnerStats::default(); agents as usize],
            trial: 0,
            seconds_before: 0.0,
            on_disk: (0, 0),
            quiet: 0,
        }
    }

    /// A fresh experiment: its driver state, cohorts and aggregator.
    fn start(scenario: &Scenario<T>, agents: u32, rep: u32, ranges: Vec<Range<u32>>) -> Parts<T> {
        let config = &scenario.learner;
        let cohorts = ranges
            .iter()
            .map(|r| Cohort::new(config, scenario.run.seed, rep, r.clone()))
            .collect();
        let aggregator = config.aggregator(agents as usize);
        (
            Self::new(scenario, agents, rep, ranges),
            cohorts,
            aggregator,
        )
    }

    /// An experiment continued from its checkpoint, whose records so far
    /// are handed to `observer` again.
    fn resume(
        scenario: &Scenario<T>,
        agents: u32,
        rep: u32,
        ranges: Vec<Range<u32>>,
        s: Snapshot<T>,
        observer: &mut (dyn Observe + Send),
    ) -> Result<Parts<T>> {
        let mut state = Self::new(scenario, agents, rep, ranges);
        state.trial = s.trial;
        state.seconds_before = s.seconds;
        state.on_disk = (s.records_count, s.records_bytes);
        state.schedule = s.schedule;
        for update in s.pending {
            let c = cohort_of(&state.ranges, update.learner);
            state.pending[c].push(update);
        }
        for record in &s.records {
            observer.on_record(record)?;
        }
        state.recorder.resume(s.records, s.window, s.trial);
        observer.on_trials(s.trial);
        state.stats = s
            .learners
            .iter()
            .map(<T::Config as SimConfig>::Learner::saved_stats)
            .collect();
        let mut learners = s.learners.into_iter();
        let cohorts = state
            .ranges
            .iter()
            .map(|r| {
                Cohort::restore(
                    &scenario.learner,
                    scenario.run.seed,
                    rep,
                    learners.by_ref().take(r.len()).collect(),
                )
            })
            .collect::<Result<_>>()?;
        let aggregator = s.aggregator.ok_or_else(|| {
            RuntimeError::Checkpoint(
                "a checkpoint of an unfinished run lacks its aggregator".into(),
            )
        })?;
        Ok((state, cohorts, aggregator))
    }

    /// Trials `first .. first + count` (one, unless [`batch`] allows more):
    /// faults, every cohort's learners, then trial by trial the
    /// aggregator's work and the record, if due.
    async fn trials(
        &mut self,
        scenario: &Scenario<T>,
        first: u64,
        count: u64,
        actors: &Actors<T>,
        observer: &mut (dyn Observe + Send),
    ) -> Result<()> {
        let plan = &scenario.run;
        let last = first + count - 1;
        let measures: Vec<(u64, bool)> = (first..=last)
            .filter_map(|t| {
                let (measure, evaluate) = scenario.metrics.due(t, plan.trials);
                measure.then_some((t - first + 1, evaluate))
            })
            .collect();
        let recoveries = self.crash_and_recover(scenario, first, actors).await?;
        let asks = actors
            .cohorts
            .iter()
            .zip(self.pending.iter_mut())
            .zip(recoveries)
            .map(|((actor, updates), recoveries)| {
                actor
                    .ask(RunTrial {
                        trial: first,
                        trials: count,
                        recoveries,
                        stats: plan.fault_kill > 0.0,
                        updates: std::mem::take(updates),
                        steps: plan.steps_per_trial,
                        measures: measures.clone(),
                    })
                    .into_future()
            });
        let mut shares = Vec::new();
        // Each cohort's metrics, record after record.
        let mut metrics = Vec::with_capacity(self.ranges.len());
        let mut reported = Vec::new();
        self.quiet = u64::MAX;
        for done in join_all(asks).await {
            let done = done.map_err(cohort_failed)?.0;
            self.quiet = self.quiet.min(done.quiet_trials);
            shares.extend(done.shares);
            metrics.push(done.metrics.into_iter());
            reported.extend(done.stats);
        }
        if !reported.is_empty() {
            self.stats = reported;
        }
        let mut measures = measures.iter().peekable();
        for trial in first..=last {
            let measure = measures.next_if(|(k, _)| first + k - 1 == trial).is_some();
            // Only the last trial of a batch can have shared.
            let shares = if trial == last {
                std::mem::take(&mut shares)
            } else {
                Vec::new()
            };
            if let Some(due) = self.schedule.after_trial(!shares.is_empty(), measure) {
                let folded = actors
                    .aggregator
                    .ask(Fold {
                        shares,
                        decay: due.decay,
                        answer: due.answer,
                        snapshot: measure,
                    })
                    .await
                    .map_err(|e| match e {
                        SendError::HandlerError(e) => e,
                        other => aggregator_failed(other),
                    })?;
                if trial < last && !folded.updates.is_empty() {
                    return Err(RuntimeError::Invariant(format!(
                        "trial {trial} had answers for learners inside a batch of trials"
                    ))
                    .into());
                }
                for update in folded.updates {
                    let c = cohort_of(&self.ranges, update.learner);
                    self.pending[c].push(update);
                }
                if let Some(global) = folded.global {
                    let learners: Vec<_> = metrics
                        .iter_mut()
                        .zip(&self.ranges)
                        .flat_map(|(m, r)| m.by_ref().take(r.len()))
                        .collect();
                    let traffic = folded.traffic;
                    self.recorder
                        .record(trial, &learners, &global, traffic, observer)?;
                }
            }
            observer.on_trial();
        }
        self.trial = last;
        Ok(())
    }

    /// Crashes the learners that fail in trial `trial` and fetches their
    /// records from the aggregator: what each cohort rebuilds them from.
    async fn crash_and_recover(
        &self,
        scenario: &Scenario<T>,
        trial: u64,
        actors: &Actors<T>,
    ) -> Result<Vec<Vec<(Recovery, LearnerStats)>>> {
        let plan = &scenario.run;
        let mut recoveries = vec![Vec::new(); self.ranges.len()];
        let victims = crashed(plan.seed, self.rep, trial, self.agents, plan.fault_kill);
        if victims.is_empty() {
            return Ok(recoveries);
        }
        for &v in &victims {
            actors.crash(v).await?;
        }
        let records = actors
            .aggregator
            .ask(Recover(victims))
            .await
            .map_err(|e| match e {
                SendError::HandlerError(e) => e,
                other => aggregator_failed(other),
            })?;
        for rec in records {
            let c = cohort_of(&self.ranges, rec.learner);
            let last = self.stats[rec.learner as usize];
            recoveries[c].push((rec, last));
        }
        Ok(recoveries)
    }

    /// Everything needed to continue after the current trial; the records
    /// since the last checkpoint are appended to its records file.
    async fn snapshot(
        &mut self,
        actors: &Actors<T>,
        checkpoints: &Checkpoints,
        seconds: f64,
    ) -> Result<Snapshot<T>> {
        let mut learners = Vec::with_capacity(self.agents as usize);
        for actor in &actors.cohorts {
            learners.extend(actor.ask(SaveCohort).await.map_err(cohort_failed)?.0);
        }
        let aggregator = actors
            .aggregator
            .ask(SaveAggregator)
            .await
            .map_err(aggregator_failed)?
            .0;
        Ok(ExperimentSnapshot {
            learners,
            aggregator: Some(aggregator),
            pending: self.pending.iter().flatten().cloned().collect(),
            finished: false,
            ..self.finished(checkpoints, seconds)?
        })
    }

    /// What a finished experiment keeps: its records.
    fn finished(&mut self, checkpoints: &Checkpoints, seconds: f64) -> Result<Snapshot<T>> {
        let new = &self.recorder.records()[self.on_disk.0 as usize..];
        self.on_disk = checkpoints.append_records(self.agents, self.rep, self.on_disk, new)?;
        Ok(ExperimentSnapshot {
            agents: self.agents,
            rep: self.rep,
            trial: self.trial,
            learners: Vec::new(),
            aggregator: None,
            pending: Vec::new(),
            schedule: self.schedule,
            window: *self.recorder.window(),
            records: Vec::new(),
            records_count: self.on_disk.0,
            records_bytes: self.on_disk.1,
            finished: true,
            seconds,
        })
    }
}
