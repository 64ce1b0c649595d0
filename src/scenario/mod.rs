//! Scenario files: raw TOML, checked once into a valid [`Scenario`].
//!
//! Unknown fields are errors. Every error names the file, the field and what
//! is allowed; nothing half-valid reaches a run. [`Scenario::builder`] makes
//! a scenario of any [`Task`] in code, with the same checks.

mod builder;
mod contextual;

pub use builder::ScenarioBuilder;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::agent::AgentConfig;
use crate::env::{
    BernoulliBandit, Environment, GridWorld, IntendedChange, Layout, RateChange, ResponseModel,
    TabularMdp, VmAllocation, VmParams, load_levels,
};
use crate::env::{ContextualEnvironment, Task};
use crate::error::{Error, ParamError, Result, read_text};
use crate::learner::{LearnerConfig, Workload};
use crate::linear::LinearPolicy;
use crate::model::Structure;
use crate::policy::{POLICY_FORMS, Policy, Replan};
use crate::share::{ShareRule, Sharing};

/// The most agents an experiment may have: upper bounds like this keep a
/// typo from allocating the machine away.
pub const MAX_AGENTS: u32 = 100_000;
/// The most arms a bandit may have.
pub const MAX_ARMS: usize = 100_000;
/// The most repetitions.
pub const MAX_REPS: u32 = 100_000;

/// A validated scenario, ready to run: a task, how its learners learn and
/// share, and how the run is laid out. Scenario files give the built-in
/// tasks ([`Environment`]); [`Scenario::builder`] takes any [`Task`].
#[derive(Debug, Clone)]
pub struct Scenario<T: Workload = Environment> {
    /// Its name, used for the results folder.
    pub(crate) name: String,
    /// One line on what it shows.
    pub(crate) description: String,
    /// Where it was read from, for messages.
    pub(crate) source: String,
    /// The task and every learner's configuration.
    pub(crate) learner: T::Config,
    /// Steps between the aggregator's answers (at trial ends in lockstep).
    pub(crate) broadcast_every: u64,
    /// Agent counts, trials, repetitions, seed.
    pub(crate) run: RunPlan,
    /// What is measured, and how often.
    pub(crate) metrics: MetricsPlan,
}

impl<T: Workload> PartialEq for Scenario<T>
where
    T::Config: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.description == other.description
            && self.source == other.source
            && self.learner == other.learner
            && self.broadcast_every == other.broadcast_every
            && self.run == other.run
            && self.metrics == other.metrics
    }
}

/// How a scenario's experiments are laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// Agent counts to run, each a separate experiment.
    pub(crate) agents: Vec<u32>,
    /// Trials per experiment.
    pub(crate) trials: u64,
    /// Steps of every learner per trial (an episode).
    pub(crate) steps_per_trial: u64,
    /// Repetitions per agent count.
    pub(crate) reps: u32,
    /// The seed every learner's stream derives from.
    pub(crate) seed: u64,
    /// Each learner crashes with this probability per trial and is rebuilt
    /// from the aggregator's record (fault injection; lockstep only).
    pub(crate) fault_kill: f64,
}

/// When metrics are recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsPlan {
    /// Metrics are recorded every this many trials and always at the last one.
    pub(crate) record_every: u64,
    /// Convergence is the first recorded trial with model error below this.
    pub(crate) target_model_kl: Option<f64>,
    /// Policy loss is evaluated every this many trials and at the last one
    /// (MDP tasks; a multiple of `record_every`).
    pub(crate) eval_every: Option<u64>,
}

impl MetricsPlan {
    /// Whether trial `trial` of `trials` records metrics, and whether it
    /// also evaluates the policy loss.
    pub fn due(&self, trial: u64, trials: u64) -> (bool, bool) {
        let last = trial == trials;
        let measure = trial.is_multiple_of(self.record_every) || last;
        let evaluate = self
            .eval_every
            .is_some_and(|e| trial.is_multiple_of(e) || last);
        (measure, evaluate)
    }
}

/// Command-line values that replace the file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--agents`.
    pub agents: Option<Vec<u32>>,
    /// `--reps`.
    pub reps: Option<u32>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--trials`.
    pub trials: Option<u64>,
    /// `--share`.
    pub share: Option<Sharing>,
    /// `--policy`, for tabular learners.
    pub policy: Option<Policy>,
    /// `--policy`, for contextual learners (the CLI sets each that parses).
    pub linear_policy: Option<LinearPolicy>,
    /// `--fault-kill`.
    pub fault_kill: Option<f64>,
}

impl Overrides {
    /// Sets `--policy` from its text: as a tabular policy, a contextual
    /// one, or both where the text means one of each (`greedy`); refused if
    /// it is neither.
    ///
    /// ```
    /// let mut o = parbayes::Overrides::default();
    /// o.set_policy("linucb:0.5")?;
    /// assert!(o.policy.is_none() && o.linear_policy.is_some());
    /// assert!(o.set_policy("chess").is_err());
    /// # Ok::<(), parbayes::ParamError>(())
    /// ```
    pub fn set_policy(&mut self, text: &str) -> std::result::Result<(), ParamError> {
        let tabular = text.parse::<Policy>();
        let contextual = text.parse::<LinearPolicy>();
        if let (Err(e), Err(_)) = (&tabular, &contextual) {
            return Err(ParamError::new(
                "policy",
                format!(
                    "{}; contextual learners take {}",
                    e.problem(),
                    crate::linear::LINEAR_POLICY_FORMS
                ),
            ));
        }
        self.policy = tabular.ok();
        self.linear_policy = contextual.ok();
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    task: RawTask,
    #[serde(default)]
    learner: RawLearner,
    #[serde(default)]
    share: RawShare,
    #[serde(default)]
    run: RawRun,
    #[serde(default)]
    metrics: RawMetrics,
}

/// Every task's fields; which ones a kind accepts is checked in
/// [`task`], so a misplaced field is named, not silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    kind: String,
    arms: Option<RawArms>,
    features: Option<usize>,
    theta: Option<Vec<Vec<f64>>>,
    rewards: Option<String>,
    contexts: Option<PathBuf>,
    data: Option<PathBuf>,
    label: Option<String>,
    passes: Option<u64>,
    standardize: Option<bool>,
    #[serde(default)]
    drift: Vec<RawDrift>,
    gamma: Option<f64>,
    size: Option<usize>,
    intended: Option<f64>,
    a: Option<[usize; 2]>,
    a_to: Option<[usize; 2]>,
    b: Option<[usize; 2]>,
    b_to: Option<[usize; 2]>,
    start: Option<RawStart>,
    model: Option<PathBuf>,
    bins: Option<usize>,
    max_ms: Option<f64>,
    max_vms: Option<usize>,
    /// One rate or a list; read as plain TOML so a wrong shape gets our
    /// message, not serde's "did not match any variant".
    demand: Option<toml::Value>,
    per_vm: Option<f64>,
    base_ms: Option<f64>,
    saturation_ms: Option<f64>,
    noise_sigma: Option<f64>,
    response_times: Option<PathBuf>,
    vm_cost: Option<f64>,
    sla_ms: Option<f64>,
    sla_penalty: Option<f64>,
    start_vms: Option<usize>,
    threshold_upper_ms: Option<f64>,
    threshold_lower_ms: Option<f64>,
}

/// `arms`: each arm's success probability (a bandit) or a number of
/// arms (a linear task). Read by hand so that a bad entry of a list is
/// named by its index, as a plain list would be.
#[derive(Debug)]
enum RawArms {
    Rates(Vec<f64>),
    Count(u64),
}

impl<'de> Deserialize<'de> for RawArms {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Arms;
        impl<'de> serde::de::Visitor<'de> for Arms {
            type Value = RawArms;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of success probabilities or a number of arms")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<RawArms, E> {
                u64::try_from(v)
                    .map(RawArms::Count)
                    .map_err(|_| E::custom(format!("{v} arms; use a whole number ≥ 1")))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<RawArms, E> {
                Ok(RawArms::Count(v))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<RawArms, A::Error> {
                let mut rates = Vec::new();
                while let Some(p) = seq.next_element::<f64>()? {
                    rates.push(p);
                }
                Ok(RawArms::Rates(rates))
            }
        }
        d.deserialize_any(Arms)
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawStart {
    Cell([usize; 2]),
    Word(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrift {
    step: Option<u64>,
    trial: Option<u64>,
    scale: Option<f64>,
    #[serde(default)]
    set: Vec<RawArmRate>,
    intended: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArmRate {
    arm: usize,
    p: Option<f64>,
    theta: Option<Vec<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLearner {
    prior: Option<f64>,
    policy: Option<String>,
    forgetting: Option<f64>,
    resample_every: Option<u64>,
    ridge: Option<f64>,
    noise_variance: Option<f64>,
    noise_prior: Option<[f64; 2]>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShare {
    rule: Option<String>,
    check_every: Option<u64>,
    broadcast_every: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    agents: Option<Vec<u32>>,
    trials: Option<u64>,
    steps_per_trial: Option<u64>,
    reps: Option<u32>,
    seed: Option<u64>,
    fault_kill: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    record_every: Option<u64>,
    target_model_kl: Option<f64>,
    eval_every: Option<u64>,
}

/// The scenarios shipped with parbayes, by name.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "bandit-news",
        include_str!("../../scenarios/bandit-news.toml"),
    ),
    (
        "bandit-news-drift",
        include_str!("../../scenarios/bandit-news-drift.toml"),
    ),
    ("gridworld", include_str!("../../scenarios/gridworld.toml")),
    (
        "gridworld-drift",
        include_str!("../../scenarios/gridworld-drift.toml"),
    ),
    (
        "vm-allocation",
        include_str!("../../scenarios/vm-allocation.toml"),
    ),
    ("riverswim", include_str!("../../scenarios/riverswim.toml")),
    (
        "paper-fig2",
        include_str!("../../scenarios/paper-fig2.toml"),
    ),
    (
        "paper-fig3",
        include_str!("../../scenarios/paper-fig3.toml"),
    ),
    (
        "paper-fig4",
        include_str!("../../scenarios/paper-fig4.toml"),
    ),
    (
        "paper-fig6",
        include_str!("../../scenarios/paper-fig6.toml"),
    ),
    ("linear", include_str!("../../scenarios/linear.toml")),
    ("digits", include_str!("../../scenarios/digits.toml")),
];

/// The model and data files the shipped scenarios name, by the path they
/// name them by.
const SHIPPED_MODELS: &[(&str, &str)] = &[
    (
        "models/riverswim.json",
        include_str!("../../scenarios/models/riverswim.json"),
    ),
    ("../data/digits.csv", include_str!("../../data/digits.csv")),
];

/// The text of the model file `model` that the shipped scenario `source`
/// names, if `source` is one.
fn shipped_model(source: &str, model: &Path) -> Option<&'static str> {
    shipped(Path::new(source))?;
    let model = model.to_str()?;
    SHIPPED_MODELS
        .iter()
        .find(|(n, _)| *n == model)
        .map(|(_, t)| *t)
}

impl<T: Workload> Scenario<T> {
    /// Total steps of one learner.
    pub fn steps(&self) -> u64 {
        self.run.trials * self.run.steps_per_trial
    }

    /// Its name, used for the results folder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One line on what it shows.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Where it was read from, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The task and every learner's configuration.
    pub fn learner(&self) -> &T::Config {
        &self.learner
    }

    /// Steps between the aggregator's answers (at trial ends in lockstep).
    pub fn broadcast_every(&self) -> u64 {
        self.broadcast_every
    }

    /// Agent counts, trials, repetitions, seed.
    pub fn run(&self) -> &RunPlan {
        &self.run
    }

    /// What is measured, and how often.
    pub fn metrics(&self) -> &MetricsPlan {
        &self.metrics
    }

    /// The same scenario with every learner configured by `learner` (the
    /// same task, another policy or share rule).
    pub fn with_learner(mut self, learner: T::Config) -> Self {
        self.learner = learner;
        self
    }
}

impl<T: Task> Scenario<T> {
    /// A builder holding this scenario's settings, to change some and check
    /// the result again.
    pub fn to_builder(&self) -> ScenarioBuilder<T> {
        Scenario::builder(self.name.clone(), self.learner.task().clone())
            .description(self.description.clone())
            .agent(self.learner.agent().clone())
            .broadcast_every(self.broadcast_every)
            .agents(self.run.agents.clone())
            .trials(self.run.trials)
            .steps_per_trial(self.run.steps_per_trial)
            .reps(self.run.reps)
            .seed(self.run.seed)
            .fault_kill(self.run.fault_kill)
            .metrics_plan(&self.metrics)
    }
}

impl RunPlan {
    /// Agent counts to run, each a separate experiment.
    pub fn agents(&self) -> &[u32] {
        &self.agents
    }

    /// Trials per experiment.
    pub fn trials(&self) -> u64 {
        self.trials
    }

    /// Steps of every learner per trial (an episode).
    pub fn steps_per_trial(&self) -> u64 {
        self.steps_per_trial
    }

    /// Repetitions per agent count.
    pub fn reps(&self) -> u32 {
        self.reps
    }

    /// The seed every learner's stream derives from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The probability per trial that a learner crashes (fault injection).
    pub fn fault_kill(&self) -> f64 {
        self.fault_kill
    }
}

impl MetricsPlan {
    /// Metrics are recorded every this many trials and at the last one.
    pub fn record_every(&self) -> u64 {
        self.record_every
    }

    /// Convergence is the first recorded trial with model error below this.
    pub fn target_model_kl(&self) -> Option<f64> {
        self.target_model_kl
    }

    /// Policy loss is evaluated every this many trials and at the last one.
    pub fn eval_every(&self) -> Option<u64> {
        self.eval_every
    }
}

impl Scenario {
    /// Reads and validates a scenario file of a tabular task (see
    /// [`AnyScenario::load`] for either kind). The bare name of a shipped
    /// scenario (e.g. `bandit-news`) loads the shipped copy, whatever files
    /// the current directory holds; write `./bandit-news` for a file of that
    /// name.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self> {
        let (text, stem) = read_scenario(path)?;
        Self::parse(&text, &path.display().to_string(), &stem, overrides)
    }

    /// Parses and validates scenario text of a tabular task; `source`
    /// names it in errors (and the files it names are relative to it).
    pub fn parse(
        text: &str,
        source: &str,
        default_name: &str,
        overrides: &Overrides,
    ) -> Result<Self> {
        match AnyScenario::parse(text, source, default_name, overrides)? {
            AnyScenario::Tabular(s) => Ok(s),
            AnyScenario::Contextual(s) => Err(Error::invalid(
                source,
                "task.kind",
                format!(
                    "{} is a contextual task; load it with AnyScenario",
                    crate::learner::SimConfig::kind(&s.learner)
                ),
            )),
        }
    }
}

/// A checked scenario of either family: what a scenario file holds.
///
/// ```
/// use parbayes::scenario::{AnyScenario, Overrides};
///
/// let text = "[task]\nkind = \"linear\"\narms = 3\nfeatures = 4\n";
/// let s = AnyScenario::parse(text, "inline", "inline", &Overrides::default())?;
/// assert!(matches!(s, AnyScenario::Contextual(_)));
/// assert_eq!(s.name(), "inline");
/// # Ok::<(), parbayes::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyScenario {
    /// Counts over a tabular task: bandits, GridWorld, model files, VMs.
    Tabular(Scenario),
    /// Linear regressions over a contextual task.
    Contextual(Scenario<ContextualEnvironment>),
}

impl AnyScenario {
    /// Reads and validates a scenario file of any task (see
    /// [`Scenario::load`] for shipped names).
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self> {
        let (text, stem) = read_scenario(path)?;
        Self::parse(&text, &path.display().to_string(), &stem, overrides)
    }

    /// Parses and validates scenario text; `source` names it in errors
    /// (and the files it names are relative to it).
    pub fn parse(
        text: &str,
        source: &str,
        default_name: &str,
        overrides: &Overrides,
    ) -> Result<Self> {
        let raw = deserialize(text, source)?;
        if contextual::KINDS.contains(&raw.task.kind.as_str()) {
            contextual::validate(raw, source, default_name, overrides).map(Self::Contextual)
        } else {
            validate(raw, source, default_name, overrides).map(Self::Tabular)
        }
    }

    /// Its name, used for the results folder.
    pub fn name(&self) -> &str {
        match self {
            Self::Tabular(s) => s.name(),
            Self::Contextual(s) => s.name(),
        }
    }

    /// One line on what it shows.
    pub fn description(&self) -> &str {
        match self {
            Self::Tabular(s) => s.description(),
            Self::Contextual(s) => s.description(),
        }
    }

    /// Agent counts, trials, repetitions, seed.
    pub fn run(&self) -> &RunPlan {
        match self {
            Self::Tabular(s) => s.run(),
            Self::Contextual(s) => s.run(),
        }
    }
}

/// A scenario file's text (a shipped scenario's by its bare name) and the
/// default name its file stem gives.
fn read_scenario(path: &Path) -> Result<(String, String)> {
    let text = match shipped(path) {
        Some(t) => t.to_string(),
        None => read_text(path, 16 << 20, "a scenario is a TOML file").map_err(|e| match e {
            Error::Read { path, source } if !path.exists() && path.components().count() == 1 => {
                Error::invalid(
                    path.display().to_string(),
                    "(file)",
                    format!(
                        "{source}; not a file, nor a shipped scenario: {}",
                        SHIPPED
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            }
            other => other,
        })?,
    };
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string();
    Ok((text, stem))
}

fn shipped(path: &Path) -> Option<&'static str> {
    let name = path.to_str()?;
    SHIPPED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

fn deserialize(text: &str, source: &str) -> Result<RawScenario> {
    let located = |problem: String, span: Option<std::ops::Range<usize>>| {
        let (line, column) = span.map_or((1, 1), |s| line_col(text, s.start));
        (line, column, problem)
    };
    let de = toml::Deserializer::parse(text).map_err(|e| {
        let (line, column, problem) = located(e.message().to_string(), e.span());
        Error::Syntax {
            source_name: source.into(),
            line,
            column,
            problem,
        }
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let (line, _, problem) = located(one_line(inner.message()), inner.span());
        let field = if path == "." {
            "(top level)".to_string()
        } else {
            path
        };
        Error::invalid(source, field, format!("{problem} (line {line})"))
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Checks that collect the file's name once.
struct Check<'a> {
    source: &'a str,
}

impl Check<'_> {
    fn err(&self, field: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::invalid(self.source, field, problem)
    }

    fn finite(&self, field: &str, v: f64) -> Result<f64> {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.err(field, format!("{v} is not a finite number")))
        }
    }

    fn positive_int(&self, field: &str, v: u64, max: u64) -> Result<u64> {
        if (1..=max).contains(&v) {
            Ok(v)
        } else {
            Err(self.err(
                field,
                format!("{v} is out of range; use a whole number from 1 to {max}"),
            ))
        }
    }
}

fn validate(raw: RawScenario, source: &str, default_name: &str, o: &Overrides) -> Result<Scenario> {
    let c = Check { source };
    let cli = Check {
        source: "command line",
    };
    let (steps_per_trial, trials) = run_length(&raw.run, &c, &cli, o)?;
    let env = task(raw.task, &c, steps_per_trial, trials)?;
    let structure = Structure::of(&env)?;
    let agent = agent_config(&raw.learner, &raw.share, &c, &cli, o, &env, &structure)?;
    let learner = LearnerConfig::from_parts(env, agent, structure);
    let truth = learner.task().truth().is_some();
    let sections = Sections {
        name: raw.name,
        description: raw.description,
        broadcast_every: raw.share.broadcast_every,
        run: raw.run,
        metrics: raw.metrics,
    };
    assemble(
        learner,
        sections,
        &c,
        o,
        default_name,
        (steps_per_trial, trials),
        truth,
    )
}

/// What a scenario of any kind has besides its task and learners.
struct Sections {
    name: Option<String>,
    description: Option<String>,
    broadcast_every: Option<u64>,
    run: RawRun,
    metrics: RawMetrics,
}

/// A scenario of `learner` with the sections every kind shares checked
/// alike: `length` is (steps per trial, trials), and `truth` says whether
/// the task has a true MDP to measure policy loss on.
fn assemble<T: Workload>(
    learner: T::Config,
    s: Sections,
    c: &Check,
    o: &Overrides,
    default_name: &str,
    (steps_per_trial, trials): (u64, u64),
    truth: bool,
) -> Result<Scenario<T>> {
    let cli = Check {
        source: "command line",
    };
    let broadcast_every = c.positive_int(
        "share.broadcast_every",
        s.broadcast_every.unwrap_or(1),
        u64::MAX,
    )?;
    let run = run_plan(&s.run, c, &cli, o, trials, steps_per_trial)?;
    let metrics = metrics_plan(c, trials, &s.metrics, truth)?;
    let name = match s.name {
        Some(n) => {
            check_name(c, &n)?;
            n
        }
        None => default_name.to_string(),
    };
    Ok(Scenario {
        name,
        description: s.description.unwrap_or_default(),
        source: c.source.to_string(),
        learner,
        broadcast_every,
        run,
        metrics,
    })
}

/// Steps per trial and trials, checked together: their product bounds the run.
fn run_length(raw: &RawRun, c: &Check, cli: &Check, o: &Overrides) -> Result<(u64, u64)> {
    let steps_per_trial = c.positive_int(
        "run.steps_per_trial",
        raw.steps_per_trial.unwrap_or(1),
        1_000_000_000,
    )?;
    let trials = match o.trials {
        Some(t) => cli.positive_int("--trials", t, 1_000_000_000)?,
        None => c.positive_int("run.trials", raw.trials.unwrap_or(1000), 1_000_000_000)?,
    };
    if trials
        .checked_mul(steps_per_trial)
        .is_none_or(|s| s > 1_000_000_000_000)
    {
        return Err(c.err(
            "run.steps_per_trial",
            "trials × steps_per_trial exceeds 10¹²",
        ));
    }
    Ok((steps_per_trial, trials))
}

/// The learner and share sections fill the same [`AgentConfig`] builder
/// code uses, which checks the ranges; here only what the file adds (the
/// policy against the task, the replanning period against γ).
fn agent_config(
    raw: &RawLearner,
    share: &RawShare,
    c: &Check,
    cli: &Check,
    o: &Overrides,
    env: &Environment,
    structure: &Structure,
) -> Result<AgentConfig> {
    if o.linear_policy.is_some() && o.policy.is_none() {
        return Err(cli.err(
            "--policy",
            format!("not a policy of tabular learners; use {POLICY_FORMS}"),
        ));
    }
    for (field, set) in [
        ("ridge", raw.ridge.is_some()),
        ("noise_variance", raw.noise_variance.is_some()),
        ("noise_prior", raw.noise_prior.is_some()),
    ] {
        if set {
            return Err(c.err(
                format!("learner.{field}"),
                "a field of the contextual learners (kind = \"linear\" or \"classification\")",
            ));
        }
    }
    let prior = c.finite("learner.prior", raw.prior.unwrap_or(1.0))?;
    let forgetting = c.finite("learner.forgetting", raw.forgetting.unwrap_or(1.0))?;
    let policy = match o.policy {
        Some(p) => p,
        None => match &raw.policy {
            Some(s) => s
                .parse()
                .map_err(|e: ParamError| c.err("learner.policy", e.problem()))?,
            None => Policy::PosteriorSampling,
        },
    };
    if !policy.supports(structure) {
        let (src, field) = if o.policy.is_some() {
            (cli, "--policy")
        } else {
            (c, "learner.policy")
        };
        return Err(src.err(
            field,
            format!("{policy} needs a bandit task with gamma = 0; use {POLICY_FORMS}"),
        ));
    }
    let replan = match raw.resample_every {
        None => Replan::EveryTrial,
        Some(_) if env.gamma() == 0.0 => {
            return Err(c.err(
                "learner.resample_every",
                "applies only when task.gamma > 0; with gamma = 0 every step reads the posterior afresh",
            ));
        }
        Some(k) => Replan::EverySteps(c.positive_int("learner.resample_every", k, u64::MAX)?),
    };
    let sharing = match o.share {
        Some(s) => s,
        None => match &share.rule {
            Some(s) => s
                .parse()
                .map_err(|e: ParamError| c.err("share.rule", e.problem()))?,
            None => ShareRule::Kl(0.01).into(),
        },
    };
    let check_every = c.positive_int(
        "share.check_every",
        share.check_every.unwrap_or(1),
        u64::MAX,
    )?;
    AgentConfig::builder()
        .prior(prior)
        .forgetting(forgetting)
        .policy(policy)
        .sharing(sharing)
        .check_every(check_every)
        .replan(replan)
        .build()
        .map_err(|e| match e {
            Error::Invalid { field, problem, .. } => c.err(format!("learner.{field}"), problem),
            other => other,
        })
}

/// Agent counts, repetitions, seed and fault injection.
fn run_plan(
    raw: &RawRun,
    c: &Check,
    cli: &Check,
    o: &Overrides,
    trials: u64,
    steps_per_trial: u64,
) -> Result<RunPlan> {
    let agents = match &o.agents {
        Some(a) => check_agents(cli, "--agents", a.clone())?,
        None => check_agents(
            c,
            "run.agents",
            raw.agents.clone().unwrap_or_else(|| vec![1, 2, 5, 10]),
        )?,
    };
    let reps = match o.reps {
        Some(r) => cli.positive_int("--reps", r.into(), MAX_REPS.into())? as u32,
        None => c.positive_int("run.reps", raw.reps.unwrap_or(1).into(), MAX_REPS.into())? as u32,
    };
    let (src, field, fault_kill) = match o.fault_kill {
        Some(p) => (cli, "--fault-kill", p),
        None => (c, "run.fault_kill", raw.fault_kill.unwrap_or(0.0)),
    };
    if !(0.0..=1.0).contains(&fault_kill) {
        return Err(src.err(
            field,
            format!("{fault_kill} is not a probability; use a value in [0, 1]"),
        ));
    }
    Ok(RunPlan {
        agents,
        trials,
        steps_per_trial,
        reps,
        seed: o.seed.or(raw.seed).unwrap_or(42),
        fault_kill,
    })
}

/// The metrics section, checked: `truth` says whether the task has a true
/// MDP to measure policy loss on.
fn metrics_plan(c: &Check, trials: u64, raw: &RawMetrics, truth: bool) -> Result<MetricsPlan> {
    let record_every = match raw.record_every {
        Some(r) => c.positive_int("metrics.record_every", r, u64::MAX)?,
        None => trials.div_ceil(1000),
    };
    let target_model_kl = match raw.target_model_kl {
        Some(t) if !(t.is_finite() && t > 0.0) => {
            return Err(c.err(
                "metrics.target_model_kl",
                format!("{t} must be finite and > 0"),
            ));
        }
        t => t,
    };
    let eval_every = match raw.eval_every {
        _ if !truth => {
            if raw.eval_every.is_some() {
                return Err(c.err(
                    "metrics.eval_every",
                    "policy loss is measured on MDP tasks with a known truth; bandits report \
                     regret instead",
                ));
            }
            None
        }
        None => Some(record_every),
        Some(e) => {
            let e = c.positive_int("metrics.eval_every", e, u64::MAX)?;
            if e % record_every != 0 {
                return Err(c.err(
                    "metrics.eval_every",
                    format!("{e} is not a multiple of metrics.record_every = {record_every}"),
                ));
            }
            Some(e)
        }
    };
    Ok(MetricsPlan {
        record_every,
        target_model_kl,
        eval_every,
    })
}

/// The task section, checked for its kind.
fn task(t: RawTask, c: &Check, steps_per_trial: u64, trials: u64) -> Result<Environment> {
    let given = [
        ("arms", t.arms.is_some()),
        ("drift", !t.drift.is_empty()),
        ("gamma", t.gamma.is_some()),
        ("size", t.size.is_some()),
        ("intended", t.intended.is_some()),
        ("a", t.a.is_some()),
        ("a_to", t.a_to.is_some()),
        ("b", t.b.is_some()),
        ("b_to", t.b_to.is_some()),
        ("start", t.start.is_some()),
        ("model", t.model.is_some()),
        ("bins", t.bins.is_some()),
        ("max_ms", t.max_ms.is_some()),
        ("max_vms", t.max_vms.is_some()),
        ("demand", t.demand.is_some()),
        ("per_vm", t.per_vm.is_some()),
        ("base_ms", t.base_ms.is_some()),
        ("saturation_ms", t.saturation_ms.is_some()),
        ("noise_sigma", t.noise_sigma.is_some()),
        ("response_times", t.response_times.is_some()),
        ("vm_cost", t.vm_cost.is_some()),
        ("sla_ms", t.sla_ms.is_some()),
        ("sla_penalty", t.sla_penalty.is_some()),
        ("start_vms", t.start_vms.is_some()),
        ("threshold_upper_ms", t.threshold_upper_ms.is_some()),
        ("threshold_lower_ms", t.threshold_lower_ms.is_some()),
        ("features", t.features.is_some()),
        ("theta", t.theta.is_some()),
        ("rewards", t.rewards.is_some()),
        ("contexts", t.contexts.is_some()),
        ("data", t.data.is_some()),
        ("label", t.label.is_some()),
        ("passes", t.passes.is_some()),
        ("standardize", t.standardize.is_some()),
    ];
    let allowed: &[&str] = match t.kind.as_str() {
        "bandit" => &["arms", "drift"],
        "gridworld" => &[
            "drift", "gamma", "size", "intended", "a", "a_to", "b", "b_to", "start",
        ],
        "tabular" => &["gamma", "model"],
        "vm" => &[
            "gamma",
            "bins",
            "max_ms",
            "max_vms",
            "demand",
            "per_vm",
            "base_ms",
            "saturation_ms",
            "noise_sigma",
            "response_times",
            "vm_cost",
            "sla_ms",
            "sla_penalty",
            "start_vms",
            "threshold_upper_ms",
            "threshold_lower_ms",
        ],
        other => {
            return Err(c.err(
                "task.kind",
                format!(
                    "unknown task `{other}`; use bandit, gridworld, tabular, vm, linear or \
                     classification"
                ),
            ));
        }
    };
    if let Some((field, _)) = given.iter().find(|(f, set)| *set && !allowed.contains(f)) {
        return Err(c.err(
            format!("task.{field}"),
            format!(
                "not a field of a {} task; it takes {}",
                t.kind,
                allowed.join(", ")
            ),
        ));
    }
    let gamma = c.finite("task.gamma", t.gamma.unwrap_or(0.9))?;
    crate::model::check_gamma(gamma)
        .map_err(|p| c.err("task.gamma", format!("{p}; 0.9 is the paper's")))?;
    match t.kind.as_str() {
        "bandit" => bandit(t, c, trials * steps_per_trial).map(Environment::Bandit),
        "gridworld" => gridworld(t, c, gamma, steps_per_trial, trials).map(Environment::GridWorld),
        "vm" => vm(t, c, gamma).map(Environment::Vm),
        _ => tabular(t, c, gamma).map(Environment::Tabular),
    }
}

/// Errors from the environments name their own fields; put them under `task.`.
fn under_task(c: &Check, e: Error) -> Error {
    match e {
        Error::Invalid { field, problem, .. } => c.err(format!("task.{field}"), problem),
        other => other,
    }
}

fn gridworld(
    t: RawTask,
    c: &Check,
    gamma: f64,
    steps_per_trial: u64,
    trials: u64,
) -> Result<GridWorld> {
    let defaults = Layout::default();
    let cell = |v: Option<[usize; 2]>, d: (usize, usize)| v.map_or(d, |[r, c]| (r, c));
    let start = match t.start {
        None => None,
        Some(RawStart::Cell([r, col])) => Some((r, col)),
        Some(RawStart::Word(w)) if w == "random" => None,
        Some(RawStart::Word(w)) => {
            return Err(c.err(
                "task.start",
                format!("`{w}`; use \"random\" or a cell [row, column]"),
            ));
        }
    };
    let layout = Layout {
        size: t.size.unwrap_or(defaults.size),
        a: cell(t.a, defaults.a),
        a_to: cell(t.a_to, defaults.a_to),
        b: cell(t.b, defaults.b),
        b_to: cell(t.b_to, defaults.b_to),
        start,
    };
    let intended = c.finite("task.intended", t.intended.unwrap_or(0.6))?;
    let mut changes = Vec::with_capacity(t.drift.len());
    for (k, d) in t.drift.iter().enumerate() {
        let field = |f: &str| format!("task.drift[{k}].{f}");
        if d.step.is_some() || d.scale.is_some() || !d.set.is_empty() {
            return Err(c.err(
                format!("task.drift[{k}]"),
                "a gridworld change takes `trial` and `intended`",
            ));
        }
        let trial = d
            .trial
            .ok_or_else(|| c.err(field("trial"), "missing; the trial the change starts after"))?;
        let intended = d.intended.ok_or_else(|| {
            c.err(
                field("intended"),
                "missing; the new probability of moving as chosen",
            )
        })?;
        if trial >= trials {
            return Err(c.err(
                field("trial"),
                format!(
                    "{trial} is not before the run's last trial {trials}; \
                     the change would never happen"
                ),
            ));
        }
        changes.push(IntendedChange {
            step: trial.saturating_mul(steps_per_trial),
            intended: c.finite(&field("intended"), intended)?,
        });
    }
    GridWorld::new(layout, intended, changes, gamma).map_err(|e| under_task(c, e))
}

fn vm(t: RawTask, c: &Check, gamma: f64) -> Result<VmAllocation> {
    let f = |field: &str, v: Option<f64>, default: f64| {
        c.finite(&format!("task.{field}"), v.unwrap_or(default))
    };
    let response = match &t.response_times {
        Some(file) => {
            if t.base_ms.is_some() || t.saturation_ms.is_some() || t.noise_sigma.is_some() {
                return Err(c.err(
                    "task.response_times",
                    "replaces base_ms, saturation_ms and noise_sigma; give one or the other",
                ));
            }
            ResponseModel::Empirical(
                load_levels(&beside(c.source, file))
                    .map_err(|e| unreadable(c, "task.response_times", e))?,
            )
        }
        None => ResponseModel::Queue {
            base_ms: f("base_ms", t.base_ms, 50.0)?,
            saturation_ms: f("saturation_ms", t.saturation_ms, 2000.0)?,
            sigma: f("noise_sigma", t.noise_sigma, 0.2)?,
        },
    };
    let number = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
    let demand =
        match &t.demand {
            None => vec![300.0],
            Some(toml::Value::Array(rates)) => rates
                .iter()
                .map(number)
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(|| c.err("task.demand", "every rate in the list must be a number"))?,
            Some(v) => vec![number(v).ok_or_else(|| {
                c.err(
                    "task.demand",
                    format!("{v} is not a rate; give requests per period, or a list of them"),
                )
            })?],
        };
    let max_vms = t.max_vms.unwrap_or(10);
    let sla_ms = f("sla_ms", t.sla_ms, 400.0)?;
    let params = VmParams {
        bins: t.bins.unwrap_or(50),
        max_ms: f("max_ms", t.max_ms, 1000.0)?,
        max_vms,
        demand,
        per_vm: f("per_vm", t.per_vm, 100.0)?,
        response,
        vm_cost: f("vm_cost", t.vm_cost, 1.0)?,
        sla_ms,
        sla_penalty: f("sla_penalty", t.sla_penalty, 20.0)?,
        start_vms: t.start_vms.unwrap_or(max_vms.div_ceil(2)),
        threshold_upper_ms: f("threshold_upper_ms", t.threshold_upper_ms, 0.75 * sla_ms)?,
        threshold_lower_ms: f("threshold_lower_ms", t.threshold_lower_ms, 0.25 * sla_ms)?,
        gamma,
    };
    VmAllocation::new(params).map_err(|e| under_task(c, e))
}

fn tabular(t: RawTask, c: &Check, gamma: f64) -> Result<TabularMdp> {
    let model = t.model.ok_or_else(|| {
        c.err(
            "task.model",
            "missing; the path of a JSON model file, relative to the scenario",
        )
    })?;
    let loaded = match shipped_model(c.source, &model) {
        Some(text) => TabularMdp::parse(text, &model.display().to_string(), gamma),
        None => TabularMdp::load(&beside(c.source, &model), gamma),
    };
    loaded.map_err(|e| unreadable(c, "task.model", e))
}

/// A file the scenario names cannot be read: say which field named it.
fn unreadable(c: &Check, field: &str, e: Error) -> Error {
    match e {
        Error::Read { path, source } => c.err(
            field,
            format!(
                "cannot read {}: {source}; paths are relative to the scenario file",
                path.display()
            ),
        ),
        other => other,
    }
}

/// A path given in a scenario, relative to the scenario file.
fn beside(source: &str, path: &Path) -> PathBuf {
    Path::new(source)
        .parent()
        .map_or(path.to_path_buf(), |dir| dir.join(path))
}

/// `steps`: the run's length, which every scheduled change must fall within.
fn bandit(t: RawTask, c: &Check, steps: u64) -> Result<BernoulliBandit> {
    let missing = || {
        c.err(
            "task.arms",
            "missing; list each arm's success probability, e.g. arms = [0.01, 0.05]",
        )
    };
    let arms = match t.arms.ok_or_else(missing)? {
        RawArms::Rates(r) => r,
        RawArms::Count(_) => return Err(missing()),
    };
    if arms.is_empty() {
        return Err(c.err("task.arms", "no arms; give at least one probability"));
    }
    if arms.len() > MAX_ARMS {
        return Err(c.err(
            "task.arms",
            format!("{} arms; at most {MAX_ARMS}", arms.len()),
        ));
    }
    for (i, p) in arms.iter().enumerate() {
        if !(0.0..=1.0).contains(p) {
            return Err(c.err(
                format!("task.arms[{i}]"),
                format!("{p} is not a probability; use a value in [0, 1]"),
            ));
        }
    }
    let mut changes = Vec::with_capacity(t.drift.len());
    for (k, d) in t.drift.iter().enumerate() {
        if d.trial.is_some() || d.intended.is_some() {
            return Err(c.err(
                format!("task.drift[{k}]"),
                "a bandit change takes `step`, `scale` and `set`",
            ));
        }
        let step = d.step.ok_or_else(|| {
            c.err(
                format!("task.drift[{k}].step"),
                "missing; the pull the change happens at",
            )
        })?;
        if step >= steps {
            return Err(c.err(
                format!("task.drift[{k}].step"),
                format!("{step} is beyond the run's {steps} steps; the change would never happen"),
            ));
        }
        let scale = c.finite(&format!("task.drift[{k}].scale"), d.scale.unwrap_or(1.0))?;
        if scale < 0.0 {
            return Err(c.err(
                format!("task.drift[{k}].scale"),
                format!("{scale} is negative; use a factor ≥ 0"),
            ));
        }
        let mut set = Vec::with_capacity(d.set.len());
        for (j, s) in d.set.iter().enumerate() {
            if s.arm >= arms.len() {
                return Err(c.err(
                    format!("task.drift[{k}].set[{j}].arm"),
                    format!(
                        "arm {} does not exist; arms are 0 to {}",
                        s.arm,
                        arms.len() - 1
                    ),
                ));
            }
            let field = |f: &str| format!("task.drift[{k}].set[{j}].{f}");
            if s.theta.is_some() {
                return Err(c.err(field("theta"), "a bandit arm takes a new `p`"));
            }
            let p =
                s.p.ok_or_else(|| c.err(field("p"), "missing; the arm's new success probability"))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(c.err(
                    field("p"),
                    format!("{p} is not a probability; use a value in [0, 1]"),
                ));
            }
            set.push((s.arm, p));
        }
        changes.push(RateChange { step, scale, set });
    }
    BernoulliBandit::new(arms, changes).map_err(|e| under_task(c, e))
}

/// A scenario's name names its results folder: a plain file name.
fn check_name(c: &Check, name: &str) -> Result<()> {
    const MOST: usize = 100;
    let problem = if name.trim().is_empty() {
        "empty; give the scenario a name"
    } else if name.chars().count() > MOST {
        "longer than 100 characters"
    } else if name.contains(['/', '\\'])
        || name.starts_with('.')
        || name.chars().any(char::is_control)
    {
        "holds a path separator, a control character or a leading `.`; it names the results \
         folder, so use letters, digits, `-` and `_`"
    } else {
        return Ok(());
    };
    Err(c.err("name", problem))
}

fn check_agents(c: &Check, field: &str, agents: Vec<u32>) -> Result<Vec<u32>> {
    if agents.is_empty() {
        return Err(c.err(field, "empty; give at least one agent count, e.g. [1, 10]"));
    }
    if let Some(a) = agents
        .iter()
        .enumerate()
        .find_map(|(i, a)| agents[..i].contains(a).then_some(a))
    {
        return Err(c.err(
            field,
            format!("{a} agents is listed twice; each agent count runs once (use reps for more)"),
        ));
    }
    if let Some(a) = agents.iter().find(|a| !(1..=MAX_AGENTS).contains(*a)) {
        return Err(c.err(
            field,
            format!("{a} agents is out of range; use 1 to {MAX_AGENTS}"),
        ));
    }
    Ok(agents)
}

/// Where a results folder goes by default: `results/<scenario>-<UTC time>`.
pub fn default_results_dir<T: Workload>(scenario: &Scenario<T>) -> PathBuf {
    let now = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    PathBuf::from("results").join(format!("{}-{now}", scenario.name))
}
