//! Model error: how far an estimate is from the truth.

use crate::env::Task;
use crate::posterior::divergence::kl_categorical;

/// `Σ_r KL(θ_true(r) ‖ mean(Dir(alpha(r))))` over every row of the task,
/// where `alpha(row, out)` writes a row's concentrations; `None` if the
/// task does not know its truth.
pub fn model_error<T: Task>(task: &T, alpha: impl Fn(usize, &mut [f64])) -> Option<f64> {
    let shape = task.shape();
    let mut truth = vec![0.0; shape.outcomes];
    let mut mean = vec![0.0; shape.outcomes];
    let mut total = 0.0;
    for row in 0..shape.rows() {
        if !task.true_row_into(row, &mut truth) {
            return None;
        }
        alpha(row, &mut mean);
        let s: f64 = mean.iter().sum();
        for m in &mut mean {
            *m /= s;
        }
        total += kl_categorical(&truth, &mean);
    }
    Some(total)
}

/// Whether regret is measured on `task`: it knows its expected rewards.
pub fn measures_regret<T: Task>(task: &T) -> bool {
    task.best_expected_reward(0).is_some()
}

/// The model error of `prior + counts`, e.g. the aggregator's global estimate.
pub fn evidence_error<T: Task>(
    task: &T,
    prior: f64,
    counts: &crate::model::Evidence,
) -> Option<f64> {
    model_error(task, |row, out| {
        out.fill(prior);
        if let Some(c) = counts.row(row) {
            for (o, x) in out.iter_mut().zip(c) {
                *o += x;
            }
        }
    })
}
