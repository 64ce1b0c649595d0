use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::future::join_all;
use kameo::error::SendError;
use kameo::prelude::*;
use kameo::supervision::RestartPolicy;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::aggregator::{AggregatorActor, Fold, Recover, SaveAggregator};
use super::checkpoint::{Checkpoints, ExperimentSnapshot};
use super::cohort::{CohortActor, Crash, Ping, RunTrial, SaveCohort, Supervisor};
use super::free::run_free;
use crate::env::Task;
use crate::error::{Error, Result};
use crate::learner::{Cohort, LearnerState, LearnerStats, crashed};
use crate::metrics::evidence_error;
use crate::observe::{Observe, RunStart};
use crate::record::{RecordKey, TrialRecord, Window};
use crate::scenario::Scenario;
use crate::share::{Aggregator, OthersUpdate, Recovery, Schedule};

/// How to execute a run. In lockstep nothing here changes the results; the
/// async mode trades reproducibility for speed.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Tokio worker threads ([`run_scenario`] only; the async entry points
    /// run on the caller's runtime). Also how many experiments run at once.
    pub threads: usize,
    /// Learner actors per experiment; 0 picks four per thread.
    pub cohorts: usize,
    /// Lockstep or free-running.
    pub mode: Mode,
    /// Checkpoints and the stop flag (lockstep only).
    pub continuity: Continuity,
}

/// Whether learners wait for each other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
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
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS);
        Self {
            threads,
            cohorts: 0,
            mode: Mode::Lockstep,
            continuity: Continuity::default(),
        }
    }
}

/// The most tokio worker threads a run may ask for.
pub const MAX_THREADS: usize = 256;

impl RunOptions {
    /// Checks that these options can run `scenario`, before anything is
    /// built or written: a sane thread count, a mode that supports the
    /// scenario (the async mode neither injects faults nor forgets), and a
    /// run whose learners fit in the machine's memory.
    pub fn check<T: Task>(&self, scenario: &Scenario<T>) -> Result<()> {
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(Error::invalid(
                "run options",
                "threads",
                format!("{}; use 1 to {MAX_THREADS}", self.threads),
            ));
        }
        if self.mode == Mode::Async {
            super::free::check_async(scenario)?;
        }
        check_memory(scenario, self.threads)
    }

    fn cohorts_for(&self, agents: u32) -> usize {
        let wanted = if self.cohorts == 0 {
            4 * self.threads.max(1)
        } else {
            self.cohorts
        };
        wanted.clamp(1, agents as usize)
    }
}

/// Wall-clock cost of one experiment (kept apart from the results, which
/// must not depend on it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunTiming {
    /// The experiment's agent count.
    pub agents: u32,
    /// Its repetition.
    pub rep: u32,
    /// Wall-clock seconds it took.
    pub seconds: f64,
    /// Steps taken by all learners together.
    pub steps: u64,
    /// What crossed the wire, when the learners lived in other processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wire: Option<crate::share::WireTraffic>,
}

/// Everything a run produced.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    /// Every record, in (agents, repetition, trial) order.
    pub records: Vec<TrialRecord>,
    /// Each experiment's cost, in the same order.
    pub timings: Vec<RunTiming>,
    /// How it ran.
    pub mode: Mode,
}

/// What a lockstep experiment needs beyond the scenario: where to write
/// checkpoints, and a stop flag.
#[derive(Debug, Clone, Default)]
pub struct Continuity {
    /// Where checkpoints go, how often, and whether to continue from them.
    pub checkpoints: Checkpoints,
    /// Set it to stop every experiment at the end of its current trial,
    /// after writing a checkpoint; the run then returns
    /// [`Error::Interrupted`].
    pub stop: Option<Arc<AtomicBool>>,
}

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
pub fn run_scenario<T: Task>(
    scenario: &Scenario<T>,
    options: &RunOptions,
    observer: &mut dyn Observe,
) -> Result<RunOutcome> {
    options.check(scenario)?;
    tokio_runtime(options)?.block_on(run_scenario_async(scenario, options, observer))
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
        .map_err(|e| Error::Runtime(format!("cannot start tokio: {e}")))
}

/// [`run_scenario`] on the caller's tokio runtime (a multi-thread one, for
/// experiments to run in parallel).
pub async fn run_scenario_async<T: Task, O: Observe + ?Sized>(
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
/// [`Error::Interrupted`].
pub async fn run_scenario_until<T: Task, O: Observe + ?Sized>(
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

/// An upper bound on the bytes one learner of `structure` holds, with every
/// row touched: four evidence stores on its side, and at the aggregator its
/// contribution and what a KL-gated downlink last told it, and a planning
/// model if it plans.
pub fn learner_bytes(structure: &crate::model::Structure) -> u64 {
    let shape = structure.shape();
    let (rows, outcomes) = (shape.rows() as u64, shape.outcomes as u64);
    let evidence = rows * (8 + 8 * outcomes);
    let planner = if structure.gamma() > 0.0 {
        rows * (8 * outcomes + 24)
    } else {
        0
    };
    6 * evidence + 40 * rows + planner + 2048
}

/// Refuses a run whose learners, at `threads` experiments at once, would
/// need more memory than the machine has.
fn check_memory<T: Task>(scenario: &Scenario<T>, threads: usize) -> Result<()> {
    let Some(total) = machine_memory() else {
        return Ok(());
    };
    let mut agents = scenario.run.agents.clone();
    agents.sort_unstable_by(|a, b| b.cmp(a));
    // Repetitions of the largest agent counts may run side by side.
    let at_once: u64 = agents
        .iter()
        .flat_map(|&a| std::iter::repeat_n(u64::from(a), scenario.run.reps as usize))
        .take(threads)
        .sum();
    let need = at_once.saturating_mul(learner_bytes(scenario.learner.structure()));
    if need > total {
        let gb = |b: u64| b as f64 / 1e9;
        return Err(Error::invalid(
            &scenario.source,
            "run.agents",
            format!(
                "{at_once} learners at once need up to {:.1} GB; this machine has {:.1} GB; use \
                 fewer agents or fewer threads",
                gb(need),
                gb(total)
            ),
        ));
    }
    Ok(())
}

/// The machine's memory in bytes, where the system says (Linux).
fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs the experiments, up to `options.threads` at once, and hands their
/// records to `observer` in (agents, repetition) order, as they would arrive
/// one experiment after another.
async fn run_experiments<T: Task, O: Observe + ?Sized>(
    scenario: &Scenario<T>,
    options: &RunOptions,
    observer: &mut O,
) -> Result<RunOutcome> {
    options.check(scenario)?;
    let scenario = Arc::new(scenario.clone());
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
            let result = match mode {
                Mode::Lockstep => match continuity.checkpoints.read(agents, rep) {
                    Ok(Some(s)) if s.finished => replay_finished(s, &mut forward),
                    Ok(resume) => {
                        let cohorts = cohort_ranges(agents, cohorts);
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
                Mode::Async => {
                    run_free(&scenario, agents, rep, cohorts, &mut forward, &continuity).await
                }
            };
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
        return Err(Error::Runtime(
            "an experiment stopped without reporting".into(),
        ));
    }
    Ok(outcome)
}

/// Emits a finished experiment's records from its checkpoint.
fn replay_finished(
    s: ExperimentSnapshot,
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
            .map_err(|_| Error::Runtime("the run was abandoned".into()))
    }

    fn on_trial(&mut self) {
        self.trials += 1;
    }

    fn on_trials(&mut self, trials: u64) {
        self.trials += trials;
    }
}

/// `agents` learner ids split into at most `cohorts` contiguous blocks.
pub(crate) fn cohort_ranges(agents: u32, cohorts: usize) -> Vec<Range<u32>> {
    let n = agents as usize;
    let k = cohorts.clamp(1, n.max(1));
    (0..k)
        .map(|c| (c * n / k) as u32..((c + 1) * n / k) as u32)
        .collect()
}

/// The cohort that holds learner `learner`.
fn cohort_of(ranges: &[Range<u32>], learner: u32) -> usize {
    ranges.partition_point(|r| r.end <= learner)
}

/// One experiment in lockstep: every trial, each cohort applies the
/// aggregator's last answers and steps its learners; the driver hands their
/// share messages to the aggregator in learner-id order, when the protocol's
/// [`Schedule`] says. The same scenario, seed and repetition give the same
/// records on any thread count and cohort split, and a run resumed from a
/// checkpoint gives the same records as one never stopped.
pub async fn run_lockstep<T: Task>(
    scenario: &Scenario<T>,
    agents: u32,
    rep: u32,
    cohorts: Vec<Range<u32>>,
    observer: &mut (dyn Observe + Send),
    continuity: &Continuity,
    resume: Option<ExperimentSnapshot>,
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
    let timing = RunTiming {
        agents,
        rep,
        seconds,
        steps: plan.trials * plan.steps_per_trial * u64::from(agents),
        wire: None,
    };
    Ok((state.records, timing))
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
fn batch<T: Task>(
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
struct Actors<T: Task> {
    cohorts: Vec<ActorRef<CohortActor<T>>>,
    aggregator: ActorRef<AggregatorActor>,
    supervisor: Option<ActorRef<Supervisor>>,
}

impl<T: Task> Actors<T> {
    /// One actor per cohort (under a supervisor that restarts crashed ones
    /// if `faults`), and the aggregator.
    async fn spawn(cohorts: Vec<Cohort<T>>, aggregator: Aggregator, faults: bool) -> Self {
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
        actor
            .tell(Crash)
            .await
            .map_err(|e| Error::Runtime(format!("cannot crash learner {v}: {e:?}")))?;
        for _ in 0..100_000 {
            if actor.ask(Ping).await.is_ok() {
                return Ok(());
            }
            tokio::task::yield_now().await;
        }
        Err(Error::Runtime(format!(
            "learner {v} was not restarted after its crash"
        )))
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
    Error::Runtime(format!("learner cohort failed: {e:?}"))
}

fn aggregator_failed<E: std::fmt::Debug>(e: E) -> Error {
    Error::Runtime(format!("aggregator failed: {e:?}"))
}

/// The driver's side of a lockstep experiment: everything a checkpoint
/// keeps besides the learners and the aggregator.
struct Lockstep<T: Task> {
    agents: u32,
    rep: u32,
    ranges: Vec<Range<u32>>,
    key: RecordKey,
    /// The task as the metrics see it, advanced to the current trial.
    truth: T,
    schedule: Schedule,
    window: Window,
    records: Vec<TrialRecord>,
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

impl<T: Task> Lockstep<T> {
    fn new(scenario: &Scenario<T>, agents: u32, rep: u32, ranges: Vec<Range<u32>>) -> Self {
        let config = &scenario.learner;
        Self {
            agents,
            rep,
            key: RecordKey::new(agents, config, rep),
            truth: config.task().clone(),
            schedule: Schedule::new(
                scenario.broadcast_every,
                scenario.run.steps_per_trial,
                config.agent().forgetting(),
            ),
            window: Window::default(),
            records: Vec::new(),
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
    fn start(
        scenario: &Scenario<T>,
        agents: u32,
        rep: u32,
        ranges: Vec<Range<u32>>,
    ) -> (Self, Vec<Cohort<T>>, Aggregator) {
        let config = &scenario.learner;
        let cohorts = ranges
            .iter()
            .map(|r| Cohort::new(config, scenario.run.seed, rep, r.clone()))
            .collect();
        let aggregator = Aggregator::new(config.structure().shape(), agents as usize)
            .with_downlink(config.agent().downlink())
            .with_prior(config.agent().prior());
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
        s: ExperimentSnapshot,
        observer: &mut (dyn Observe + Send),
    ) -> Result<(Self, Vec<Cohort<T>>, Aggregator)> {
        let mut state = Self::new(scenario, agents, rep, ranges);
        state.trial = s.trial;
        state.seconds_before = s.seconds;
        state.on_disk = (s.records_count, s.records_bytes);
        state.schedule = s.schedule;
        state.window = s.window;
        for update in s.pending {
            let c = cohort_of(&state.ranges, update.learner);
            state.pending[c].push(update);
        }
        for record in s.records {
            observer.on_record(&record)?;
            state.records.push(record);
        }
        observer.on_trials(s.trial);
        state.stats = s.learners.iter().map(LearnerState::stats).collect();
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
            .collect();
        let aggregator = s.aggregator.ok_or_else(|| {
            Error::Runtime("a checkpoint of an unfinished run lacks its aggregator".into())
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
                    return Err(Error::Runtime(format!(
                        "trial {trial} had answers for learners inside a batch of trials"
                    )));
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
                    self.truth
                        .advance_to((trial * plan.steps_per_trial).saturating_sub(1));
                    let prior = scenario.learner.agent().prior();
                    let global_kl = evidence_error(&self.truth, prior, &global);
                    let record = TrialRecord::measure(
                        &self.key,
                        trial,
                        &learners,
                        global_kl,
                        folded.traffic,
                        &mut self.window,
                    );
                    observer.on_record(&record)?;
                    self.records.push(record);
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
    ) -> Result<ExperimentSnapshot> {
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
    fn finished(&mut self, checkpoints: &Checkpoints, seconds: f64) -> Result<ExperimentSnapshot> {
        let new = &self.records[self.on_disk.0 as usize..];
        self.on_disk = checkpoints.append_records(self.agents, self.rep, self.on_disk, new)?;
        Ok(ExperimentSnapshot {
            agents: self.agents,
            rep: self.rep,
            trial: self.trial,
            learners: Vec::new(),
            aggregator: None,
            pending: Vec::new(),
            schedule: self.schedule,
            window: self.window,
            records: Vec::new(),
            records_count: self.on_disk.0,
            records_bytes: self.on_disk.1,
            finished: true,
            seconds,
        })
    }
}
