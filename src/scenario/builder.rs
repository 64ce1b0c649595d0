use super::{
    Check, MetricsPlan, Overrides, RawMetrics, RawRun, Scenario, check_name, metrics_plan,
    run_length, run_plan,
};
use crate::agent::AgentConfig;
use crate::env::Task;
use crate::error::Result;
use crate::learner::LearnerConfig;

/// Builds a [`Scenario`] of any [`Task`] in code, with the checks and the
/// defaults a scenario file gets: agent counts 1, 2, 5 and 10, 1000 trials
/// of one step, one repetition, seed 42, the default [`AgentConfig`].
/// Errors name the field as a scenario file would (`run.trials`).
///
/// ```
/// use parbayes::env::{BernoulliBandit, Environment};
/// use parbayes::Scenario;
///
/// let coin = Environment::Bandit(BernoulliBandit::new(vec![0.2, 0.6], vec![])?);
/// let scenario = Scenario::builder("two-coins", coin.clone())
///     .agents([1, 3])
///     .trials(50)
///     .build()?;
/// assert_eq!(scenario.run().agents(), [1, 3]);
/// assert!(Scenario::builder("two-coins", coin).trials(0).build().is_err());
/// # Ok::<(), parbayes::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ScenarioBuilder<T: Task> {
    name: String,
    description: String,
    task: T,
    agent: AgentConfig,
    broadcast_every: u64,
    agents: Vec<u32>,
    trials: u64,
    steps_per_trial: u64,
    reps: u32,
    seed: u64,
    fault_kill: f64,
    metrics: RawMetrics,
}

impl<T: Task> Scenario<T> {
    /// A builder of a scenario named `name` (it names the results folder)
    /// around `task`.
    pub fn builder(name: impl Into<String>, task: T) -> ScenarioBuilder<T> {
        ScenarioBuilder {
            name: name.into(),
            description: String::new(),
            task,
            agent: AgentConfig::default(),
            broadcast_every: 1,
            agents: vec![1, 2, 5, 10],
            trials: 1000,
            steps_per_trial: 1,
            reps: 1,
            seed: 42,
            fault_kill: 0.0,
            metrics: RawMetrics::default(),
        }
    }
}

impl<T: Task> ScenarioBuilder<T> {
    /// One line on what the scenario shows.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// How every learner learns, decides and shares.
    pub fn agent(mut self, config: AgentConfig) -> Self {
        self.agent = config;
        self
    }

    /// Steps between the aggregator's answers (≥ 1; default 1).
    pub fn broadcast_every(mut self, steps: u64) -> Self {
        self.broadcast_every = steps;
        self
    }

    /// The agent counts to run, each a separate experiment.
    pub fn agents(mut self, counts: impl Into<Vec<u32>>) -> Self {
        self.agents = counts.into();
        self
    }

    /// Trials per experiment.
    pub fn trials(mut self, trials: u64) -> Self {
        self.trials = trials;
        self
    }

    /// Steps per trial (an episode).
    pub fn steps_per_trial(mut self, steps: u64) -> Self {
        self.steps_per_trial = steps;
        self
    }

    /// Repetitions per agent count.
    pub fn reps(mut self, reps: u32) -> Self {
        self.reps = reps;
        self
    }

    /// The seed of every learner's stream.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Fault injection: each learner crashes with this probability per
    /// trial and is rebuilt from the aggregator's record (lockstep).
    pub fn fault_kill(mut self, p: f64) -> Self {
        self.fault_kill = p;
        self
    }

    /// Record metrics every this many trials, and at the last (default:
    /// about a thousand records per experiment).
    pub fn record_every(mut self, trials: u64) -> Self {
        self.metrics.record_every = Some(trials);
        self
    }

    /// Evaluate policy loss every this many trials (a multiple of
    /// `record_every`; tasks with a [`truth`](Task::truth) only).
    pub fn eval_every(mut self, trials: u64) -> Self {
        self.metrics.eval_every = Some(trials);
        self
    }

    /// Report the first recorded trial whose model error falls below this.
    pub fn target_model_kl(mut self, target: f64) -> Self {
        self.metrics.target_model_kl = Some(target);
        self
    }

    /// Records, evaluates and targets as `plan` does.
    pub(crate) fn metrics_plan(mut self, plan: &MetricsPlan) -> Self {
        self.metrics = RawMetrics {
            record_every: Some(plan.record_every),
            target_model_kl: plan.target_model_kl,
            eval_every: plan.eval_every,
        };
        self
    }

    /// The checked scenario.
    pub fn build(self) -> Result<Scenario<T>> {
        let source = format!("scenario `{}`", self.name);
        let c = Check { source: &source };
        check_name(&c, &self.name)?;
        // The same gates a scenario file passes, with nothing overridden.
        let raw = RawRun {
            agents: Some(self.agents),
            trials: Some(self.trials),
            steps_per_trial: Some(self.steps_per_trial),
            reps: Some(self.reps),
            seed: Some(self.seed),
            fault_kill: Some(self.fault_kill),
        };
        let none = Overrides::default();
        let (steps_per_trial, trials) = run_length(&raw, &c, &c, &none)?;
        let run = run_plan(&raw, &c, &c, &none, trials, steps_per_trial)?;
        let broadcast_every =
            c.positive_int("share.broadcast_every", self.broadcast_every, u64::MAX)?;
        let metrics = metrics_plan(&c, trials, &self.metrics, self.task.truth().is_some())?;
        let learner = LearnerConfig::new(self.task, self.agent)?;
        Ok(Scenario {
            name: self.name,
            description: self.description,
            source,
            learner,
            broadcast_every,
            run,
            metrics,
        })
    }
}
