//! The actor that steps a block of learners, and how learner ids are split
//! into blocks.

use std::ops::Range;

use kameo::error::Infallible;
use kameo::prelude::*;

use crate::error::{Error, RuntimeError};
use crate::learner::Workload;
use crate::learner::{Cohort, CohortTrial, LearnerStats, StateOf};
use crate::share::{OthersUpdate, Recovery};

/// An actor that steps a block of learners.
pub struct CohortActor<T: Workload> {
    cohort: Cohort<T::Config>,
}

impl<T: Workload> Actor for CohortActor<T> {
    type Args = Cohort<T::Config>;
    type Error = Infallible;

    async fn on_start(cohort: Cohort<T::Config>, _me: ActorRef<Self>) -> Result<Self, Self::Error> {
        Ok(Self { cohort })
    }
}

/// Apply these updates, run one trial (or several in a row), and say what
/// to share.
pub struct RunTrial {
    /// The (first) trial's number, from 1.
    pub trial: u64,
    /// Trials to run in a row: more than one only when nothing can pass
    /// between learners and the driver until the last has ended.
    pub trials: u64,
    /// Learners that crashed, to rebuild before the trial, with their
    /// running totals as last reported.
    pub recoveries: Vec<(Recovery, LearnerStats)>,
    /// Report every learner's running totals.
    pub stats: bool,
    /// The aggregator's answers to apply first.
    pub updates: Vec<OthersUpdate>,
    /// Steps per learner.
    pub steps: u64,
    /// Return every learner's metrics after each trial `k` (from 1 within
    /// this message) listed, including the policy loss if its flag is set.
    pub measures: Vec<(u64, bool)>,
}

/// What the trial produced.
#[derive(Reply)]
pub struct TrialDone(pub CohortTrial);

impl<T: Workload> Message<RunTrial> for CohortActor<T> {
    type Reply = TrialDone;

    async fn handle(&mut self, msg: RunTrial, _ctx: &mut Context<Self, Self::Reply>) -> TrialDone {
        self.cohort.recover(msg.trial, &msg.recoveries);
        TrialDone(self.cohort.trials(
            &msg.updates,
            msg.trials,
            msg.steps,
            &msg.measures,
            msg.stats,
        ))
    }
}

/// Every learner's state, for a checkpoint.
pub struct SaveCohort;

/// Every learner's state, in id order.
#[derive(Reply)]
pub struct SavedCohort<S: Send + 'static>(pub Vec<S>);

impl<T: Workload> Message<SaveCohort> for CohortActor<T> {
    type Reply = SavedCohort<StateOf<T::Config>>;

    async fn handle(
        &mut self,
        _: SaveCohort,
        _ctx: &mut Context<Self, Self::Reply>,
    ) -> SavedCohort<StateOf<T::Config>> {
        SavedCohort(self.cohort.save())
    }
}

/// Fault injection: the handler fails, which kameo treats as a panic of the
/// actor; its supervisor restarts it from its initial state, and the driver
/// then rebuilds its learner from the aggregator's record.
pub struct Crash;

impl<T: Workload> Message<Crash> for CohortActor<T> {
    type Reply = Result<(), Error>;

    async fn handle(&mut self, _: Crash, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        Err(RuntimeError::InjectedFault.into())
    }
}

/// Supervises learner actors when faults are injected (one for all;
/// one-for-one restarts).
pub struct Supervisor;

impl Actor for Supervisor {
    type Args = ();
    type Error = Infallible;

    async fn on_start(_: (), _me: ActorRef<Self>) -> Result<Self, Self::Error> {
        Ok(Self)
    }
}

/// Answers once the actor is running: how the driver waits out a restart.
pub struct Ping;

impl<T: Workload> Message<Ping> for CohortActor<T> {
    type Reply = ();

    async fn handle(&mut self, _: Ping, _ctx: &mut Context<Self, Self::Reply>) {}
}

/// `agents` learner ids split into at most `cohorts` contiguous blocks.
pub(crate) fn cohort_ranges(agents: u32, cohorts: usize) -> Vec<Range<u32>> {
    let n = agents as usize;
    let k = cohorts.clamp(1, n.max(1));
    (0..k)
        .map(|c| (c * n / k) as u32..((c + 1) * n / k) as u32)
        .collect()
}

/// The cohort that holds learner `learner`.
pub(super) fn cohort_of(ranges: &[Range<u32>], learner: u32) -> usize {
    ranges.partition_point(|r| r.end <= learner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Overrides, Scenario};

    #[test]
    fn a_failed_learner_actor_is_restarted_by_its_supervisor() {
        use kameo::supervision::RestartPolicy;

        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let scenario = Scenario::load("bandit-news".as_ref(), &Overrides::default()).unwrap();
            let cohort = Cohort::new(&scenario.learner, 42, 0, 0..1);
            let supervisor = Supervisor::spawn(());
            let actor = CohortActor::<crate::env::Environment>::supervise(&supervisor, cohort)
                .restart_policy(RestartPolicy::Transient)
                .restart_limit(10, std::time::Duration::from_secs(1))
                .spawn()
                .await;
            let trial = |t| RunTrial {
                trial: t,
                trials: 1,
                recoveries: Vec::new(),
                stats: false,
                updates: Vec::new(),
                steps: 5,
                measures: Vec::new(),
            };
            let steps = |saved: SavedCohort<crate::learner::LearnerState>| saved.0[0].stats().steps;
            actor.ask(trial(1)).await.unwrap();
            assert_eq!(steps(actor.ask(SaveCohort).await.unwrap()), 5);
            // The handler fails: kameo stops the actor as panicked, and the
            // supervisor starts it again from its initial state, behind the same
            // reference.
            actor.tell(Crash).await.unwrap();
            assert_eq!(steps(actor.ask(SaveCohort).await.unwrap()), 0);
            actor.ask(trial(2)).await.unwrap();
            assert_eq!(steps(actor.ask(SaveCohort).await.unwrap()), 5);
        });
    }
}
