//! # parbayes
//!
//! Parallel Bayesian reinforcement learning by actor message passing, after
//! Barrett, Duggan & Howley, *A parallel framework for Bayesian reinforcement
//! learning*, Connection Science 26(1), 2014.
//!
//! Many learners work the same kind of task at once. Each keeps Dirichlet
//! (Beta, for two outcomes) posteriors over the unknown outcome probabilities
//! of its environment, built from its own experience counts, and tells a
//! global aggregator about a row only when its estimate has drifted from the
//! global one by more than a KL threshold.
//!
//! ```
//! use parbayes::{Overrides, RunOptions, Scenario, run_scenario};
//!
//! let overrides = Overrides { agents: Some(vec![1, 4]), trials: Some(200), ..Overrides::default() };
//! let scenario = Scenario::load("bandit-news".as_ref(), &overrides)?;
//! let outcome = run_scenario(&scenario, &RunOptions::default(), &mut ())?;
//! let last = outcome.records.last().unwrap();
//! assert_eq!((last.agents, last.trial), (4, 200));
//! # Ok::<(), parbayes::Error>(())
//! ```
//!
//! ## Layout
//!
//! Three layers; the arrows point one way.
//!
//! 1. **Core**, synchronous and pure; every random draw takes `rng: &mut R`:
//!    - [`posterior`]: Beta and Dirichlet posteriors, KL divergences;
//!    - [`model`]: the tabular shape, sparse [`model::Evidence`] counts,
//!      explicit MDPs ([`model::Mdp`]), value iteration and policy evaluation;
//!    - [`env`](mod@env): true environments: Bernoulli bandits, the stochastic
//!      GridWorld, tabular MDPs from JSON files, with drift schedules;
//!    - [`policy`]: posterior sampling, ε-greedy, softmax, Bayes-UCB, and
//!      the [`policy::Planner`] that plans on a sampled or mean model;
//!    - [`share`]: share rules, messages, the learner's [`share::Ledger`] and
//!      the [`share::Aggregator`];
//!    - [`learner`]: a learner and a cohort of learners;
//!    - [`metrics`]: model error and the per-trial record;
//!    - [`scenario`]: TOML files checked into a valid [`Scenario`].
//! 2. **Runtime** ([`runtime`]): kameo actors around a cohort and the
//!    aggregator, and the lockstep and free-running (async) drivers.
//! 3. **Output** ([`report`]): the results folder, summary, table and plots;
//!    [`sweep`] runs one scenario under several share rules.
//!
//! The binary `parbayes` parses arguments and calls into these.

pub mod agent;
pub mod env;
pub mod error;
pub mod learner;
pub mod metrics;
pub mod model;
pub mod observe;
pub mod policy;
pub mod posterior;
pub mod report;
pub mod rng;
pub mod runtime;
pub mod scenario;
pub mod share;
pub mod sweep;

pub use agent::{Agent, AgentConfig};
pub use env::Task;
pub use error::{Error, ProtocolError, Result};
pub use model::Structure;
pub use observe::Observe;
pub use runtime::{RunOptions, RunOutcome, run_scenario, run_scenario_async};
pub use scenario::{Overrides, Scenario};
