use std::sync::Arc;

use crate::model::{Mdp, solve};

/// The true model of an MDP task through its drift schedule. Phases are
/// built and solved once and shared by every learner's copy, so a change
/// costs a learner an index move, not a re-solve.
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    phases: Arc<[Phase]>,
    now: usize,
    gamma: f64,
}

/// The true model from a step on.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// The first (0-based) step this model holds at.
    pub from_step: u64,
    /// The model.
    pub model: Mdp,
    /// `V*` under the initial state distribution.
    pub v_star_start: f64,
}

impl Truth {
    /// Phases from `(first step, model)` pairs in step order, the first at
    /// step 0; each is solved with discount `gamma`.
    pub fn new(models: Vec<(u64, Mdp)>, gamma: f64) -> Self {
        let phases: Vec<Phase> = models
            .into_iter()
            .map(|(from_step, model)| Phase {
                from_step,
                v_star_start: solve(&model, gamma).v_start,
                model,
            })
            .collect();
        debug_assert!(phases.first().is_some_and(|p| p.from_step == 0));
        Self {
            phases: phases.into(),
            now: 0,
            gamma,
        }
    }

    /// The steps at which a new model takes over (every phase's but the first).
    pub fn change_steps(&self) -> impl Iterator<Item = u64> + '_ {
        self.phases.iter().skip(1).map(|p| p.from_step)
    }

    /// The model in force now.
    #[inline]
    pub fn model(&self) -> &Mdp {
        &self.phases[self.now].model
    }

    /// The phase in force now.
    pub fn phase(&self) -> &Phase {
        &self.phases[self.now]
    }

    /// The discount it is solved with.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// Moves to the phase that holds at `step`.
    #[inline]
    pub fn advance_to(&mut self, step: u64) {
        while self
            .phases
            .get(self.now + 1)
            .is_some_and(|p| p.from_step <= step)
        {
            self.now += 1;
        }
    }
}
