//! The experiment scheduler: every (agent count, repetition) of a scenario,
//! several at once, their records released to the observer in order.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::checkpoint::ExperimentSnapshot;
use super::cohort::cohort_ranges;
use super::free::run_free;
use super::lockstep::run_lockstep;
use super::options::{Continuity, Mode, RunOptions, RunOutcome, RunTiming};
use crate::error::{Result, RuntimeError};
use crate::learner::Workload;
use crate::observe::{Observe, RunStart};
use crate::record::TrialRecord;
use crate::scenario::Scenario;

/// Runs every (agent count, repetition) of the scenario, in lockstep or
/// free-running as `options.mode` says, on a fresh tokio runtime with
/// `options.threads` workers. Inside a tokio runtime, use
/// [`run_scenario_async`] instead.
///
/// ```
/// use parbayes::{Overrides, RunOptions, Scenario, run_scenario};
///
/// let overrides = Overrides { agents: Some(vec![1, 4]), trials: Some(200), ..Overrides::default() };
/// let scenario = Scenario::load("bandit-news".as_ref(), &overrides)?;
/// let outcome = run_scenario(&scenario, &RunOptions::default(), &mut ())?;
/// let last = outcome.records.last().unwrap();
/// assert_eq!((last.agents, last.trial), (4, 200));
/// // Four learners that share beat one alone.
/// let regret = |n| outcome.records.iter().filter(|r| r.agents == n && r.trial == 200)
///     .filter_map(|r| r.regret_per_agent).sum::<f64>();
/// assert!(regret(4) < regret(1));
/// # Ok::<(), parbayes::Error>(())
/// ```
pub fn run_scenario<T: Workload>(
    scenario: &Scenario<T>,
    options: &RunOptions,
    observer: &mut dyn Observe,
) -> Result<RunOutcome> {
    options.check(scenario)?;
    tokio_runtime(options)?.block_on(run_checked(scenario, options, observer))
}

/// A runtime with `options.threads` workers, for the entry points that
/// bring their own. One worker means a current-thread runtime: the driver
/// and the actors then take turns on the caller's thread, and a round of
/// messages costs no thread wake-up (about 1 µs an ask against 4–7 µs
/// across threads).
pub(crate) fn tokio_runtime(options: &RunOptions) -> Result<tokio::runtime::Runtime> {
    let mut builder = if options.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(options.threads);
        b
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| RuntimeError::Tokio(e.to_string()).into())
}

/// [`run_scenario`] on the caller's tokio runtime (a multi-thread one, for
/// experiments to run in parallel).
pub async fn run_scenario_async<T: Workload, O: Observe + ?Sized>(
    scenario: &Scenario<T>,
    options: &RunOptions,
    observer: &mut O,
) -> Result<RunOutcome> {
    options.check(scenario)?;
    run_checked(scenario, options, observer).await
}

/// [`run_scenario_async`] with `options` already checked against `scenario`.
pub(crate) async fn run_checked<T: Workload, O: Observe + ?Sized>(
    scenario: &Scenario<T>,
    options: &RunOptions,
    observer: &mut O,
) -> Result<RunOutcome> {
    let result = run_experiments(scenario, options, observer).await;
    let finished = observer.on_finish();
    let outcome = result?;
    finished?;
    Ok(outcome)
}

/// [`run_scenario_async`] that stops when `shutdown` completes: every
/// experiment ends its current trial (in lockstep, after writing a
/// checkpoint if `options.continuity` says where) and the run returns
/// [`Error::Interrupted`](crate::Error::Interrupted).
pub async fn run_scenario_until<T: Workload, O: Observe + ?Sized>(
    scenario: &Scenario<T>,
    options: &RunOptions,
    observer: &mut O,
    shutdown: impl Future<Output = ()>,
) -> Result<RunOutcome> {
    let mut options = options.clone();
    let stop = options
        .continuity
        .stop
        .get_or_insert_with(Default::default)
        .clone();
    let run = std::pin::pin!(run_scenario_async(scenario, &options, observer));
    let shutdown = std::pin::pin!(shutdown);
    match futures::future::select(run, shutdown).await {
        futures::future::Either::Left((result, _)) => result,
        futures::future::Either::Right(((), run)) => {
            stop.store(true, Ordering::SeqCst);
            run.await
        }
    }
}

/// Every (agent count, repetition) of `scenario`, in the order their
/// records are released, after telling `observer` how many there are.
pub(crate) fn announce<T: Workload, O: Observe + ?Sized>(
    scenario: &Scenario<T>,
    observer: &mut O,
) -> Result<Vec<(u32, u32)>> {
    let experiments: Vec<(u32, u32)> = scenario
        .run
        .agents
        .iter()
        .flat_map(|&a| (0..scenario.run.reps).map(move |rep| (a, rep)))
        .collect();
    observer.on_start(&RunStart {
        experiments: experiments.len() as u64,
        trials: experiments.len() as u64 * scenario.run.trials,
    })?;
    Ok(experiments)
}

/// Runs the experiments, up to `options.threads` at once, and hands their
/// records to `observer` in (agents, repetition) order, as they would arrive
/// one experiment after another.
async fn run_experiments<T: Workload, O: Observe + ?Sized>(
    scenario: &Scenario<T>,
    options: &RunOptions,
    observer: &mut O,
) -> Result<RunOutcome> {
    let scenario = Arc::new(scenario.clone());
    let experiments = announce(&scenario, observer)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let at_once = options.threads.max(1);
    let permits = Arc::new(Semaphore::new(at_once));
    // Dropped on an early return, which stops every experiment.
    let mut tasks = JoinSet::new();
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
        tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let mut forward = Forward {
                index,
                tx: tx.clone(),
                trials: 0,
            };
            let result = run_one(
                &scenario,
                agents,
                rep,
                cohorts,
                mode,
                &continuity,
                &mut forward,
            )
            .await;
            let _ = tx.send(Event::Done {
                index,
                trials: forward.trials,
                result: result.map(|(_, t)| t),
            });
        });
    }
    drop(tx);

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
        observer.on_trials(trials);
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
        return Err(RuntimeError::StoppedEarly("an experiment").into());
    }
    Ok(outcome)
}

/// One experiment in `mode`: a lockstep one continues from its checkpoint
/// when there is one (a finished one only replays its records).
async fn run_one<T: Workload>(
    scenario: &Scenario<T>,
    agents: u32,
    rep: u32,
    cohorts: usize,
    mode: Mode,
    continuity: &Continuity,
    forward: &mut Forward,
) -> Result<(Vec<TrialRecord>, RunTiming)> {
    match mode {
        Mode::Lockstep => match continuity.checkpoints.read_as(agents, rep)? {
            Some(s) if s.finished => replay_finished(s, forward),
            resume => {
                let cohorts = cohort_ranges(agents, cohorts);
                run_lockstep(scenario, agents, rep, cohorts, forward, continuity, resume).await
            }
        },
        Mode::Async => run_free(scenario, agents, rep, cohorts, forward, continuity).await,
    }
}

/// Emits a finished experiment's records from its checkpoint.
fn replay_finished<S, F: crate::share::Family>(
    s: ExperimentSnapshot<S, F>,
    observer: &mut (dyn Observe + Send),
) -> Result<(Vec<TrialRecord>, RunTiming)> {
    for record in &s.records {
        observer.on_record(record)?;
    }
    observer.on_trials(s.trial);
    let steps = s.records.last().map_or(0, |r| r.step) * u64::from(s.agents);
    let timing = RunTiming {
        agents: s.agents,
        rep: s.rep,
        seconds: s.seconds,
        steps,
        wire: None,
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

/// Passes an experiment's records to the task that owns the observer, with
/// the trials finished since the last one.
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
            .map_err(|_| RuntimeError::StoppedEarly("the run").into())
    }

    fn on_trial(&mut self) {
        self.trials += 1;
    }

    fn on_trials(&mut self, trials: u64) {
        self.trials += trials;
    }
}
