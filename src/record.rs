//! One row of `trials.csv`: the metrics of one (agents, repetition, trial),
//! reduced over learners.

use serde::Serialize;

use crate::learner::LearnerMetrics;
use crate::learner::SimConfig;
use crate::share::Traffic;

/// One row of `trials.csv`: every metric of one (agents, repetition, trial).
/// Learner metrics are means over learners; traffic is the run's total so far.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TrialRecord {
    /// Learners in the experiment.
    pub agents: u32,
    /// The share rule.
    pub share: String,
    /// The policy.
    pub policy: String,
    /// The repetition.
    pub rep: u32,
    /// The trial, from 1.
    pub trial: u64,
    /// Steps each learner has taken.
    pub step: u64,
    /// Mean over learners of their combined estimate's model error; empty
    /// if the task does not know its truth.
    pub model_kl: Option<f64>,
    /// The model error of the aggregator's global estimate; likewise.
    pub global_model_kl: Option<f64>,
    /// Mean reward per step since the start.
    pub reward_per_step: f64,
    /// Mean reward per step since the previous record.
    pub window_reward_per_step: f64,
    /// Mean cumulative pseudo-regret per learner; tasks that know their
    /// expected rewards (bandits), empty otherwise.
    pub regret_per_agent: Option<f64>,
    /// Fraction of steps, since the start, that took an optimal action;
    /// likewise.
    pub optimal_action_rate: Option<f64>,
    /// Mean over learners of `V*(s₀) − V^π(s₀)`, π greedy on each one's
    /// mean model; MDP tasks, every `eval_every` trials, else empty.
    pub policy_loss: Option<f64>,
    /// Share messages so far, all learners.
    pub messages_up: u64,
    /// Answers so far.
    pub messages_down: u64,
    /// Rows sent up so far.
    pub rows_up: u64,
    /// Rows sent down so far.
    pub rows_down: u64,
    /// Bytes sent up so far (MessagePack).
    pub bytes_up: u64,
    /// Bytes sent down so far.
    pub bytes_down: u64,
}

/// Where a record's window began: the cumulative totals at the last record.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct Window {
    reward: f64,
    steps: u64,
}

/// Which run a record belongs to.
#[derive(Debug, Clone)]
pub struct RecordKey {
    /// Learners in the experiment.
    pub agents: u32,
    /// The share rule.
    pub share: String,
    /// The policy.
    pub policy: String,
    /// The repetition.
    pub rep: u32,
    /// Whether regret is measured.
    pub regret: bool,
}

impl RecordKey {
    /// The key of repetition `rep` with `agents` learners configured so.
    pub fn new<C: SimConfig>(agents: u32, config: &C, rep: u32) -> Self {
        Self {
            agents,
            share: config.sharing().to_string(),
            policy: config.policy().to_string(),
            rep,
            regret: config.measures_regret(),
        }
    }
}

impl TrialRecord {
    /// Reduces per-learner metrics, summing in the order given (learner id
    /// order) so the result does not depend on how learners were batched.
    pub fn measure(
        key: &RecordKey,
        trial: u64,
        learners: &[LearnerMetrics],
        global_model_kl: Option<f64>,
        traffic: Traffic,
        window: &mut Window,
    ) -> Self {
        let n = learners.len().max(1) as f64;
        let losses: Option<Vec<f64>> = learners.iter().map(|m| m.policy_loss).collect();
        let policy_loss = losses
            .filter(|l| !l.is_empty())
            .map(|l| l.iter().sum::<f64>() / n);
        let (mut model_kl, mut reward, mut regret, mut optimal, mut steps) =
            (Some(0.0), 0.0, 0.0, 0u64, 0u64);
        for m in learners {
            model_kl = model_kl.zip(m.model_kl).map(|(a, b)| a + b);
            reward += m.stats.reward;
            regret += m.stats.regret;
            optimal += m.stats.optimal_actions;
            steps += m.stats.steps;
        }
        let per_step = |x: f64, s: u64| if s == 0 { 0.0 } else { x / s as f64 };
        let record = TrialRecord {
            agents: key.agents,
            share: key.share.clone(),
            policy: key.policy.clone(),
            rep: key.rep,
            trial,
            step: learners.first().map_or(0, |m| m.stats.steps),
            model_kl: model_kl.map(|k| k / n),
            global_model_kl,
            reward_per_step: per_step(reward, steps),
            window_reward_per_step: per_step(reward - window.reward, steps - window.steps),
            regret_per_agent: key.regret.then_some(regret / n),
            optimal_action_rate: key.regret.then(|| per_step(optimal as f64, steps)),
            policy_loss,
            messages_up: traffic.messages_up,
            messages_down: traffic.messages_down,
            rows_up: traffic.rows_up,
            rows_down: traffic.rows_down,
            bytes_up: traffic.bytes_up,
            bytes_down: traffic.bytes_down,
        };
        *window = Window { reward, steps };
        record
    }
}
