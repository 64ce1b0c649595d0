//! The record keeping every driver shares: trial t is released once every
//! cohort has finished it, and recorded with the learners' metrics as of
//! their trial t and the global estimate as of that moment.

use std::collections::BTreeMap;

use super::options::RunTiming;
use crate::error::Result;
use crate::learner::LearnerMetrics;
use crate::learner::{SimConfig, Workload};
use crate::model::Evidence;
use crate::observe::Observe;
use crate::record::{RecordKey, TrialRecord, Window};
use crate::scenario::Scenario;
use crate::share::Traffic;

/// One experiment's records, in trial order.
pub(crate) struct TrialRecorder<T: Workload> {
    key: RecordKey,
    /// The task as the metrics see it, advanced to the last recorded trial.
    truth: <T::Config as SimConfig>::Task,
    config: T::Config,
    steps_per_trial: u64,
    trials: u64,
    window: Window,
    records: Vec<TrialRecord>,
    /// Metrics of trials not yet released, by trial and then by the first
    /// learner id of the cohort that measured them, so that a record lists
    /// learners in id order whatever order the cohorts report in.
    held: BTreeMap<u64, BTreeMap<u32, Vec<LearnerMetrics>>>,
    /// Trials released so far.
    released: u64,
}

impl<T: Workload> TrialRecorder<T> {
    /// Nothing recorded yet of experiment (`agents`, `rep`).
    pub(crate) fn new(scenario: &Scenario<T>, agents: u32, rep: u32) -> Self {
        let config = &scenario.learner;
        Self {
            key: RecordKey::new(agents, config, rep),
            truth: config.task().clone(),
            config: config.clone(),
            steps_per_trial: scenario.run.steps_per_trial,
            trials: scenario.run.trials,
            window: Window::default(),
            records: Vec::new(),
            held: BTreeMap::new(),
            released: 0,
        }
    }

    /// Continues after `records` (a checkpoint's), whose last trial is
    /// `released`, with the regret window as it was.
    pub(crate) fn resume(&mut self, records: Vec<TrialRecord>, window: Window, released: u64) {
        self.records = records;
        self.window = window;
        self.released = released;
    }

    /// Keeps the metrics that the cohort whose first learner is `first`
    /// measured at the end of `trial`, until every cohort has finished it.
    /// Metrics of a trial already released (resent after a restart) are
    /// dropped.
    pub(crate) fn hold(&mut self, trial: u64, first: u32, metrics: Vec<LearnerMetrics>) {
        if trial > self.released {
            self.held.entry(trial).or_default().insert(first, metrics);
        }
    }

    /// Releases the next trial that every cohort has finished (the slowest
    /// has reached `slowest`), telling `observer`, and returns it with its
    /// learners' metrics once one is held; `None` when nothing more is due.
    /// The caller fetches the global estimate and [`record`](Self::record)s it.
    pub(crate) fn next_due(
        &mut self,
        slowest: u64,
        observer: &mut (dyn Observe + Send),
    ) -> Option<(u64, Vec<LearnerMetrics>)> {
        while self.released < slowest.min(self.trials) {
            self.released += 1;
            observer.on_trial();
            if let Some(parts) = self.held.remove(&self.released) {
                return Some((self.released, parts.into_values().flatten().collect()));
            }
        }
        None
    }

    /// Records trial `trial`: the learners' `metrics` (in id order), the
    /// aggregator's `global` estimate and `traffic` at its end.
    pub(crate) fn record(
        &mut self,
        trial: u64,
        metrics: &[LearnerMetrics],
        global: &Evidence,
        traffic: Traffic,
        observer: &mut (dyn Observe + Send),
    ) -> Result<()> {
        let step = (trial * self.steps_per_trial).saturating_sub(1);
        let global_kl = self.config.global_error(&mut self.truth, step, global);
        let record = TrialRecord::measure(
            &self.key,
            trial,
            metrics,
            global_kl,
            traffic,
            &mut self.window,
        );
        observer.on_record(&record)?;
        self.records.push(record);
        Ok(())
    }

    /// Trials released so far.
    pub(crate) fn released(&self) -> u64 {
        self.released
    }

    /// The records so far.
    pub(crate) fn records(&self) -> &[TrialRecord] {
        &self.records
    }

    /// The regret window, for a checkpoint.
    pub(crate) fn window(&self) -> &Window {
        &self.window
    }

    /// The records, and the experiment's timing from its wall-clock
    /// `seconds` and the `wire` bytes when it crossed processes.
    pub(crate) fn finish(
        self,
        seconds: f64,
        wire: Option<crate::share::WireTraffic>,
    ) -> (Vec<TrialRecord>, RunTiming) {
        let timing = RunTiming {
            agents: self.key.agents,
            rep: self.key.rep,
            seconds,
            steps: self.trials * self.steps_per_trial * u64::from(self.key.agents),
            wire,
        };
        (self.records, timing)
    }
}
