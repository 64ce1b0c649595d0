use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use futures::future::join_all;
use kameo::error::SendError;
use kameo::prelude::*;
use tokio::sync::{Semaphore, mpsc};

use super::aggregator::{AggregatorActor, Fold};
use super::aggregator::{Recover, SaveAggregator};
use super::checkpoint::{Checkpoints, ExperimentSnapshot};
use super::cohort::{CohortActor, RunTrial};
use super::cohort::{Crash, Ping, SaveCohort, Supervisor};
use super::free::run_free;
use crate::error::{Error, Result};
use crate::learner::{Cohort, LearnerState, LearnerStats, crashed};
use crate::metrics::{RecordKey, TrialRecord, Window, evidence_error};
use crate::scenario::Scenario;
use crate::share::{Aggregator, OthersUpdate, Recovery};
use kameo::supervision::RestartPolicy;
use std::sync::atomic::{AtomicBool, Ordering};

/// How to execute a run. In lockstep nothing here changes the results; the
/// async mode trades reproducibility for speed.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Tokio worker threads.
    pub threads: usize,
    /// Learner actors per experiment; 0 picks four per thread.
    pub cohorts: usize,
    pub mode: Mode,
    /// Checkpoints and the stop flag (lockstep only).
    pub continuity: Continuity,
}

/// Whether learners wait for each other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A barrier every trial: reproducible on any machine.
    #[default]
    Lockstep,
    /// Free-running learners, an aggregator on its own schedule.
    Async,
}

impl Default for RunOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            threads,
            cohorts: 0,
            mode: Mode::Lockstep,
            continuity: Continuity::default(),
        }
    }
}

impl RunOptions {
    fn cohorts_for(&self, agents: u32) -> usize {
        let wanted = if self.cohorts == 0 {
            4 * self.threads.max(1)
        } else {
            self.cohorts
        };
        wanted.clamp(1, agents as usize)
    }
}

/// Watches a run; every hook has a no-op default.
pub trait Observe {
    /// A metrics record is ready. An error stops the run.
    fn on_record(&mut self, _record: &TrialRecord) -> Result<()> {
        Ok(())
    }
    /// One more trial of one experiment finished.
    fn on_trial(&mut self) {}
}

impl Observe for () {}

/// Wall-clock cost of one experiment (kept apart from the results, which
/// must not depend on it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunTiming {
    pub agents: u32,
    pub rep: u32,
    pub seconds: f64,
    /// Steps taken by all learners together.
    pub steps: u64,
}

/// Everything a run produced.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    pub records: Vec<TrialRecord>,
    pub timings: Vec<RunTiming>,
    pub mode: Mode,
}

/// Runs every (agent count, repetition) of the scenario, in lockstep or
/// free-running as `options.mode` says, on a fresh tokio runtime with
/// `options.threads` workers.
///
/// Experiments are independent, so up to `threads` of them run at once; the
/// observer still sees their records in (agents, repetition) order, as they
/// would arrive one experiment after another.
pub fn run_scenario(
    scenario: &Scenario,
    options: &RunOptions,
    observer: &mut dyn Observe,
) -> Result<RunOutcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start tokio: {e}")))?;
    let scenario = Arc::new(scenario.clone());
    let experiments: Vec<(u32, u32)> = scenario
        .run
        .agents
        .iter()
        .flat_map(|&a| (0..scenario.run.reps).map(move |rep| (a, rep)))
        .collect();
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let permits = Arc::new(Semaphore::new(options.threads.max(1)));
    for (index, &(agents, rep)) in experiments.iter().enumerate() {
        let (scenario, tx, permits) = (scenario.clone(), tx.clone(), permits.clone());
        // With fault injection every learner is an actor of its own, so a
        // crash takes down exactly one learner.
        let cohorts = if scenario.run.fault_kill > 0.0 {
            agents as usize
        } else {
            options.cohorts_for(agents)
        };
        let mode = options.mode;
        let continuity = options.continuity.clone();
        runtime.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let mut forward = Forward {
                index,
                tx: tx.clone(),
                trials: 0,
            };
            let result = match mode {
                Mode::Lockstep => match continuity.checkpoints.read(agents, rep) {
                    Ok(Some(s)) if s.finished => replay_finished(s, &mut forward),
                    Ok(resume) => {
                        run_lockstep(
                            &scenario,
                            agents,
                            rep,
                            cohorts,
                            &mut forward,
                            &continuity,
                            resume,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                },
                Mode::Async => run_free(&scenario, agents, rep, cohorts, &mut forward).await,
            };
            let _ = tx.send(Event::Done {
                index,
                trials: forward.trials,
                result: result.map(|(_, t)| t),
            });
        });
    }
    drop(tx);

    runtime.block_on(async {
        let mut outcome = RunOutcome {
            mode: options.mode,
            ..RunOutcome::default()
        };
        let mut next = 0;
        let mut held: Vec<Vec<TrialRecord>> = vec![Vec::new(); experiments.len()];
        let mut finished: Vec<Option<RunTiming>> = vec![None; experiments.len()];
        while let Some(event) = rx.recv().await {
            let trials = match event {
                Event::Record {
                    index,
                    trials,
                    record,
                } => {
                    if index == next {
                        observer.on_record(&record)?;
                        outcome.records.push(record);
                    } else {
                        held[index].push(record);
                    }
                    trials
                }
                Event::Done {
                    index,
                    trials,
                    result,
                } => {
                    finished[index] = Some(result?);
                    trials
                }
            };
            for _ in 0..trials {
                observer.on_trial();
            }
            // Release the experiments that are now next in order.
            while let Some(timing) = finished.get_mut(next).and_then(Option::take) {
                outcome.timings.push(timing);
                next += 1;
                if let Some(records) = held.get_mut(next) {
                    for record in std::mem::take(records) {
                        observer.on_record(&record)?;
                        outcome.records.push(record);
                    }
                }
            }
        }
        if next < experiments.len() {
            return Err(Error::Runtime(
                "an experiment stopped without reporting".into(),
            ));
        }
        Ok(outcome)
    })
}

/// Waits until a crashed learner actor's supervisor has started it again.
async fn wait_for_restart(actor: &ActorRef<CohortActor>, learner: u32) -> Result<()> {
    for _ in 0..100_000 {
        if actor.ask(Ping).await.is_ok() {
            return Ok(());
        }
        tokio::task::yield_now().await;
    }
    Err(Error::Runtime(format!(
        "learner {learner} was not restarted after its crash"
    )))
}

/// Emits a finished experiment's records from its checkpoint.
fn replay_finished(
    s: ExperimentSnapshot,
    observer: &mut (dyn Observe + Send),
) -> Result<(Vec<TrialRecord>, RunTiming)> {
    for record in &s.records {
        observer.on_record(record)?;
    }
    for _ in 0..s.trial {
        observer.on_trial();
    }
    let steps = s.records.last().map_or(0, |r| r.step) * u64::from(s.agents);
    let timing = RunTiming {
        agents: s.agents,
        rep: s.rep,
        seconds: s.seconds,
        steps,
    };
    Ok((s.records, timing))
}

enum Event {
    Record {
        index: usize,
        trials: u64,
        record: TrialRecord,
    },
    Done {
        index: usize,
        trials: u64,
        result: Result<RunTiming>,
    },
}

/// Passes an experiment's records to the thread that owns the observer,
/// with the trials finished since the last one.
struct Forward {
    index: usize,
    tx: mpsc::UnboundedSender<Event>,
    trials: u64,
}

impl Observe for Forward {
    fn on_record(&mut self, record: &TrialRecord) -> Result<()> {
        let trials = std::mem::take(&mut self.trials);
        self.tx
            .send(Event::Record {
                index: self.index,
                trials,
                record: record.clone(),
            })
            .map_err(|_| Error::Runtime("the run was abandoned".into()))
    }

    fn on_trial(&mut self) {
        self.trials += 1;
    }
}

/// `agents` learner ids split into at most `cohorts` contiguous blocks.
pub(super) fn cohort_ranges(agents: u32, cohorts: usize) -> Vec<Range<u32>> {
    let n = agents as usize;
    let k = cohorts.clamp(1, n.max(1));
    (0..k)
        .map(|c| (c * n / k) as u32..((c + 1) * n / k) as u32)
        .collect()
}

/// What a lockstep experiment needs beyond the scenario: where to write
/// checkpoints, a stop flag, and a snapshot to continue from.
#[derive(Debug, Clone, Default)]
pub struct Continuity {
    pub checkpoints: Checkpoints,
    /// Set it to stop every experiment at the end of its current trial,
    /// after writing a checkpoint; the run then returns
    /// [`Error::Interrupted`].
    pub stop: Option<Arc<AtomicBool>>,
}

/// One experiment in lockstep: every trial, each cohort applies the
/// aggregator's last answers and steps its learners; the driver hands their
/// share messages to the aggregator in learner-id order. The same scenario,
/// seed and repetition give the same records on any thread count, and a run
/// resumed from a checkpoint gives the same records as one never stopped.
pub async fn run_lockstep(
    scenario: &Scenario,
    agents: u32,
    rep: u32,
    cohorts: usize,
    observer: &mut (dyn Observe + Send),
    continuity: &Continuity,
    resume: Option<ExperimentSnapshot>,
) -> Result<(Vec<TrialRecord>, RunTiming)> {
    let started = Instant::now();
    let config = &scenario.learner;
    let plan = &scenario.run;
    let ranges = cohort_ranges(agents, cohorts);
    let k = ranges.len();
    let key = RecordKey::new(agents, config, rep);
    let mut truth = config.env.clone();
    let mut window = Window::default();
    let mut records = Vec::new();
    let mut pending: Vec<Vec<OthersUpdate>> = vec![Vec::new(); k];
    let mut since_broadcast = 0u64;
    let mut unanswered = false;
    // Evidence decays per step; the aggregator catches up at each fold.
    let decay_per_trial = config.forgetting.powf(plan.steps_per_trial as f64);
    let mut decay = 1.0;
    let mut first = 1;
    let mut seconds_before = 0.0;
    // Every learner's running totals as last reported (fault injection).
    let mut stats = vec![LearnerStats::default(); agents as usize];

    let (cohort_states, aggregator_state) = match resume {
        Some(s) => {
            first = s.trial + 1;
            seconds_before = s.seconds;
            since_broadcast = s.since_broadcast;
            unanswered = s.unanswered;
            decay = s.decay;
            window = s.window;
            for update in s.pending {
                let c = ranges.partition_point(|r| r.end <= update.learner);
                pending[c].push(update);
            }
            for record in s.records {
                observer.on_record(&record)?;
                records.push(record);
            }
            for _ in 0..s.trial {
                observer.on_trial();
            }
            stats = s.learners.iter().map(LearnerState::stats).collect();
            let mut learners = s.learners.into_iter();
            let cohorts: Vec<Cohort> = ranges
                .iter()
                .map(|r| {
                    Cohort::restore(
                        config,
                        plan.seed,
                        rep,
                        learners.by_ref().take(r.len()).collect(),
                    )
                })
                .collect();
            let aggregator = s.aggregator.ok_or_else(|| {
                Error::Runtime("a checkpoint of an unfinished run lacks its aggregator".into())
            })?;
            (cohorts, aggregator)
        }
        None => (
            ranges
                .iter()
                .map(|r| Cohort::new(config, plan.seed, rep, r.clone()))
                .collect(),
            Aggregator::new(config.env.shape(), agents as usize),
        ),
    };
    let supervisor = (plan.fault_kill > 0.0).then(|| Supervisor::spawn(()));
    let mut actors: Vec<ActorRef<CohortActor>> = Vec::with_capacity(k);
    for cohort in cohort_states {
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
    let aggregator = AggregatorActor::spawn(aggregator_state);

    let mut reported = Vec::new();
    let result: Result<()> = async {
        for trial in first..=plan.trials {
            let (measure, evaluate) = scenario.metrics.due(trial, plan.trials);
            let mut recoveries: Vec<Vec<(Recovery, LearnerStats)>> = vec![Vec::new(); k];
            let victims = crashed(plan.seed, rep, trial, agents, plan.fault_kill);
            for &v in &victims {
                // One learner per actor here: actor v is learner v.
                let actor = &actors[v as usize];
                actor
                    .tell(Crash)
                    .await
                    .map_err(|e| Error::Runtime(format!("cannot crash learner {v}: {e:?}")))?;
                wait_for_restart(actor, v).await?;
            }
            if !victims.is_empty() {
                let records = aggregator
                    .ask(Recover(victims))
                    .await
                    .map_err(|e| Error::Runtime(format!("aggregator failed: {e:?}")))?;
                for rec in records {
                    let c = ranges.partition_point(|r| r.end <= rec.learner);
                    let last = stats[rec.learner as usize];
                    recoveries[c].push((rec, last));
                }
            }
            let asks = actors.iter().zip(pending.iter_mut()).zip(recoveries).map(
                |((actor, updates), recoveries)| {
                    actor
                        .ask(RunTrial {
                            trial,
                            recoveries,
                            stats: plan.fault_kill > 0.0,
                            updates: std::mem::take(updates),
                            steps: plan.steps_per_trial,
                            measure,
                            evaluate,
                        })
                        .into_future()
                },
            );
            let mut shares = Vec::new();
            let mut metrics = Vec::new();
            for done in join_all(asks).await {
                let done =
                    done.map_err(|e| Error::Runtime(format!("learner cohort failed: {e:?}")))?;
                shares.extend(done.0.shares);
                metrics.extend(done.0.metrics);
                reported.extend(done.0.stats);
            }
            if !reported.is_empty() {
                stats = std::mem::take(&mut reported);
            }

            since_broadcast += plan.steps_per_trial;
            let answer = since_broadcast >= scenario.broadcast_every;
            if answer {
                since_broadcast = 0;
            }
            unanswered |= !shares.is_empty();
            decay *= decay_per_trial;
            if !shares.is_empty() || measure || (answer && unanswered) {
                let folded = aggregator
                    .ask(Fold {
                        shares,
                        decay: std::mem::replace(&mut decay, 1.0),
                        answer,
                        snapshot: measure,
                    })
                    .await
                    .map_err(|e| match e {
                        SendError::HandlerError(e) => e,
                        other => Error::Runtime(format!("aggregator failed: {other:?}")),
                    })?;
                if answer {
                    unanswered = false;
                }
                for update in folded.updates {
                    let c = ranges.partition_point(|r| r.end <= update.learner);
                    pending[c].push(update);
                }
                if let Some(global) = folded.global {
                    truth.advance_to((trial * plan.steps_per_trial).saturating_sub(1));
                    let global_kl = evidence_error(&truth, config.prior, &global);
                    let record = TrialRecord::measure(
                        &key,
                        trial,
                        &metrics,
                        global_kl,
                        folded.traffic,
                        &mut window,
                    );
                    observer.on_record(&record)?;
                    records.push(record);
                }
            }
            observer.on_trial();

            let stop = continuity
                .stop
                .as_ref()
                .is_some_and(|f| f.load(Ordering::SeqCst));
            let due = continuity
                .checkpoints
                .every
                .is_some_and(|e| trial.is_multiple_of(e));
            if trial < plan.trials && (stop || due) && continuity.checkpoints.dir.is_some() {
                let mut learners = Vec::with_capacity(agents as usize);
                for actor in &actors {
                    let saved = actor
                        .ask(SaveCohort)
                        .await
                        .map_err(|e| Error::Runtime(format!("learner cohort failed: {e:?}")))?;
                    learners.extend(saved.0);
                }
                let saved = aggregator
                    .ask(SaveAggregator)
                    .await
                    .map_err(|e| Error::Runtime(format!("aggregator failed: {e:?}")))?;
                continuity.checkpoints.write(&ExperimentSnapshot {
                    agents,
                    rep,
                    trial,
                    learners,
                    aggregator: Some(saved.0),
                    pending: pending.iter().flatten().cloned().collect(),
                    since_broadcast,
                    unanswered,
                    decay,
                    window,
                    records: records.clone(),
                    finished: false,
                    seconds: seconds_before + started.elapsed().as_secs_f64(),
                })?;
            }
            if stop && trial < plan.trials {
                return Err(Error::Interrupted);
            }
        }
        Ok(())
    }
    .await;

    if let Some(sup) = &supervisor {
        let _ = sup.stop_gracefully().await;
    }
    for actor in &actors {
        let _ = actor.stop_gracefully().await;
    }
    let _ = aggregator.stop_gracefully().await;
    for actor in &actors {
        actor.wait_for_shutdown().await;
    }
    aggregator.wait_for_shutdown().await;
    result?;

    let seconds = seconds_before + started.elapsed().as_secs_f64();
    // A finished experiment keeps only its records, so a resumed run skips it.
    continuity.checkpoints.write(&ExperimentSnapshot {
        agents,
        rep,
        trial: plan.trials,
        learners: Vec::new(),
        aggregator: None,
        pending: Vec::new(),
        since_broadcast,
        unanswered,
        decay,
        window,
        records: records.clone(),
        finished: true,
        seconds,
    })?;
    let timing = RunTiming {
        agents,
        rep,
        seconds,
        steps: plan.trials * plan.steps_per_trial * u64::from(agents),
    };
    Ok((records, timing))
}
