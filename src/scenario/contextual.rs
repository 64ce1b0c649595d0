//! Scenario files of contextual tasks (`kind = "linear"` and
//! `kind = "classification"`), checked into a
//! `Scenario<ContextualEnvironment>`: the same sections and checks as the
//! tabular ones, with the regression's settings in `[learner]`.

use std::sync::Arc;

use super::{
    Check, Overrides, RawArms, RawLearner, RawScenario, RawShare, RawTask, Scenario, Sections,
    assemble, beside, run_length, shipped_model, unreadable,
};
use crate::env::{
    Classification, ContextualEnvironment, ContextualTask, Dataset, LinearBandit, ThetaChange,
};
use crate::error::{ParamError, Result};
use crate::learner::ContextualConfig;
use crate::linear::{LinearConfig, LinearPolicy, MAX_FEATURES, Noise};
use crate::rng::task_rng;
use crate::share::Sharing;

/// The task kinds this module reads.
pub(super) const KINDS: [&str; 2] = ["linear", "classification"];

/// The most arms a linear task may have.
const MAX_LINEAR_ARMS: u64 = 10_000;

/// Checks a contextual scenario; `raw.task.kind` is one of [`KINDS`].
pub(super) fn validate(
    raw: RawScenario,
    source: &str,
    default_name: &str,
    o: &Overrides,
) -> Result<Scenario<ContextualEnvironment>> {
    let c = Check { source };
    let cli = Check {
        source: "command line",
    };
    let seed = o.seed.or(raw.run.seed).unwrap_or(42);
    let passes = match raw.task.passes {
        Some(p) => Some(c.positive_int("task.passes", p, 1_000_000)?),
        None => None,
    };
    let env = task(raw.task, &c, seed)?;
    let mut run_section = raw.run;
    if let ContextualEnvironment::Classification(t) = &env {
        // One pass over the data unless the run says how long.
        if run_section.trials.is_none() {
            let passes = passes.unwrap_or(1);
            let steps = run_section.steps_per_trial.unwrap_or(1).max(1);
            let total = passes.saturating_mul(t.data().rows() as u64);
            run_section.trials = Some(total.div_ceil(steps));
        } else if passes.is_some() {
            return Err(c.err(
                "task.passes",
                "the run's length is given by run.trials; give one of the two",
            ));
        }
    }
    let (steps_per_trial, trials) = run_length(&run_section, &c, &cli, o)?;
    if let ContextualEnvironment::Linear(t) = &env
        && let Some(&step) = t
            .change_steps()
            .iter()
            .find(|&&s| s >= trials * steps_per_trial)
    {
        return Err(c.err(
            "task.drift",
            format!(
                "a change at step {step} is beyond the run's {} steps; it would never happen",
                trials * steps_per_trial
            ),
        ));
    }
    let agent = agent_config(&raw.learner, &raw.share, &c, &cli, o, &env)?;
    let learner = ContextualConfig::new(env, agent).map_err(|e| match e {
        crate::Error::Invalid { field, problem, .. } => c.err(format!("learner.{field}"), problem),
        other => other,
    })?;
    let sections = Sections {
        name: raw.name,
        description: raw.description,
        broadcast_every: raw.share.broadcast_every,
        run: run_section,
        metrics: raw.metrics,
    };
    assemble(
        learner,
        sections,
        &c,
        o,
        default_name,
        (steps_per_trial, trials),
        false,
    )
}

/// Fields only the tabular tasks take, and the contextual kinds' own.
fn check_fields(t: &RawTask, c: &Check) -> Result<()> {
    let given = [
        ("arms", t.arms.is_some()),
        ("features", t.features.is_some()),
        ("theta", t.theta.is_some()),
        ("rewards", t.rewards.is_some()),
        ("noise_sigma", t.noise_sigma.is_some()),
        ("drift", !t.drift.is_empty()),
        ("contexts", t.contexts.is_some()),
        ("data", t.data.is_some()),
        ("label", t.label.is_some()),
        ("passes", t.passes.is_some()),
        ("standardize", t.standardize.is_some()),
    ];
    let tabular_only = t.gamma.is_some()
        || t.size.is_some()
        || t.intended.is_some()
        || t.model.is_some()
        || t.start.is_some()
        || t.bins.is_some()
        || t.demand.is_some()
        || t.max_vms.is_some();
    let allowed: &[&str] = if t.kind == "linear" {
        &[
            "arms",
            "features",
            "theta",
            "rewards",
            "noise_sigma",
            "drift",
            "contexts",
        ]
    } else {
        &["data", "label", "passes", "standardize"]
    };
    let misplaced = given.iter().find(|(f, set)| *set && !allowed.contains(f));
    if let Some((field, _)) = misplaced {
        return Err(c.err(
            format!("task.{field}"),
            format!(
                "not a field of a {} task; it takes {}",
                t.kind,
                allowed.join(", ")
            ),
        ));
    }
    if tabular_only {
        return Err(c.err(
            "task",
            format!(
                "a field of the tabular tasks; a {} task takes {}",
                t.kind,
                allowed.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The task section of a contextual kind.
fn task(t: RawTask, c: &Check, seed: u64) -> Result<ContextualEnvironment> {
    check_fields(&t, c)?;
    if t.kind == "linear" {
        linear(t, c, seed).map(ContextualEnvironment::Linear)
    } else {
        classification(t, c).map(ContextualEnvironment::Classification)
    }
}

fn linear(t: RawTask, c: &Check, seed: u64) -> Result<LinearBandit> {
    let arms = match t.arms {
        Some(RawArms::Count(k)) => c.positive_int("task.arms", k, MAX_LINEAR_ARMS)? as usize,
        Some(RawArms::Rates(_)) => {
            return Err(c.err(
                "task.arms",
                "a linear task takes a number of arms; its parameters go in task.theta",
            ));
        }
        None => match &t.theta {
            Some(theta) => theta.len(),
            None => return Err(c.err("task.arms", "missing; the number of arms, e.g. arms = 10")),
        },
    };
    let contexts = match &t.contexts {
        Some(path) => Some(context_rows(path, c)?),
        None => None,
    };
    let features = match (t.features, &t.theta, &contexts) {
        (Some(d), _, _) => c.positive_int("task.features", d as u64, MAX_FEATURES as u64)? as usize,
        (None, Some(theta), _) => theta.first().map_or(0, Vec::len),
        (None, None, Some((d, _))) => *d,
        (None, None, None) => {
            return Err(c.err(
                "task.features",
                "missing; the number of features d of a context, e.g. features = 20",
            ));
        }
    };
    let noise_sd = c.finite("task.noise_sigma", t.noise_sigma.unwrap_or(0.5))?;
    if noise_sd < 0.0 {
        return Err(c.err(
            "task.noise_sigma",
            format!("{noise_sd}; the reward noise's σ is ≥ 0"),
        ));
    }
    let logistic = match t.rewards.as_deref() {
        None | Some("gaussian") => false,
        Some("logistic") => true,
        Some(other) => {
            return Err(c.err(
                "task.rewards",
                format!("`{other}`; use \"gaussian\" (xᵀθ + noise) or \"logistic\" (clicks)"),
            ));
        }
    };
    if logistic && t.noise_sigma.is_some() {
        return Err(c.err(
            "task.noise_sigma",
            "logistic rewards are clicks, with no added noise",
        ));
    }
    let theta = match t.theta {
        Some(theta) => {
            if theta.len() != arms {
                return Err(c.err(
                    "task.theta",
                    format!("{} vectors for {arms} arms; give one per arm", theta.len()),
                ));
            }
            if let Some(k) = theta.iter().position(|v| v.len() != features) {
                return Err(c.err(
                    format!("task.theta[{k}]"),
                    format!(
                        "{} numbers; the task has {features} features",
                        theta[k].len()
                    ),
                ));
            }
            theta
        }
        None => LinearBandit::random(arms, features, 0.0, &mut task_rng(seed))
            .map_err(|e| super::under_task(c, e))?
            .theta_rows(),
    };
    let task = if logistic {
        LinearBandit::logistic(theta)
    } else {
        LinearBandit::new(theta, noise_sd)
    }
    .map_err(|e| super::under_task(c, e))?;
    let task = match contexts {
        Some((d, _)) if d != features => {
            return Err(c.err(
                "task.contexts",
                format!("rows of {d} features; the task has {features}"),
            ));
        }
        Some((_, rows)) => task
            .with_contexts(Arc::new(rows))
            .map_err(|e| super::under_task(c, e))?,
        None => task,
    };
    let changes = drift(&t.drift, c)?;
    task.with_drift(changes)
        .map_err(|e| super::under_task(c, e))
}

/// A linear task's drift schedule: new θ for some arms from a step on.
fn drift(raw: &[super::RawDrift], c: &Check) -> Result<Vec<ThetaChange>> {
    let mut changes = Vec::with_capacity(raw.len());
    for (k, d) in raw.iter().enumerate() {
        let field = |f: &str| format!("task.drift[{k}].{f}");
        if d.trial.is_some() || d.intended.is_some() {
            return Err(c.err(
                format!("task.drift[{k}]"),
                "a linear change takes `step`, `scale` and `set`",
            ));
        }
        let step = d
            .step
            .ok_or_else(|| c.err(field("step"), "missing; the decision the change happens at"))?;
        let scale = c.finite(&field("scale"), d.scale.unwrap_or(1.0))?;
        let mut set = Vec::with_capacity(d.set.len());
        for (j, s) in d.set.iter().enumerate() {
            let at = |f: &str| format!("task.drift[{k}].set[{j}].{f}");
            if s.p.is_some() {
                return Err(c.err(at("p"), "a linear arm takes a new `theta`"));
            }
            let theta = s
                .theta
                .clone()
                .ok_or_else(|| c.err(at("theta"), "missing; the arm's new parameters"))?;
            set.push((s.arm, theta));
        }
        changes.push(ThetaChange { step, scale, set });
    }
    Ok(changes)
}

/// A linear task's contexts from a CSV file with a header (every column a
/// feature): their number of features and the rows, row after row.
fn context_rows(path: &std::path::Path, c: &Check) -> Result<(usize, Vec<f64>)> {
    let source = path.display().to_string();
    let text = match shipped_model(c.source, path) {
        Some(text) => Ok(text.to_string()),
        None => crate::error::read_text(
            &beside(c.source, path),
            crate::env::MAX_DATASET_BYTES,
            "contexts are CSV text",
        ),
    }
    .map_err(|e| unreadable(c, "task.contexts", e))?;
    let (names, x, _) = crate::env::read_csv(&text, &source, None)?;
    if x.is_empty() {
        return Err(c.err("task.contexts", format!("{source} has no rows")));
    }
    Ok((names.len(), x))
}

fn classification(t: RawTask, c: &Check) -> Result<Classification> {
    let path = t.data.ok_or_else(|| {
        c.err(
            "task.data",
            "missing; the path of a CSV file with a header, relative to the scenario",
        )
    })?;
    let label = t.label.unwrap_or_else(|| "label".to_string());
    let standardize = t.standardize.unwrap_or(true);
    let data = match shipped_model(c.source, &path) {
        Some(text) => {
            Dataset::from_csv_text(text, &path.display().to_string(), &label, standardize)
        }
        None => Dataset::from_csv(&beside(c.source, &path), &label, standardize),
    }
    .map_err(|e| unreadable(c, "task.data", e))?;
    Ok(Classification::new(Arc::new(data)))
}

/// The regression and its policy: `[learner]` and `[share]` of a
/// contextual scenario.
fn agent_config(
    raw: &RawLearner,
    share: &RawShare,
    c: &Check,
    cli: &Check,
    o: &Overrides,
    env: &ContextualEnvironment,
) -> Result<LinearConfig> {
    for (field, set) in [
        ("prior", raw.prior.is_some()),
        ("forgetting", raw.forgetting.is_some()),
        ("resample_every", raw.resample_every.is_some()),
    ] {
        if set {
            return Err(c.err(
                format!("learner.{field}"),
                "a field of the tabular learners; a contextual learner takes policy, ridge, \
                 noise_variance and noise_prior",
            ));
        }
    }
    if o.policy.is_some() && o.linear_policy.is_none() {
        return Err(cli.err(
            "--policy",
            format!(
                "not a policy of contextual learners; use {}",
                crate::linear::LINEAR_POLICY_FORMS
            ),
        ));
    }
    let policy = match o.linear_policy {
        Some(p) => p,
        None => match &raw.policy {
            Some(s) => s
                .parse()
                .map_err(|e: ParamError| c.err("learner.policy", e.problem()))?,
            None => LinearPolicy::default(),
        },
    };
    let noise = match (raw.noise_variance, raw.noise_prior) {
        (Some(_), Some(_)) => {
            return Err(c.err(
                "learner.noise_prior",
                "give noise_variance (a known σ²) or noise_prior (a Gamma prior on 1/σ²), not both",
            ));
        }
        (Some(variance), None) => Noise::Known { variance },
        (None, Some([shape, rate])) => Noise::Unknown { shape, rate },
        (None, None) => Noise::Known { variance: 1.0 },
    };
    let mut builder = LinearConfig::builder(env.arms(), env.context_len())
        .ridge(raw.ridge.unwrap_or(1.0))
        .noise(noise)
        .policy(policy);
    let sharing: Option<Sharing> = match o.share {
        Some(s) => Some(s),
        None => match &share.rule {
            Some(s) => Some(
                s.parse()
                    .map_err(|e: ParamError| c.err("share.rule", e.problem()))?,
            ),
            None => None,
        },
    };
    if let Some(s) = sharing {
        builder = builder.sharing(s);
    }
    if let Some(k) = share.check_every {
        builder = builder.check_every(c.positive_int("share.check_every", k, u64::MAX)?);
    }
    builder.build().map_err(|e| match e {
        crate::Error::Invalid { field, problem, .. } => c.err(format!("learner.{field}"), problem),
        other => other,
    })
}
