//! Watching a run as it goes: the [`Observe`] trait, with a no-op default
//! for every hook, so an observer implements only what it needs.

use crate::error::Result;
use crate::record::TrialRecord;

/// What a run is about to do, for progress reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunStart {
    /// Experiments (agent count × repetition × rule) the run will execute.
    pub experiments: u64,
    /// Trials all experiments take together.
    pub trials: u64,
}

/// Watches a run. Records arrive in (agent count, repetition, trial) order
/// whatever the thread count.
///
/// ```
/// use parbayes::record::TrialRecord;
/// use parbayes::{Observe, Overrides, RunOptions, Scenario, run_scenario};
///
/// /// Counts records and keeps the last regret.
/// #[derive(Default)]
/// struct Last { records: usize, regret: f64, finished: bool }
///
/// impl Observe for Last {
///     fn on_record(&mut self, r: &TrialRecord) -> parbayes::Result<()> {
///         self.records += 1;
///         self.regret = r.regret_per_agent.unwrap_or(f64::NAN);
///         Ok(())
///     }
///     fn on_finish(&mut self) -> parbayes::Result<()> {
///         self.finished = true;
///         Ok(())
///     }
/// }
///
/// let overrides = Overrides { agents: Some(vec![2]), reps: Some(1), trials: Some(100), ..Default::default() };
/// let scenario = Scenario::load("bandit-news".as_ref(), &overrides)?;
/// let mut last = Last::default();
/// run_scenario(&scenario, &RunOptions::default(), &mut last)?;
/// // A record every `metrics.record_every` trials.
/// assert_eq!(last.records as u64, 100 / scenario.metrics().record_every());
/// assert!(last.finished && last.regret > 0.0);
/// # Ok::<(), parbayes::Error>(())
/// ```
pub trait Observe {
    /// The run is about to start. An error stops it before anything runs.
    fn on_start(&mut self, _start: &RunStart) -> Result<()> {
        Ok(())
    }

    /// A metrics record is ready. An error stops the run.
    fn on_record(&mut self, _record: &TrialRecord) -> Result<()> {
        Ok(())
    }

    /// One more trial of one experiment finished.
    fn on_trial(&mut self) {}

    /// `trials` more trials finished at once: as many calls of
    /// [`on_trial`](Observe::on_trial), which observers that count (a
    /// progress bar) may do in one step.
    fn on_trials(&mut self, trials: u64) {
        for _ in 0..trials {
            self.on_trial();
        }
    }

    /// The run has ended, finished or not: flush anything buffered.
    fn on_finish(&mut self) -> Result<()> {
        Ok(())
    }
}

impl Observe for () {}

impl<O: Observe + ?Sized> Observe for &mut O {
    fn on_start(&mut self, start: &RunStart) -> Result<()> {
        (**self).on_start(start)
    }

    fn on_record(&mut self, record: &TrialRecord) -> Result<()> {
        (**self).on_record(record)
    }

    fn on_trial(&mut self) {
        (**self).on_trial()
    }

    fn on_trials(&mut self, trials: u64) {
        (**self).on_trials(trials)
    }

    fn on_finish(&mut self) -> Result<()> {
        (**self).on_finish()
    }
}

/// Both observers watch, the first first; an error from either stops the run.
impl<A: Observe, B: Observe> Observe for (A, B) {
    fn on_start(&mut self, start: &RunStart) -> Result<()> {
        self.0.on_start(start)?;
        self.1.on_start(start)
    }

    fn on_record(&mut self, record: &TrialRecord) -> Result<()> {
        self.0.on_record(record)?;
        self.1.on_record(record)
    }

    fn on_trial(&mut self) {
        self.0.on_trial();
        self.1.on_trial();
    }

    fn on_trials(&mut self, trials: u64) {
        self.0.on_trials(trials);
        self.1.on_trials(trials);
    }

    fn on_finish(&mut self) -> Result<()> {
        let first = self.0.on_finish();
        let second = self.1.on_finish();
        first.and(second)
    }
}
