//! What figures call the settings: words for readers, not the command
//! line's tokens.

use crate::linear::LinearPolicy;
use crate::policy::Policy;
use crate::share::{Downlink, ShareRule, Sharing};

/// `kl:0.01` reads "KL trigger θ = 0.01"; a downlink other than the
/// rule's own is added after a semicolon.
pub(crate) fn sharing(s: Sharing) -> String {
    let rule = match s.rule {
        ShareRule::Kl(t) => format!("KL trigger θ = {t}"),
        ShareRule::KlPosterior(t) => format!("posterior-KL trigger θ = {t}"),
        ShareRule::Periodic(k) => format!("every {k} steps"),
        ShareRule::Ramp(k) => format!("ramp from every {k} steps"),
        ShareRule::Doubling(f) => format!("doubling, F = {f}"),
        ShareRule::Always => "every step".into(),
        ShareRule::Never => "no sharing".into(),
    };
    if s.downlink == s.rule.downlink() {
        return rule;
    }
    let down = match s.downlink {
        Downlink::Every => "every changed row".into(),
        Downlink::Doubling(f) => format!("doubling, F = {f}"),
        Downlink::Kl(t) => format!("KL gate θ = {t}"),
    };
    format!("{rule}; answers: {down}")
}

/// `epsilon-greedy:0.1` reads "ε-greedy, ε = 0.1".
pub(crate) fn policy(p: Policy) -> String {
    match p {
        Policy::PosteriorSampling => "posterior sampling".into(),
        Policy::EpsilonGreedy { epsilon } => format!("ε-greedy, ε = {epsilon}"),
        Policy::Softmax { temperature } => format!("softmax, τ = {temperature}"),
        Policy::BayesUcb => "Bayes-UCB".into(),
    }
}

/// `linucb:1` reads "LinUCB, α = 1".
pub(crate) fn linear_policy(p: LinearPolicy) -> String {
    match p {
        LinearPolicy::Thompson { scale: 1.0 } => "linear Thompson sampling".into(),
        LinearPolicy::Thompson { scale } => format!("linear Thompson sampling, v = {scale}"),
        LinearPolicy::LinUcb { alpha } => format!("LinUCB, α = {alpha}"),
        LinearPolicy::BayesUcb => "Bayes-UCB".into(),
        LinearPolicy::EpsilonGreedy { epsilon: 0.0 } => "greedy".into(),
        LinearPolicy::EpsilonGreedy { epsilon } => format!("ε-greedy, ε = {epsilon}"),
    }
}

/// A record's rule or policy string in words, as it parses; as written
/// otherwise.
pub(crate) fn sharing_str(s: &str) -> String {
    s.parse().map_or_else(|_| s.to_string(), sharing)
}

/// See [`sharing_str`].
pub(crate) fn policy_str(s: &str) -> String {
    // Contextual first: the names the two families share (`ucb`,
    // `epsilon-greedy:E`) read the same, and `thompson` is how a contextual
    // policy writes itself (a tabular one writes `posterior-sampling`).
    match (s.parse(), s.parse()) {
        (Ok(p), _) => linear_policy(p),
        (_, Ok(p)) => policy(p),
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_as_words() {
        assert_eq!(sharing_str("kl:0.01"), "KL trigger θ = 0.01");
        assert_eq!(sharing_str("doubling:0.5"), "doubling, F = 0.5");
        assert_eq!(
            sharing_str("periodic:100/doubling:0.1"),
            "every 100 steps; answers: doubling, F = 0.1"
        );
        assert_eq!(policy_str("epsilon-greedy:0.1"), "ε-greedy, ε = 0.1");
        assert_eq!(policy_str("posterior-sampling"), "posterior sampling");
        assert_eq!(policy_str("thompson"), "linear Thompson sampling");
        assert_eq!(policy_str("linucb:0.5"), "LinUCB, α = 0.5");
        assert_eq!(policy_str("not a policy"), "not a policy");
    }
}
