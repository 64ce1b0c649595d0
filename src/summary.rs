//! `summary.json` and the numbers of the summary table: a run's final
//! metrics per agent count, the task's baselines and Lai–Robbins bound where
//! it has them, and the run's timings.

use ndarray::{Array2, Axis};
use serde::Serialize;

use crate::env::Environment;
use crate::learner::{SimConfig, Workload};
use crate::posterior::divergence::kl_bernoulli;
use crate::record::TrialRecord;
use crate::runtime::RunOutcome;
use crate::scenario::Scenario;

/// `summary.json`. `results[].final` holds means over repetitions at the last
/// trial and nothing that depends on wall-clock time; timings are apart.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The scenario's name.
    pub scenario: String,
    /// `bandit`, `gridworld`, `tabular` or `vm`.
    pub task: String,
    /// `lockstep` (reproducible) or `async`.
    pub mode: crate::runtime::Mode,
    /// The run's seed.
    pub seed: u64,
    /// Trials per experiment.
    pub trials: u64,
    /// Steps per trial.
    pub steps_per_trial: u64,
    /// Bandits without drift: the Lai–Robbins asymptotic regret bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lai_robbins: Option<LaiRobbins>,
    /// One row per agent count.
    pub results: Vec<ResultRow>,
    /// VM tasks: reward per period of each fixed allocation and of the
    /// threshold autoscaler, on the same demand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baselines: Option<Baselines>,
    /// Wall-clock cost per agent count.
    pub timing: Vec<TimingRow>,
}

/// Named rewards per period, in a fixed order (`fixed-1` … `threshold`).
#[derive(Debug, Clone)]
pub struct Baselines(pub Vec<(String, f64)>);

impl Serialize for Baselines {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, reward) in &self.0 {
            map.serialize_entry(name, reward)?;
        }
        map.end()
    }
}

/// `Σ_a Δ_a / kl(μ_a, μ*)`: any consistent policy's regret grows at least
/// like this constant times ln T.
#[derive(Debug, Clone, Serialize)]
pub struct LaiRobbins {
    /// `Σ_a Δ_a / kl(μ_a, μ*)`.
    pub constant: f64,
    /// `constant × ln(steps)`, one learner's asymptotic bound at the last step.
    pub bound_at_last_step: f64,
}

/// Final results of one agent count, over its repetitions.
#[derive(Debug, Clone, Serialize)]
pub struct ResultRow {
    /// Learners per experiment.
    pub agents: u32,
    /// The share rule.
    pub share: String,
    /// The policy.
    pub policy: String,
    /// Repetitions.
    pub reps: u32,
    /// The last trial.
    pub trials: u64,
    /// Means over repetitions at the last trial.
    #[serde(rename = "final")]
    pub final_: Final,
    /// Standard errors of the `final` means over repetitions.
    pub stderr: Final,
    /// Mean over repetitions of the first recorded trial whose model error
    /// fell below `metrics.target_model_kl`; absent if any repetition never did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converged_trial: Option<f64>,
    /// `converged_trial(1 agent) / converged_trial(N)`, when both exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speedup: Option<f64>,
}

/// Every metric at the last trial (means, or standard errors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Final {
    /// The learners' mean model error; `null` if the task knows no truth.
    pub model_kl: f64,
    /// The global estimate's model error.
    pub global_model_kl: f64,
    /// Mean reward per step since the start.
    pub reward_per_step: f64,
    /// Cumulative pseudo-regret per learner (bandits).
    pub regret_per_agent: f64,
    /// Fraction of steps that took a best action (bandits).
    pub optimal_action_rate: f64,
    /// MDP tasks; `null` for bandits.
    pub policy_loss: f64,
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
}

impl Final {
    const FIELDS: usize = 12;

    fn of(r: &TrialRecord) -> [f64; Self::FIELDS] {
        [
            r.model_kl.unwrap_or(f64::NAN),
            r.global_model_kl.unwrap_or(f64::NAN),
            r.reward_per_step,
            r.regret_per_agent.unwrap_or(f64::NAN),
            r.optimal_action_rate.unwrap_or(f64::NAN),
            r.policy_loss.unwrap_or(f64::NAN),
            r.messages_up as f64,
            r.messages_down as f64,
            r.rows_up as f64,
            r.rows_down as f64,
            r.bytes_up as f64,
            r.bytes_down as f64,
        ]
    }

    fn from_array(a: &[f64]) -> Self {
        Final {
            model_kl: a[0],
            global_model_kl: a[1],
            reward_per_step: a[2],
            regret_per_agent: a[3],
            optimal_action_rate: a[4],
            policy_loss: a[5],
            messages_up: a[6],
            messages_down: a[7],
            rows_up: a[8],
            rows_down: a[9],
            bytes_up: a[10],
            bytes_down: a[11],
        }
    }
}

/// Wall-clock throughput per agent count, over all repetitions.
#[derive(Debug, Clone, Serialize)]
pub struct TimingRow {
    /// Learners per experiment.
    pub agents: u32,
    /// Wall-clock seconds, summed over its experiments.
    pub seconds: f64,
    /// Steps of all learners per second.
    pub steps_per_second: f64,
    /// What crossed the wire, summed over its experiments, when the
    /// learners lived in other processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wire: Option<crate::share::WireTraffic>,
}

impl Summary {
    /// The summary of `outcome`, a run of `scenario`.
    pub fn new<T: Workload>(scenario: &Scenario<T>, outcome: &RunOutcome) -> Self {
        // Baselines and the Lai–Robbins bound exist for built-in tasks.
        let builtin = (scenario.learner.task() as &dyn std::any::Any).downcast_ref::<Environment>();
        let mut results: Vec<ResultRow> = Vec::new();
        let mut timing = Vec::new();
        for &agents in &scenario.run.agents {
            if results.iter().any(|r| r.agents == agents) {
                continue;
            }
            let finals = last_records(&outcome.records, agents);
            let Some(first) = finals.first() else {
                continue;
            };
            let mut table = Array2::<f64>::zeros((finals.len(), Final::FIELDS));
            for (mut row, r) in table.rows_mut().into_iter().zip(&finals) {
                row.assign(&ndarray::arr1(&Final::of(r)));
            }
            let mean = table.mean_axis(Axis(0)).expect("at least one repetition");
            let stderr = if finals.len() > 1 {
                table.std_axis(Axis(0), 1.0) / (finals.len() as f64).sqrt()
            } else {
                ndarray::Array1::zeros(Final::FIELDS)
            };
            results.push(ResultRow {
                agents,
                share: first.share.clone(),
                policy: first.policy.clone(),
                reps: finals.len() as u32,
                trials: first.trial,
                final_: Final::from_array(mean.as_slice().expect("contiguous")),
                stderr: Final::from_array(stderr.as_slice().expect("contiguous")),
                converged_trial: scenario
                    .metrics
                    .target_model_kl
                    .and_then(|t| converged_trial(&outcome.records, agents, t)),
                speedup: None,
            });
            let mine = || outcome.timings.iter().filter(|t| t.agents == agents);
            let (seconds, steps) =
                mine().fold((0.0, 0u64), |(s, n), t| (s + t.seconds, n + t.steps));
            let wire = mine().filter_map(|t| t.wire).reduce(|mut a, b| {
                a.add(&b);
                a
            });
            timing.push(TimingRow {
                agents,
                seconds,
                steps_per_second: steps as f64 / seconds.max(1e-9),
                wire,
            });
        }
        let single = results
            .iter()
            .find(|r| r.agents == 1)
            .and_then(|r| r.converged_trial);
        for r in &mut results {
            r.speedup = single.zip(r.converged_trial).map(|(t1, tn)| t1 / tn);
        }
        Summary {
            scenario: scenario.name.clone(),
            task: scenario.learner.kind().to_string(),
            mode: outcome.mode,
            seed: scenario.run.seed,
            trials: scenario.run.trials,
            steps_per_trial: scenario.run.steps_per_trial,
            lai_robbins: builtin.and_then(|env| lai_robbins(env, scenario.steps())),
            results,
            baselines: match builtin {
                Some(Environment::Vm(vm)) => Some(Baselines(vm.baselines(
                    scenario.run.trials,
                    scenario.run.steps_per_trial,
                    scenario.run.reps,
                    scenario.run.seed,
                ))),
                _ => None,
            },
            timing,
        }
    }
}

/// The last record of every repetition with `agents` learners, by repetition.
fn last_records(records: &[TrialRecord], agents: u32) -> Vec<&TrialRecord> {
    let mut last: Vec<&TrialRecord> = Vec::new();
    for r in records.iter().filter(|r| r.agents == agents) {
        match last.iter_mut().find(|l| l.rep == r.rep) {
            Some(l) if r.trial >= l.trial => *l = r,
            Some(_) => {}
            None => last.push(r),
        }
    }
    last.sort_by_key(|r| r.rep);
    last
}

fn converged_trial(records: &[TrialRecord], agents: u32, target: f64) -> Option<f64> {
    let reps: Vec<u32> = last_records(records, agents)
        .iter()
        .map(|r| r.rep)
        .collect();
    let mut total = 0.0;
    for rep in &reps {
        let first = records
            .iter()
            .filter(|r| {
                r.agents == agents && r.rep == *rep && r.model_kl.is_some_and(|k| k < target)
            })
            .map(|r| r.trial)
            .min()?;
        total += first as f64;
    }
    Some(total / reps.len() as f64)
}

/// The Lai–Robbins constant of a bandit without drift.
pub fn lai_robbins(env: &Environment, steps: u64) -> Option<LaiRobbins> {
    let Environment::Bandit(b) = env else {
        return None;
    };
    if !b.changes().is_empty() {
        return None;
    }
    let best = b.best();
    let constant: f64 = b
        .probabilities()
        .iter()
        .filter(|&&p| p < best)
        .map(|&p| (best - p) / kl_bernoulli(p, best))
        .sum();
    Some(LaiRobbins {
        constant,
        bound_at_last_step: constant * (steps.max(1) as f64).ln(),
    })
}
