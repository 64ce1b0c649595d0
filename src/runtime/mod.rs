//! The only code that knows kameo and tokio: thin actors around the core
//! [`Cohort`](crate::learner::Cohort) and [`Aggregator`](crate::share::Aggregator),
//! and the drivers that move their messages: lockstep, and free-running
//! (async).

mod aggregator;
mod checkpoint;
mod cohort;
mod experiments;
mod free;
mod lockstep;
mod options;
mod recorder;

pub use checkpoint::{Checkpoints, ExperimentSnapshot};
#[cfg(feature = "remote")]
pub(crate) use cohort::cohort_ranges;

#[cfg(feature = "remote")]
pub(crate) use experiments::announce;
pub(crate) use experiments::{run_checked, tokio_runtime};
pub use experiments::{run_scenario, run_scenario_async, run_scenario_until};

#[cfg(feature = "remote")]
pub(crate) use free::{Uplink, run_free_cohort};
pub use options::{Continuity, MAX_THREADS, Mode, RunOptions, RunOutcome, RunTiming};
#[cfg(feature = "remote")]
pub(crate) use recorder::TrialRecorder;
