use serde::Serialize;

use super::Mdp;
use super::mdp::Runs;

/// Sweeps a single solve may take before it stops unconverged. At γ = 0.999
/// a stop at 1e-12 needs about 35,000 sweeps.
pub const MAX_SWEEPS: u32 = 200_000;

/// How a solve ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Convergence {
    /// Sweeps taken.
    pub iterations: u32,
    /// The last sweep's largest value change `‖V_k − V_{k−1}‖∞`.
    pub residual: f64,
    /// `γ / (1 − γ) · residual`: no state's value is further than this from
    /// the fixed point.
    pub error_bound: f64,
}

/// Value iteration's buffers, kept between solves so that a re-plan warm
/// starts from the last values and allocates nothing.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ValueIteration {
    v: Vec<f64>,
    q: Vec<f64>,
    /// Each row's expected immediate reward under the model being solved.
    reward: Vec<f64>,
}

impl ValueIteration {
    /// Whether its buffers fit `shape` and hold finite values (a solver
    /// read back from a file).
    pub fn fits(&self, shape: crate::model::Shape) -> bool {
        self.v.len() == shape.states
            && self.q.len() == shape.rows()
            && self.reward.len() == shape.rows()
            && self
                .v
                .iter()
                .chain(&self.q)
                .chain(&self.reward)
                .all(|x| x.is_finite())
    }

    /// Buffers for `mdp`'s shape, starting from V = 0.
    pub fn new(mdp: &Mdp) -> Self {
        let shape = mdp.shape();
        Self {
            v: vec![0.0; shape.states],
            q: vec![0.0; shape.rows()],
            reward: vec![0.0; shape.rows()],
        }
    }

    /// Gauss–Seidel value iteration from the current values (each state's
    /// new value is used as soon as it is known, which converges in fewer
    /// sweeps than the synchronous form) until every value is within
    /// `tolerance` of the fixed point, or [`MAX_SWEEPS`]. A Gauss–Seidel
    /// sweep is a γ-contraction in the max norm, so the distance to the fixed
    /// point is at most `γ / (1 − γ)` times the last sweep's largest change.
    /// With γ = 0 one sweep is exact.
    pub fn solve(&mut self, mdp: &Mdp, gamma: f64, tolerance: f64) -> Convergence {
        let actions = mdp.shape().actions;
        let scale = if gamma > 0.0 {
            gamma / (1.0 - gamma)
        } else {
            0.0
        };
        mdp.expected_rewards_into(&mut self.reward);
        match mdp.runs() {
            Runs::Every => self.sweep(actions, gamma, scale, tolerance, |r, v| {
                mdp.future_of_run(r, v)
            }),
            Runs::None => self.sweep(actions, gamma, scale, tolerance, |r, v| {
                mdp.future_of_scattered(r, v)
            }),
            Runs::Some => self.sweep(actions, gamma, scale, tolerance, |r, v| mdp.future(r, v)),
        }
    }

    /// Gauss–Seidel sweeps with `future(row, v)` until converged.
    #[inline]
    fn sweep(
        &mut self,
        actions: usize,
        gamma: f64,
        scale: f64,
        tolerance: f64,
        future: impl Fn(usize, &[f64]) -> f64,
    ) -> Convergence {
        let mut iterations = 0;
        loop {
            let mut residual = 0.0f64;
            for s in 0..self.v.len() {
                let mut best = f64::NEG_INFINITY;
                for row in s * actions..(s + 1) * actions {
                    let q = self.reward[row] + gamma * future(row, &self.v);
                    self.q[row] = q;
                    best = best.max(q);
                }
                residual = residual.max((best - self.v[s]).abs());
                self.v[s] = best;
            }
            iterations += 1;
            let error_bound = scale * residual;
            if error_bound <= tolerance || iterations >= MAX_SWEEPS {
                return Convergence {
                    iterations,
                    residual,
                    error_bound,
                };
            }
        }
    }

    /// State values of the last solve.
    pub fn values(&self) -> &[f64] {
        &self.v
    }

    /// Action values of the last sweep, row by row (`state × actions + action`).
    pub fn q(&self) -> &[f64] {
        &self.q
    }

    /// The action values of `state`.
    #[inline]
    pub fn q_of(&self, state: usize) -> &[f64] {
        let actions = self.q.len() / self.v.len();
        &self.q[state * actions..(state + 1) * actions]
    }

    /// The greedy policy of the last sweep; ties go to the lowest action.
    pub fn greedy(&self) -> Vec<usize> {
        let actions = self.q.len() / self.v.len();
        self.q
            .chunks(actions)
            .map(|q| {
                let top = max(q);
                q.iter().position(|x| *x == top).unwrap_or(0)
            })
            .collect()
    }
}

/// The values of the deterministic `policy` (an action per state) on `mdp`,
/// iterated until within `tolerance` of exact.
pub fn evaluate_policy(mdp: &Mdp, gamma: f64, policy: &[usize], tolerance: f64) -> Vec<f64> {
    let shape = mdp.shape();
    let mut v = vec![0.0; shape.states];
    let mut v_next = vec![0.0; shape.states];
    let scale = if gamma > 0.0 {
        gamma / (1.0 - gamma)
    } else {
        0.0
    };
    for _ in 0..MAX_SWEEPS {
        let mut residual = 0.0f64;
        for (s, vn) in v_next.iter_mut().enumerate() {
            *vn = mdp
                .transitions(shape.row(s, policy[s]))
                .map(|t| t.prob * (t.reward + if t.terminal { 0.0 } else { gamma * v[t.next] }))
                .sum();
            residual = residual.max((*vn - v[s]).abs());
        }
        std::mem::swap(&mut v, &mut v_next);
        if scale * residual <= tolerance {
            break;
        }
    }
    v
}

/// The optimal values and policy of a model, as `parbayes solve` reports them.
#[derive(Debug, Clone, Serialize)]
pub struct Solution {
    /// The discount.
    pub gamma: f64,
    /// `V*` under the initial state distribution.
    pub v_start: f64,
    /// `V*` of every state.
    pub values: Vec<f64>,
    /// A greedy action of every state.
    pub policy: Vec<usize>,
    /// Sweeps taken.
    pub iterations: u32,
    /// The last sweep's largest value change.
    pub residual: f64,
}

/// Solves `mdp` to values within 1e-11 of exact, so `v_start` is exact to
/// 1e-9 with room for rounding.
pub fn solve(mdp: &Mdp, gamma: f64) -> Solution {
    let mut vi = ValueIteration::new(mdp);
    let c = vi.solve(mdp, gamma, 1e-11);
    Solution {
        gamma,
        v_start: mdp.start_value(vi.values()),
        values: vi.values().to_vec(),
        policy: vi.greedy(),
        iterations: c.iterations,
        residual: c.residual,
    }
}

#[inline]
fn max(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}
