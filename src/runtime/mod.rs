//! The only code that knows kameo and tokio: thin actors around the core
//! [`Cohort`](crate::learner::Cohort) and [`Aggregator`](crate::share::Aggregator),
//! and the drivers that move their messages: lockstep, and free-running
//! (async).

mod aggregator;
mod checkpoint;
mod cohort;
mod driver;
mod free;

pub use aggregator::{AggregatorActor, Fold, Folded, Recover, SaveAggregator, SavedAggregator};
pub use checkpoint::{Checkpoints, ExperimentSnapshot};
pub use cohort::{CohortActor, Crash, RunTrial, SaveCohort, SavedCohort, Supervisor, TrialDone};
#[cfg(feature = "remote")]
pub(crate) use driver::cohort_ranges;
pub(crate) use driver::tokio_runtime;
pub use driver::{
    Continuity, MAX_THREADS, Mode, RunOptions, RunOutcome, RunTiming, learner_bytes, run_lockstep,
    run_scenario, run_scenario_async, run_scenario_until,
};
pub use free::{Absorb, Publisher, PublisherArgs, Snapped, Snapshot, run_free};
