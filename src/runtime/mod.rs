//! The only code that knows kameo and tokio: thin actors around the core
//! [`Cohort`](crate::learner::Cohort) and [`Aggregator`](crate::share::Aggregator),
//! and the lockstep driver that moves their messages.

mod aggregator;
mod cohort;
mod driver;

pub use aggregator::{AggregatorActor, Fold, Folded};
pub use cohort::{CohortActor, RunTrial, TrialDone};
pub use driver::{Observe, RunOptions, RunOutcome, RunTiming, run_lockstep, run_scenario};
