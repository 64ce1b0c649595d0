use rand::Rng;

use super::{Policy, PosteriorRows};
use crate::env::Truth;
use crate::model::{Mdp, Structure, ValueIteration, evaluate_policy};
use crate::posterior::{BetaPosterior, DirichletPosterior};

/// How close to the fixed point a plan for acting is solved. Q values of a
/// 5 × 5 GridWorld are O(10); 1e-6 leaves the greedy action alone.
pub const PLAN_TOLERANCE: f64 = 1e-6;

/// When a planning learner re-plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replan {
    /// At the start of every trial (episode).
    EveryTrial,
    /// Whenever this many steps have passed since the last plan.
    EverySteps(u64),
}

/// A learner's planning state for γ > 0: a model with one entry per outcome
/// of every row, into which the policy writes a posterior draw or the
/// posterior mean, and value iteration warm-started from the last plan.
#[derive(Debug, Clone)]
pub struct Planner {
    model: Mdp,
    solver: ValueIteration,
    gamma: f64,
    replan: Replan,
    since: u64,
    fresh: bool,
}

impl Planner {
    /// A planner for `structure`, re-planning as `replan` says.
    pub fn new(structure: &Structure, replan: Replan) -> Self {
        Self::on_frame(structure.frame().clone(), structure.gamma(), replan)
    }

    /// A planner on a copy of `model`, which shares everything but the
    /// probabilities with it.
    pub fn on_frame(model: Mdp, gamma: f64, replan: Replan) -> Self {
        Self {
            solver: ValueIteration::new(&model),
            model,
            gamma,
            replan,
            since: 0,
            fresh: false,
        }
    }

    /// What a checkpoint keeps: the warm-start values, the current plan's
    /// action values and the schedule's position.
    pub fn save(&self) -> PlanState {
        PlanState {
            solver: self.solver.clone(),
            since: self.since,
            fresh: self.fresh,
        }
    }

    /// Continues from a saved plan; refuses one of another shape.
    pub fn restore(&mut self, state: PlanState) -> crate::Result<()> {
        if !state.solver.fits(self.model.shape()) {
            return Err(crate::Error::invalid(
                "agent state",
                "plan",
                "the saved value function does not fit the task's shape",
            ));
        }
        self.solver = state.solver;
        self.since = state.since;
        self.fresh = state.fresh;
        Ok(())
    }

    /// [`policy_loss`] on a copy of this planner's model, which shares its
    /// structure instead of building it again.
    pub fn policy_loss<P: PosteriorRows + ?Sized>(&self, truth: &Truth, post: &P) -> f64 {
        loss_on(self.model.clone(), truth, post)
    }

    /// A new trial begins.
    pub fn start_trial(&mut self) {
        if self.replan == Replan::EveryTrial {
            self.fresh = false;
        }
    }

    /// Re-plans if the schedule says so, then returns the action values of
    /// `state`.
    #[inline]
    pub fn q_of<P, R>(&mut self, policy: Policy, post: &P, state: usize, rng: &mut R) -> &[f64]
    where
        P: PosteriorRows + ?Sized,
        R: Rng + ?Sized,
    {
        let due = match self.replan {
            Replan::EveryTrial => !self.fresh,
            Replan::EverySteps(k) => !self.fresh || self.since >= k,
        };
        if due {
            match policy {
                Policy::PosteriorSampling => sample_model(post, &mut self.model, rng),
                _ => mean_model(post, &mut self.model),
            }
            self.solver.solve(&self.model, self.gamma, PLAN_TOLERANCE);
            self.fresh = true;
            self.since = 0;
        }
        self.since += 1;
        self.solver.q_of(state)
    }
}

/// A planner's state apart from its model, which the next plan overwrites.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PlanState {
    solver: ValueIteration,
    since: u64,
    fresh: bool,
}

/// Writes one draw from every row's Dirichlet posterior into `model`.
pub fn sample_model<P, R>(post: &P, model: &mut Mdp, rng: &mut R)
where
    P: PosteriorRows + ?Sized,
    R: Rng + ?Sized,
{
    for row in 0..model.shape().rows() {
        let probs = model.probs_mut(row);
        post.alpha_into(row, probs);
        if let [a0, a1] = probs[..] {
            let p1 = BetaPosterior::from_valid(a1, a0).sample(rng);
            probs[0] = 1.0 - p1;
            probs[1] = p1;
        } else {
            // Gamma draws in place: θ_o ∝ Gamma(α_o), normalised.
            DirichletPosterior::sample_in_place(probs, rng);
        }
    }
}

/// Writes every row's posterior mean into `model`.
pub fn mean_model<P: PosteriorRows + ?Sized>(post: &P, model: &mut Mdp) {
    for row in 0..model.shape().rows() {
        let probs = model.probs_mut(row);
        post.alpha_into(row, probs);
        let total: f64 = probs.iter().sum();
        for p in probs.iter_mut() {
            *p /= total;
        }
    }
}

/// Policy loss `V*(s₀) − V^π(s₀)` of π greedy on the posterior mean over
/// `structure`, evaluated exactly (to 1e-12) on the true model in force now.
pub fn policy_loss<P: PosteriorRows + ?Sized>(
    truth: &Truth,
    structure: &Structure,
    post: &P,
) -> f64 {
    loss_on(structure.frame().clone(), truth, post)
}

/// [`policy_loss`] on `model`, a frame whose probabilities it overwrites.
fn loss_on<P: PosteriorRows + ?Sized>(mut model: Mdp, truth: &Truth, post: &P) -> f64 {
    mean_model(post, &mut model);
    let mut solver = ValueIteration::new(&model);
    solver.solve(&model, truth.gamma(), 1e-10);
    let greedy = solver.greedy();
    let v = evaluate_policy(truth.model(), truth.gamma(), &greedy, 1e-12);
    let loss = truth.phase().v_star_start - truth.model().start_value(&v);
    // V* is solved to 1e-11: an optimal policy may come out a hair below 0.
    if loss > -1e-9 { loss.max(0.0) } else { loss }
}
