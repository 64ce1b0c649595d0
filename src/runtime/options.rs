//! How a run is executed, and what it produced: options checked once
//! against the scenario (threads, mode, memory), outcomes and timings.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::checkpoint::Checkpoints;
use crate::error::{Error, Result};
use crate::learner::{SimConfig, Workload};
use crate::record::TrialRecord;
use crate::scenario::Scenario;

/// How to execute a run. In lockstep nothing here changes the results; the
/// async mode trades reproducibility for speed.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Tokio worker threads ([`run_scenario`](crate::run_scenario) only; the async entry points
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
    pub fn check<T: Workload>(&self, scenario: &Scenario<T>) -> Result<()> {
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(Error::invalid(
                "run options",
                "threads",
                format!("{}; use 1 to {MAX_THREADS}", self.threads),
            ));
        }
        if self.mode == Mode::Async {
            check_async(scenario)?;
        }
        check_memory(scenario, self.threads)
    }

    pub(super) fn cohorts_for(&self, agents: u32) -> usize {
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

/// Refuses a run whose learners, at `threads` experiments at once, would
/// need more memory than the machine has.
fn check_memory<T: Workload>(scenario: &Scenario<T>, threads: usize) -> Result<()> {
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
    let need = at_once.saturating_mul(scenario.learner.learner_bytes());
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

/// Refuses a scenario the async mode cannot run.
fn check_async<T: Workload>(scenario: &Scenario<T>) -> Result<()> {
    if scenario.run.fault_kill > 0.0 {
        return Err(Error::invalid(
            &scenario.source,
            "run.fault_kill",
            "fault injection needs the lockstep mode, which rebuilds a crashed learner \
             between trials; use --mode lockstep",
        ));
    }
    if scenario.learner.forgetting() < 1.0 {
        return Err(Error::invalid(
            &scenario.source,
            "learner.forgetting",
            "the async mode cannot forget yet: free-running learners decay at different \
             times, which the aggregator cannot mirror; use --mode lockstep",
        ));
    }
    Ok(())
}
