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
//! It is used three ways: `parbayes run` on a scenario with N agents,
//! `parbayes sweep` to chart communication against accuracy, and as this
//! library, to embed agents that decide locally and share through an
//! aggregator.
//!
//! ## An application's agents
//!
//! An [`Agent`] is a learner without an environment: the application asks
//! it for decisions and tells it what happened whenever it learns (late, out
//! of order, in batches). Agents share through an
//! [`Aggregator`] that learners join and leave.
//!
//! ```
//! use parbayes::share::ShareRule;
//! use parbayes::{Agent, AgentConfig, Structure};
//!
//! let articles = Structure::bandit(20)?;
//! let config = AgentConfig::builder().share(ShareRule::Periodic(100)).build()?;
//! let mut aggregator = config.aggregator(&articles, 0);
//! let mut agent = Agent::new(&articles, &config, aggregator.join(), 42)?;
//!
//! for _ in 0..100 {
//!     let article = agent.decide(0)?;
//!     let clicked = article == 9; // the application's own feedback
//!     agent.observe_click(article, clicked)?;
//! }
//! let message = agent.share().expect("100 observations: `periodic:100` sends");
//! aggregator.receive(&message)?;
//! assert_eq!(aggregator.traffic().messages_up, 1);
//! # Ok::<(), parbayes::Error>(())
//! ```
//!
//! ## Experiments
//!
//! A simulated [`learner::Learner`] is an agent plus its own copy of a
//! [`Task`]; a [`Scenario`] says which task, how many learners, how long;
//! [`run_scenario`] runs it on kameo actors and [`report::run_in_folder`]
//! writes the results folder. Scenario files describe the built-in tasks;
//! [`Scenario::builder`] takes a task of your own.
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
//!    - [`model`]: the tabular shape, what a learner knows of its task
//!      ([`model::Structure`]), sparse [`model::Evidence`] counts, explicit
//!      MDPs ([`model::Mdp`]), value iteration and policy evaluation;
//!    - [`env`](mod@env): the [`Task`] trait and the built-in tasks:
//!      Bernoulli bandits, the stochastic GridWorld, the VM-allocation task,
//!      tabular MDPs from JSON files, with drift schedules; the
//!      [`env::ContextualTask`] trait with a synthetic linear bandit and
//!      labelled datasets as contextual bandits;
//!    - [`linear`]: the second posterior family, Bayesian linear
//!      regression, and the contextual [`linear::LinearAgent`];
//!    - [`policy`]: posterior sampling, ε-greedy, softmax, Bayes-UCB, and
//!      the [`policy::Planner`] that plans on a sampled or mean model;
//!    - [`share`]: share rules, messages, the learner's [`share::Ledger`],
//!      the [`share::Aggregator`] and the protocol's [`share::Schedule`];
//!    - [`agent`]: the agent an application drives;
//!    - [`learner`]: a simulated learner (an agent and a task) and a cohort;
//!    - [`metrics`] and [`observe`]: what is measured, and watching a run;
//!    - [`scenario`]: TOML files and builders checked into a valid [`Scenario`].
//! 2. **Runtime** ([`runtime`]): kameo actors around a cohort and the
//!    aggregator, and the lockstep and free-running (async) drivers.
//! 3. **Output** ([`report`]): the results folder, resume, summary, table
//!    and plots; [`sweep`] runs one scenario under several share rules.
//!
//! The binary `parbayes` (the default `cli` feature) parses arguments and
//! calls into these.

#![warn(missing_docs)]
#![warn(clippy::too_many_lines)]

pub mod agent;
pub mod env;
pub mod error;
pub mod learner;
pub mod linear;
pub mod metrics;
pub mod model;
pub mod observe;
pub mod policy;
pub mod posterior;
pub mod record;
#[cfg(feature = "remote")]
pub mod remote;
#[cfg(feature = "runtime")]
pub mod report;
pub mod rng;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod scenario;
pub mod share;
#[cfg(feature = "runtime")]
pub mod summary;
#[cfg(feature = "runtime")]
pub mod sweep;

pub use agent::{Agent, AgentConfig, AgentState};
pub use env::Task;
#[cfg(feature = "remote")]
pub use error::RemoteError;
pub use error::{Error, ParamError, ProtocolError, Result, RuntimeError};
pub use model::Structure;
pub use observe::Observe;
#[cfg(feature = "runtime")]
pub use runtime::{RunOptions, RunOutcome, run_scenario, run_scenario_async};
pub use scenario::{Overrides, Scenario};
pub use share::Aggregator;
