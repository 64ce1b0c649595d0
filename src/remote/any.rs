//! The aggregator a remote server holds, of either family: a remote actor
//! cannot be generic, so the family is a variant.

use serde::{Deserialize, Serialize};

use crate::env::{ContextualEnvironment, Task};
use crate::error::ProtocolError;
use crate::learner::{ContextualConfig, LearnerConfig, SimConfig, Workload};
use crate::linear::Gaussian;
use crate::model::{Evidence, Shape};
use crate::share::{Aggregator, OthersUpdate, Recovery, RowBatch, ShareMessage, Traffic};

/// An [`Aggregator`] of counts or of linear regressions.
///
/// Serialised as the aggregator it holds, so a snapshot of a counts
/// aggregator written before this type reads back unchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum AnyAggregator {
    /// Dirichlet counts.
    Counts(Box<Aggregator>),
    /// Bayesian linear regressions.
    Linear(Box<Aggregator<Gaussian>>),
}

macro_rules! each {
    ($self:expr, $a:ident => $e:expr) => {
        match $self {
            AnyAggregator::Counts($a) => $e,
            AnyAggregator::Linear($a) => $e,
        }
    };
}

impl AnyAggregator {
    /// See [`Aggregator::receive`].
    pub fn receive(&mut self, msg: &ShareMessage) -> Result<(), ProtocolError> {
        each!(self, a => a.receive(msg))
    }

    /// See [`Aggregator::answer`].
    pub fn answer(&mut self, id: u32) -> Result<Option<OthersUpdate>, ProtocolError> {
        each!(self, a => a.answer(id))
    }

    /// See [`Aggregator::recovery`].
    pub fn recovery(&mut self, id: u32) -> Result<Recovery, ProtocolError> {
        each!(self, a => a.recovery(id))
    }

    /// See [`Aggregator::global`].
    pub fn global(&self) -> &Evidence {
        each!(self, a => a.global())
    }

    /// See [`Aggregator::traffic`].
    pub fn traffic(&self) -> Traffic {
        each!(self, a => a.traffic())
    }

    /// See [`Aggregator::shape`].
    pub fn shape(&self) -> Shape {
        each!(self, a => a.shape())
    }

    /// See [`Aggregator::restarted`].
    pub fn restarted(self) -> Self {
        match self {
            Self::Counts(a) => Self::Counts(Box::new(a.restarted())),
            Self::Linear(a) => Self::Linear(Box::new(a.restarted())),
        }
    }

    /// Checks a message's rows against the layout and the family.
    pub fn check(&self, rows: &RowBatch) -> Result<(), String> {
        each!(self, a => rows.check_with(a.shape(), a.family()))
    }
}

impl From<Aggregator> for AnyAggregator {
    fn from(a: Aggregator) -> Self {
        Self::Counts(Box::new(a))
    }
}

impl From<Aggregator<Gaussian>> for AnyAggregator {
    fn from(a: Aggregator<Gaussian>) -> Self {
        Self::Linear(Box::new(a))
    }
}

/// A task whose runs a remote server can host: its learners' aggregator,
/// as the server holds it.
pub trait Hosted: Workload {
    /// An aggregator for `learners` learners configured by `config`.
    fn hosted_aggregator(config: &Self::Config, learners: usize) -> AnyAggregator;
}

impl<T: Task> Hosted for T {
    fn hosted_aggregator(config: &LearnerConfig<T>, learners: usize) -> AnyAggregator {
        config.aggregator(learners).into()
    }
}

impl Hosted for ContextualEnvironment {
    fn hosted_aggregator(config: &ContextualConfig, learners: usize) -> AnyAggregator {
        config.aggregator(learners).into()
    }
}
