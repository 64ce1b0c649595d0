use kameo::error::Infallible;
use kameo::prelude::*;

use crate::learner::{Cohort, CohortTrial, LearnerState};
use crate::share::{OthersUpdate, Recovery};

/// An actor that steps a block of learners.
pub struct CohortActor {
    cohort: Cohort,
}

impl Actor for CohortActor {
    type Args = Cohort;
    type Error = Infallible;

    async fn on_start(cohort: Cohort, _me: ActorRef<Self>) -> Result<Self, Self::Error> {
        Ok(Self { cohort })
    }
}

/// Apply these updates, run one trial, and say what to share.
pub struct RunTrial {
    /// The trial's number, from 1.
    pub trial: u64,
    /// Learners that crashed, to rebuild before the trial.
    pub recoveries: Vec<Recovery>,
    pub updates: Vec<OthersUpdate>,
    pub steps: u64,
    /// Return every learner's metrics ...
    pub measure: bool,
    /// ... including the policy loss.
    pub evaluate: bool,
}

#[derive(Reply)]
pub struct TrialDone(pub CohortTrial);

impl Message<RunTrial> for CohortActor {
    type Reply = TrialDone;

    async fn handle(&mut self, msg: RunTrial, _ctx: &mut Context<Self, Self::Reply>) -> TrialDone {
        self.cohort.recover(msg.trial, &msg.recoveries);
        TrialDone(
            self.cohort
                .trial(&msg.updates, msg.steps, msg.measure, msg.evaluate),
        )
    }
}

/// Every learner's state, for a checkpoint.
pub struct SaveCohort;

#[derive(Reply)]
pub struct SavedCohort(pub Vec<LearnerState>);

impl Message<SaveCohort> for CohortActor {
    type Reply = SavedCohort;

    async fn handle(
        &mut self,
        _: SaveCohort,
        _ctx: &mut Context<Self, Self::Reply>,
    ) -> SavedCohort {
        SavedCohort(self.cohort.save())
    }
}
