//! Runs that leave a results folder behind, and their resumption.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::learner::{SimConfig, StateOf, Workload};
use crate::observe::Observe;
use crate::runtime::{Checkpoints, Mode, RunOptions, RunOutcome, run_checked, tokio_runtime};
use crate::scenario::{AnyScenario, Overrides, Scenario};
use crate::share::Sharing;
use crate::sweep::{Sweep, run_sweep};

use super::{FolderLock, ResultsDir};
#[cfg(feature = "plot")]
use super::{write_curves, write_pareto, write_policy_curves};
use crate::summary::Summary;

/// The name of the manifest a resumable run writes into its folder.
pub const MANIFEST: &str = "run.json";

/// Runs `scenario` into the results folder `dir` (see [`ResultsDir`]):
/// `trials.csv` as it goes, then `summary.json` and `curves.svg` and
/// `curves.png`. In
/// lockstep it keeps checkpoints in `dir/checkpoints` (every
/// `checkpoint_every` trials, and whenever `options.continuity.stop` is
/// raised), and removes them once the run has finished; [`resume`]
/// continues from them. `observer` watches the run too.
///
/// A stopped run returns [`Error::Interrupted`]; its folder holds every
/// record written so far and the checkpoints to continue from.
///
/// ```
/// use parbayes::report::{ResultsDir, run_in_folder};
/// use parbayes::{Overrides, RunOptions, Scenario};
///
/// let overrides = Overrides { agents: Some(vec![2]), trials: Some(100), ..Default::default() };
/// let scenario = Scenario::load("bandit-news".as_ref(), &overrides)?;
/// let out = tempfile::tempdir().unwrap();
/// let dir = ResultsDir::create(&out.path().join("news"))?;
/// let summary = run_in_folder(&scenario, &RunOptions::default(), dir, None, &mut ())?;
/// assert_eq!(summary.results[0].agents, 2);
/// for file in ["trials.csv", "summary.json", "curves.svg", "curves.png"] {
///     assert!(out.path().join("news").join(file).is_file());
/// }
/// # Ok::<(), parbayes::Error>(())
/// ```
pub fn run_in_folder<T: Workload>(
    scenario: &Scenario<T>,
    options: &RunOptions,
    dir: ResultsDir,
    checkpoint_every: Option<u64>,
    observer: &mut dyn Observe,
) -> Result<Summary> {
    let folder = Folder {
        checkpoint_every,
        resume: false,
    };
    folder.run_blocking(scenario, options, dir, observer)
}

/// [`run_in_folder`] on the caller's tokio runtime.
pub async fn run_in_folder_async<T: Workload, O: Observe + ?Sized>(
    scenario: &Scenario<T>,
    options: &RunOptions,
    dir: ResultsDir,
    checkpoint_every: Option<u64>,
    observer: &mut O,
) -> Result<Summary> {
    options.check(scenario)?;
    let folder = Folder {
        checkpoint_every,
        resume: false,
    };
    folder.run(scenario, options, dir, observer).await
}

/// How a run uses its folder's checkpoints.
struct Folder {
    checkpoint_every: Option<u64>,
    /// Continue from the checkpoints already there.
    resume: bool,
}

impl Folder {
    fn run_blocking<T: Workload>(
        &self,
        scenario: &Scenario<T>,
        options: &RunOptions,
        dir: ResultsDir,
        observer: &mut dyn Observe,
    ) -> Result<Summary> {
        options.check(scenario)?;
        tokio_runtime(options)?.block_on(self.run(scenario, options, dir, observer))
    }

    async fn run<T: Workload, O: Observe + ?Sized>(
        &self,
        scenario: &Scenario<T>,
        options: &RunOptions,
        mut dir: ResultsDir,
        observer: &mut O,
    ) -> Result<Summary> {
        let Folder {
            checkpoint_every,
            resume,
        } = *self;
        let mut options = options.clone();
        if options.mode == Mode::Lockstep {
            options.continuity.checkpoints = Checkpoints {
                dir: Some(dir.path().join("checkpoints")),
                every: checkpoint_every,
                resume,
                run: fingerprint(scenario),
            };
        } else if checkpoint_every.is_some() || resume {
            return Err(Error::invalid(
                "run options",
                "checkpoints",
                "the async mode has no checkpoints; use the lockstep mode",
            ));
        }
        let outcome = {
            let mut both = (&mut dir, observer);
            run_checked(scenario, &options, &mut both).await?
        };
        finish_in_folder(scenario, &outcome, &dir)
    }
}

/// Writes what a finished run leaves beside its `trials.csv` (which the
/// folder wrote as records came, as an observer of the run):
/// `summary.json` and the curves, and removes the checkpoints, which
/// these now hold in full. For runs driven by something other than
/// [`run_in_folder`], e.g. learners in other processes.
pub fn finish_in_folder<T: Workload>(
    scenario: &Scenario<T>,
    outcome: &RunOutcome,
    dir: &ResultsDir,
) -> Result<Summary> {
    let summary = Summary::new(scenario, outcome);
    let json = serde_json::to_string_pretty(&summary).map_err(|e| Error::Write {
        path: dir.path().join("summary.json"),
        source: std::io::Error::other(e),
    })?;
    dir.write_file("summary.json", json.as_bytes())?;
    #[cfg(feature = "plot")]
    {
        let learner = &scenario.learner;
        let title = format!(
            "{} · learners share by {} · {}",
            scenario.name,
            super::words::sharing(learner.sharing()),
            super::words::policy_str(&learner.policy().to_string())
        );
        let steps = scenario.run.steps_per_trial as f64;
        let changes: Vec<f64> = (scenario.learner.change_steps().iter())
            .map(|&s| s as f64 / steps)
            .collect();
        write_curves(
            &dir.path().join("curves"),
            &title,
            &outcome.records,
            &changes,
        )?;
    }
    let _ = std::fs::remove_dir_all(dir.path().join("checkpoints"));
    Ok(summary)
}

/// Runs `scenario` once per (policy, share rule) into the results folder
/// `dir` (see [`run_sweep`]): `trials.csv` of every run, then `sweep.json`,
/// `sweep.csv` and the Pareto plot `pareto.svg` and `.png`; with several
/// policies also `policies.svg` and `.png`, their curves side by side at
/// the largest agent count.
pub fn sweep_in_folder<T: Workload>(
    scenario: &Scenario<T>,
    policies: &[<T::Config as SimConfig>::Policy],
    rules: &[Sharing],
    options: &RunOptions,
    mut dir: ResultsDir,
    observer: &mut dyn Observe,
) -> Result<Sweep> {
    let (sweep, outcomes) = {
        let mut both = (&mut dir, observer);
        run_sweep(scenario, policies, rules, options, &mut both)?
    };
    let to_io = |name: &str| {
        let path = dir.path().join(name);
        move |e: String| Error::Write {
            path,
            source: std::io::Error::other(e),
        }
    };
    let json =
        serde_json::to_string_pretty(&sweep).map_err(|e| to_io("sweep.json")(e.to_string()))?;
    dir.write_file("sweep.json", json.as_bytes())?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    for row in &sweep.rows {
        csv.serialize(row)
            .map_err(|e| to_io("sweep.csv")(e.to_string()))?;
    }
    let bytes = csv
        .into_inner()
        .map_err(|e| to_io("sweep.csv")(e.to_string()))?;
    dir.write_file("sweep.csv", &bytes)?;
    #[cfg(feature = "plot")]
    write_sweep_figures(scenario, policies, &sweep, outcomes, &dir)?;
    #[cfg(not(feature = "plot"))]
    drop(outcomes);
    Ok(sweep)
}

/// The sweep's Pareto plot and, over several policies, their curves.
#[cfg(feature = "plot")]
fn write_sweep_figures<T: Workload>(
    scenario: &Scenario<T>,
    policies: &[<T::Config as SimConfig>::Policy],
    sweep: &Sweep,
    outcomes: Vec<RunOutcome>,
    dir: &ResultsDir,
) -> Result<()> {
    let policy = match policies {
        [] => super::words::policy_str(&scenario.learner.policy().to_string()),
        [one] => super::words::policy_str(&one.to_string()),
        _ => "each policy".to_string(),
    };
    let title = format!(
        "{} · communication against accuracy · {policy}",
        scenario.name
    );
    // One rule is one point per policy: nothing to trade off.
    let rules: std::collections::BTreeSet<&str> =
        sweep.rows.iter().map(|r| r.share.as_str()).collect();
    if rules.len() > 1 {
        write_pareto(&dir.path().join("pareto"), &title, sweep)?;
    }
    if policies.len() > 1 {
        let records: Vec<_> = outcomes.into_iter().flat_map(|o| o.records).collect();
        let title = format!("{} · strategies compared", scenario.name);
        write_policy_curves(&dir.path().join("policies"), &title, &records)?;
    }
    Ok(())
}

/// `run.json`: how to rebuild a run of a scenario file, for [`resume`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The scenario file (absolute), or the name of a shipped scenario.
    pub scenario: PathBuf,
    /// The overrides given on the command line.
    pub agents: Option<Vec<u32>>,
    /// `--reps`.
    pub reps: Option<u32>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--trials`.
    pub trials: Option<u64>,
    /// `--share`, as text.
    pub share: Option<String>,
    /// `--policy`, as text.
    pub policy: Option<String>,
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--checkpoint-every`.
    pub checkpoint_every: Option<u64>,
    /// `--fault-kill`.
    pub fault_kill: Option<f64>,
    /// How it ran: only lockstep runs have checkpoints to resume from.
    pub mode: Mode,
    /// The run's [`fingerprint`]: a resume must load the same run.
    pub fingerprint: String,
}

impl Manifest {
    /// The manifest of `loaded`, a run of the scenario at `scenario` (a
    /// file, or a shipped name) with these overrides, in `mode`.
    pub fn new<T: Workload>(
        scenario: &Path,
        loaded: &Scenario<T>,
        overrides: &Overrides,
        threads: Option<usize>,
        checkpoint_every: Option<u64>,
        mode: Mode,
    ) -> Self {
        Self {
            // A file by its absolute path; a shipped scenario by its name.
            scenario: if scenario.is_file() {
                std::path::absolute(scenario).unwrap_or_else(|_| scenario.to_path_buf())
            } else {
                scenario.to_path_buf()
            },
            agents: overrides.agents.clone(),
            reps: overrides.reps,
            seed: overrides.seed,
            trials: overrides.trials,
            share: overrides.share.map(|s| s.to_string()),
            policy: (overrides.policy.map(|p| p.to_string()))
                .or_else(|| overrides.linear_policy.map(|p| p.to_string())),
            threads,
            checkpoint_every,
            fault_kill: overrides.fault_kill,
            mode,
            fingerprint: fingerprint(loaded),
        }
    }

    /// Writes it into the results folder.
    pub fn write(&self, dir: &ResultsDir) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::Write {
            path: dir.path().join(MANIFEST),
            source: std::io::Error::other(e),
        })?;
        dir.write_file(MANIFEST, json.as_bytes()).map(|_| ())
    }

    /// Reads the manifest of the results folder `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Error::invalid(
                path.display().to_string(),
                "(top level)",
                format!("{e}; is this a parbayes results folder?"),
            )
        })
    }

    /// The overrides it records; `source` names the manifest in errors.
    pub fn overrides(&self, source: &str) -> Result<Overrides> {
        let share = self
            .share
            .as_deref()
            .map(str::parse::<Sharing>)
            .transpose()
            .map_err(|e| Error::invalid(source, "share", e.problem()))?;
        let mut overrides = Overrides {
            agents: self.agents.clone(),
            reps: self.reps,
            seed: self.seed,
            trials: self.trials,
            share,
            fault_kill: self.fault_kill,
            ..Overrides::default()
        };
        if let Some(p) = &self.policy {
            overrides
                .set_policy(p)
                .map_err(|e| Error::invalid(source, "policy", e.problem()))?;
        }
        Ok(overrides)
    }

    /// The scenario it describes, loaded and checked again.
    pub fn scenario(&self, source: &str) -> Result<AnyScenario> {
        AnyScenario::load(&self.scenario, &self.overrides(source)?)
    }
}

/// Continues the interrupted run in the results folder `dir` from its
/// manifest and checkpoints, in lockstep with `options`' threads; returns
/// the scenario and the summary of the whole run.
///
/// It continues exactly the run that was started, or changes nothing: the
/// folder is locked first; the scenario, loaded again, must have the
/// manifest's fingerprint (an edited scenario, model file or manifest is
/// refused); a finished run or an async one is refused; every checkpoint
/// must belong to the run; only then is `trials.csv` started over.
pub fn resume(
    dir: &Path,
    options: &RunOptions,
    observer: &mut dyn Observe,
) -> Result<(AnyScenario, Summary)> {
    // Read first, so a folder that is not ours is named as such.
    let manifest = Manifest::read(dir)?;
    let lock = FolderLock::acquire(dir)?;
    let source = dir.join(MANIFEST).display().to_string();
    let refuse = |field: &str, problem: String| Err(Error::invalid(&source, field, problem));
    if manifest.mode != Mode::Lockstep {
        return refuse(
            "mode",
            "an async run keeps no checkpoints, so it cannot be resumed; start it again".into(),
        );
    }
    let scenario = manifest.scenario(&source)?;
    let summary = match &scenario {
        AnyScenario::Tabular(s) => resume_loaded(s, &manifest, dir, lock, options, observer),
        AnyScenario::Contextual(s) => resume_loaded(s, &manifest, dir, lock, options, observer),
    }?;
    Ok((scenario, summary))
}

/// [`resume`] once the scenario is loaded.
fn resume_loaded<T: Workload>(
    scenario: &Scenario<T>,
    manifest: &Manifest,
    dir: &Path,
    lock: FolderLock,
    options: &RunOptions,
    observer: &mut dyn Observe,
) -> Result<Summary> {
    let source = dir.join(MANIFEST).display().to_string();
    let refuse = |field: &str, problem: String| Err(Error::invalid(&source, field, problem));
    if fingerprint(scenario) != manifest.fingerprint {
        return refuse(
            "fingerprint",
            format!(
                "{} or the settings in {MANIFEST} changed since the run started; resume \
                 continues only the run that was started, so start a new run instead",
                manifest.scenario.display()
            ),
        );
    }
    if dir.join("summary.json").exists() {
        return refuse(
            "(run)",
            "the run has finished (summary.json is written); there is nothing to resume".into(),
        );
    }
    let checkpoints = Checkpoints {
        dir: Some(dir.join("checkpoints")),
        every: manifest.checkpoint_every,
        resume: true,
        run: manifest.fingerprint.clone(),
    };
    for &agents in &scenario.run.agents {
        for rep in 0..scenario.run.reps {
            checkpoints
                .read_as::<StateOf<T::Config>, <T::Config as SimConfig>::Family>(agents, rep)?;
        }
    }
    let mut options = RunOptions {
        mode: Mode::Lockstep,
        ..options.clone()
    };
    if let Some(t) = manifest.threads {
        options.threads = t;
    }
    let results = ResultsDir::reopen_locked(dir, lock)?;
    let folder = Folder {
        checkpoint_every: manifest.checkpoint_every,
        resume: true,
    };
    folder.run_blocking(scenario, &options, results, observer)
}

/// What identifies a run: a SHA-256 of everything in the scenario that
/// shapes its results (the task with every probability, the learners, the
/// sharing, the run's layout and metrics), but not where it was read from.
/// A resumed run must have the fingerprint of the run that was started.
pub fn fingerprint<T: Workload>(scenario: &Scenario<T>) -> String {
    use sha2::{Digest, Sha256};
    // Debug prints every f64 so that it reads back exactly.
    let text = format!(
        "{:?}",
        (
            &scenario.name,
            &scenario.learner,
            scenario.broadcast_every,
            &scenario.run,
            &scenario.metrics,
        )
    );
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
