use super::{Decision, PosteriorRows, Scratch};
use crate::posterior::BetaPosterior;

/// Bayes-UCB scores: the `1 − 1/t` quantile of each arm's success
/// probability, `t` = 1 + every observation of the state's arms (own and
/// shared), so the horizon grows with the evidence the learner holds.
pub(super) fn quantile_q<P: PosteriorRows + ?Sized>(d: &Decision, post: &P, scratch: &mut Scratch) {
    let Scratch { alpha, q, .. } = scratch;
    let prior_mass = post.prior() * alpha.len() as f64;
    let mut t = 1.0;
    for a in 0..q.len() {
        post.alpha_into(d.structure.shape().row(d.state, a), alpha);
        t += alpha.iter().sum::<f64>() - prior_mass;
    }
    let level = 1.0 - 1.0 / t.max(2.0);
    for (a, qa) in q.iter_mut().enumerate() {
        post.alpha_into(d.structure.shape().row(d.state, a), alpha);
        *qa = BetaPosterior::from_valid(alpha[1], alpha[0]).quantile(level);
    }
}
