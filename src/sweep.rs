//! A sweep: one scenario under several share rules (and policies), on the
//! same seeds, to chart communication volume against accuracy and to
//! compare strategies.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::learner::{SimConfig, Workload};
use crate::observe::Observe;
use crate::runtime::{RunOptions, RunOutcome, run_scenario};
use crate::scenario::Scenario;
use crate::share::{ShareRule, Sharing};
use crate::summary::Summary;

/// The rules `parbayes sweep` compares when given none: the two limits,
/// the paper's `kl:θ` over five decades (a threshold suits one task's scale
/// only), its closed-form variant, and the outcome-blind rules at several
/// settings, gated downlinks included.
pub const STANDARD_RULES: &[&str] = &[
    "never",
    "kl:0.1",
    "kl:0.01",
    "kl:0.001",
    "kl:0.0001",
    "kl:0.00001",
    "kl-posterior:1",
    "periodic:10",
    "periodic:100",
    "ramp:100",
    "ramp:100/doubling:0.1",
    "ramp:100/doubling:0.03",
    "doubling:1",
    "doubling:0.5",
    "doubling:0.25",
    "always",
];

/// [`STANDARD_RULES`], plus the scenario's own rule where it is not one of
/// them (before `always`).
pub fn standard_rules<T: Workload>(scenario: &Scenario<T>) -> Vec<Sharing> {
    let mut rules: Vec<Sharing> = STANDARD_RULES
        .iter()
        .map(|r| r.parse().expect("the standard rules parse"))
        .collect();
    let own = scenario.learner.sharing();
    if !rules.contains(&own) {
        rules.insert(rules.len() - 1, own);
    }
    rules
}

/// One (policy, share rule, agent count): final means over repetitions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// Learners per experiment.
    pub agents: u32,
    /// The policy.
    pub policy: String,
    /// The rule.
    pub share: String,
    /// Repetitions averaged.
    pub reps: u32,
    /// The learners' mean model error.
    pub model_kl: f64,
    /// The global estimate's model error.
    pub global_model_kl: f64,
    /// Mean reward per step.
    pub reward_per_step: f64,
    /// Bandits only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regret_per_agent: Option<f64>,
    /// MDP tasks only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_loss: Option<f64>,
    /// Share messages, all learners.
    pub messages_up: f64,
    /// Answers.
    pub messages_down: f64,
    /// Rows sent up.
    pub rows_up: f64,
    /// Rows sent down.
    pub rows_down: f64,
    /// Bytes sent up (MessagePack).
    pub bytes_up: f64,
    /// Bytes sent down.
    pub bytes_down: f64,
    /// `(error_never − error_rule) / (error_never − error_always)` at the
    /// same N and policy, where the error is regret for bandits and the learners' model
    /// error otherwise; absent unless `never` and `always` are both swept
    /// and differ.
    pub accuracy_gain: Option<f64>,
}

impl SweepRow {
    /// What the accuracy gain measures: regret for bandits, model error
    /// otherwise.
    pub fn error(&self) -> f64 {
        self.regret_per_agent.unwrap_or(self.model_kl)
    }
}

/// Every row of a sweep, by policy and rule in the order given, then by
/// agent count.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    /// The scenario's name.
    pub scenario: String,
    /// The task's kind.
    pub task: String,
    /// `regret_per_agent` or `model_kl`: what `accuracy_gain` compares.
    pub error: &'static str,
    /// The rows.
    pub rows: Vec<SweepRow>,
}

/// Runs `scenario` once per (policy, rule) pair, policies outermost (its
/// agent counts, repetitions and seed unchanged), so every pair meets the
/// same learners' random streams. No policies means the scenario's own.
pub fn run_sweep<T: Workload>(
    scenario: &Scenario<T>,
    policies: &[<T::Config as SimConfig>::Policy],
    rules: &[Sharing],
    options: &RunOptions,
    observer: &mut dyn Observe,
) -> Result<(Sweep, Vec<RunOutcome>)> {
    if rules.is_empty() {
        return Err(Error::invalid(
            "command line",
            "--share",
            "no rules; give at least one",
        ));
    }
    let own = [scenario.learner.policy()];
    let policies = if policies.is_empty() {
        &own[..]
    } else {
        policies
    };
    let bandit = scenario.learner.measures_regret();
    let mut rows = Vec::new();
    let mut outcomes = Vec::with_capacity(policies.len() * rules.len());
    for &policy in policies {
        for &rule in rules {
            let mut s = scenario.clone();
            s.learner = s.learner.with_policy(policy)?.with_sharing(rule)?;
            let outcome = run_scenario(&s, options, observer)?;
            let summary = Summary::new(&s, &outcome);
            for r in &summary.results {
                let f = &r.final_;
                rows.push(SweepRow {
                    agents: r.agents,
                    policy: policy.to_string(),
                    share: rule.to_string(),
                    reps: r.reps,
                    model_kl: f.model_kl,
                    global_model_kl: f.global_model_kl,
                    reward_per_step: f.reward_per_step,
                    regret_per_agent: bandit.then_some(f.regret_per_agent),
                    policy_loss: (!bandit).then_some(f.policy_loss),
                    messages_up: f.messages_up,
                    messages_down: f.messages_down,
                    rows_up: f.rows_up,
                    rows_down: f.rows_down,
                    bytes_up: f.bytes_up,
                    bytes_down: f.bytes_down,
                    accuracy_gain: None,
                });
            }
            outcomes.push(outcome);
        }
    }
    let find = |rows: &[SweepRow], at: &SweepRow, rule: ShareRule| {
        let rule = Sharing::from(rule);
        rows.iter()
            .find(|r| r.agents == at.agents && r.policy == at.policy && r.share == rule.to_string())
            .map(SweepRow::error)
    };
    let gains: Vec<Option<f64>> = rows
        .iter()
        .map(|r| {
            let never = find(&rows, r, ShareRule::Never)?;
            let always = find(&rows, r, ShareRule::Always)?;
            let span = never - always;
            (span != 0.0).then(|| (never - r.error()) / span)
        })
        .collect();
    for (r, g) in rows.iter_mut().zip(gains) {
        r.accuracy_gain = g;
    }
    Ok((
        Sweep {
            scenario: scenario.name.clone(),
            task: scenario.learner.kind().to_string(),
            error: if bandit {
                "regret_per_agent"
            } else {
                "model_kl"
            },
            rows,
        },
        outcomes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_set_has_both_limits_and_the_scenarios_own_rule() {
        let news = Scenario::load(
            "scenarios/bandit-news.toml".as_ref(),
            &crate::Overrides {
                share: Some("kl:0.003".parse().unwrap()),
                ..Default::default()
            },
        )
        .unwrap();
        let rules: Vec<String> = standard_rules(&news)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(rules.first().map(String::as_str), Some("never"));
        assert_eq!(rules.last().map(String::as_str), Some("always"));
        assert_eq!(rules[rules.len() - 2], "kl:0.003");
        assert_eq!(rules.len(), STANDARD_RULES.len() + 1);
        // A rule already in the set is not repeated.
        let shipped =
            Scenario::load("scenarios/bandit-news.toml".as_ref(), &Default::default()).unwrap();
        assert_eq!(standard_rules(&shipped).len(), STANDARD_RULES.len());
    }
}
