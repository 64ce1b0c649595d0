mod solve;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use parbayes::metrics::TrialRecord;
use parbayes::policy::Policy;
use parbayes::report::{
    ResultsDir, Summary, summary_table, sweep_table, write_curves_svg, write_pareto_svg,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parbayes::runtime::{Checkpoints, Continuity, Mode};
use parbayes::scenario::{SHIPPED, default_results_dir};
use parbayes::share::ShareRule;
use parbayes::sweep::run_sweep;
use parbayes::{Observe, Overrides, RunOptions, Scenario, run_scenario};

/// Parallel Bayesian reinforcement learning by actor message passing.
#[derive(Debug, Parser)]
#[command(
    name = "parbayes",
    version,
    after_help = "Example:\n  parbayes run scenarios/bandit-news.toml --agents 1,10 --reps 5"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario with N agents; write trials.csv, summary.json and plots.
    #[command(
        after_help = "Examples:\n  parbayes run scenarios/bandit-news.toml\n  parbayes run bandit-news --agents 1,2,5,10 --reps 20 --share kl:0.001 --out results/news"
    )]
    Run(RunArgs),
    /// Run a scenario under several share rules: communication against accuracy.
    #[command(
        after_help = "Examples:\n  parbayes sweep scenarios/bandit-news.toml --agents 10 --share never,kl:0.001,kl:0.00001,always\n  parbayes sweep gridworld --agents 1,10 --reps 5 --out results/gw-sweep --format json"
    )]
    Sweep(SweepArgs),
    /// Continue an interrupted run from its checkpoints.
    #[command(
        after_help = "Example:\n  parbayes run bandit-news --checkpoint-every 1000 --out results/news\n  (Ctrl-C)\n  parbayes resume results/news"
    )]
    Resume {
        /// The results folder of the interrupted run.
        dir: PathBuf,
    },
    /// Validate scenario files without running them.
    #[command(after_help = "Example:\n  parbayes check scenarios/*.toml")]
    Check {
        /// Scenario files (or names of shipped scenarios).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// List the shipped scenarios.
    #[command(after_help = "Example:\n  parbayes scenarios")]
    Scenarios,
    /// Solve a task's true model by value iteration: V*(start) and the optimal policy.
    #[command(
        after_help = "Examples:\n  parbayes solve scenarios/gridworld.toml\n  parbayes solve scenarios/models/riverswim.json --gamma 0.95 --format json"
    )]
    Solve(solve::SolveArgs),
}

/// What `run` and `sweep` share.
#[derive(Debug, clap::Args)]
struct Common {
    /// A scenario file, or the name of a shipped one (see `parbayes scenarios`).
    scenario: PathBuf,
    /// Agent counts to run, comma-separated.
    #[arg(long, value_delimiter = ',')]
    agents: Option<Vec<u32>>,
    /// Repetitions per agent count.
    #[arg(long)]
    reps: Option<u32>,
    /// Seed of every learner's random stream.
    #[arg(long)]
    seed: Option<u64>,
    /// Trials per repetition.
    #[arg(long)]
    trials: Option<u64>,
    /// Policy: posterior-sampling, epsilon-greedy:E, softmax:T, ucb.
    #[arg(long)]
    policy: Option<Policy>,
    /// Results folder [default: results/<scenario>[-sweep]-<UTC time>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Tokio worker threads [default: one per core]; results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// lockstep: a barrier every trial, reproducible; async: free-running
    /// learners, faster, results depend on timing.
    #[arg(long, value_enum, default_value_t = Mode::Lockstep)]
    mode: Mode,
    /// Fault injection: each learner crashes with probability P per trial
    /// and is rebuilt from the aggregator's record of it (lockstep).
    #[arg(long, value_name = "P")]
    fault_kill: Option<f64>,
}

impl Common {
    fn overrides(&self, share: Option<ShareRule>) -> Overrides {
        Overrides {
            agents: self.agents.clone(),
            reps: self.reps,
            seed: self.seed,
            trials: self.trials,
            share,
            policy: self.policy,
            fault_kill: self.fault_kill,
        }
    }
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Share rule: never, always, periodic:K, kl:θ, kl-posterior:θ.
    #[arg(long)]
    share: Option<ShareRule>,
    /// Also write a checkpoint every K trials (lockstep; Ctrl-C always
    /// writes one), so `parbayes resume` can continue after a crash.
    #[arg(long, value_name = "K")]
    checkpoint_every: Option<u64>,
}

/// `run.json`: what `parbayes resume` needs to rebuild the run.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    scenario: PathBuf,
    agents: Option<Vec<u32>>,
    reps: Option<u32>,
    seed: Option<u64>,
    trials: Option<u64>,
    share: Option<String>,
    policy: Option<String>,
    threads: Option<usize>,
    checkpoint_every: Option<u64>,
    fault_kill: Option<f64>,
}

impl Manifest {
    fn overrides(&self, path: &std::path::Path) -> Result<Overrides> {
        let bad = |field: &str, problem: String| {
            parbayes::Error::invalid(path.display().to_string(), field, problem)
        };
        Ok(Overrides {
            agents: self.agents.clone(),
            reps: self.reps,
            seed: self.seed,
            trials: self.trials,
            share: self
                .share
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e: String| bad("share", e))?,
            policy: self
                .policy
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e: String| bad("policy", e))?,
            fault_kill: self.fault_kill,
        })
    }
}

#[derive(Debug, clap::Args)]
struct SweepArgs {
    #[command(flatten)]
    common: Common,
    /// Share rules to compare, comma-separated; include `never` and `always`
    /// for the accuracy gain.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "never,periodic:10,periodic:100,kl:0.1,kl:0.01,kl:0.001,kl-posterior:1,always"
    )]
    share: Vec<ShareRule>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
}

pub fn execute(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run(args),
        Command::Sweep(args) => sweep(args),
        Command::Resume { dir } => resume(&dir),
        Command::Check { scenarios } => {
            for path in scenarios {
                let s = Scenario::load(&path, &Overrides::default())?;
                println!(
                    "{}: ok ({}, {} agent counts, {} trials × {} reps)",
                    path.display(),
                    s.name,
                    s.run.agents.len(),
                    s.run.trials,
                    s.run.reps
                );
            }
            Ok(())
        }
        Command::Solve(args) => solve::solve(args),
        Command::Scenarios => {
            for (name, text) in SHIPPED {
                let s = Scenario::parse(text, name, name, &Overrides::default())?;
                println!("{name:<20} {}", s.description);
            }
            Ok(())
        }
    }
}

fn run(
    RunArgs {
        common,
        share,
        checkpoint_every,
    }: RunArgs,
) -> Result<()> {
    let overrides = common.overrides(share);
    let scenario = Scenario::load(&common.scenario, &overrides)?;
    if let Some(k) = checkpoint_every {
        anyhow::ensure!(
            k >= 1 && common.mode == Mode::Lockstep,
            parbayes::Error::invalid(
                "command line",
                "--checkpoint-every",
                "must be ≥ 1, and the async mode has no checkpoints",
            )
        );
    }
    let options = run_options(common.threads, common.mode)?;
    let out = common
        .out
        .clone()
        .unwrap_or_else(|| default_results_dir(&scenario));
    let dir = ResultsDir::create(&out)?;
    let manifest = Manifest {
        // A file by its absolute path; a shipped scenario by its name.
        scenario: if common.scenario.is_file() {
            std::path::absolute(&common.scenario).unwrap_or(common.scenario.clone())
        } else {
            common.scenario.clone()
        },
        agents: overrides.agents,
        reps: overrides.reps,
        seed: overrides.seed,
        trials: overrides.trials,
        share: share.map(|s| s.to_string()),
        policy: common.policy.map(|p| p.to_string()),
        threads: common.threads,
        checkpoint_every,
        fault_kill: common.fault_kill,
    };
    dir.write_file(
        "run.json",
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )?;
    execute_run(
        &scenario,
        options,
        dir,
        checkpoint_every,
        false,
        common.format,
    )
}

/// Continues the run in `path` from its checkpoints.
fn resume(path: &std::path::Path) -> Result<()> {
    let manifest_path = path.join("run.json");
    let text = std::fs::read_to_string(&manifest_path).map_err(|source| parbayes::Error::Read {
        path: manifest_path.clone(),
        source,
    })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        parbayes::Error::invalid(
            manifest_path.display().to_string(),
            "(top level)",
            format!("{e}; is this a parbayes results folder?"),
        )
    })?;
    let scenario = Scenario::load(&manifest.scenario, &manifest.overrides(&manifest_path)?)?;
    let options = run_options(manifest.threads, Mode::Lockstep)?;
    let dir = ResultsDir::reopen(path)?;
    execute_run(
        &scenario,
        options,
        dir,
        manifest.checkpoint_every,
        true,
        Format::Table,
    )
}

/// Runs in lockstep with checkpoints in `dir/checkpoints` (async: without),
/// stopping cleanly on Ctrl-C; then writes the summary and plots.
fn execute_run(
    scenario: &Scenario,
    mut options: RunOptions,
    mut dir: ResultsDir,
    checkpoint_every: Option<u64>,
    resume: bool,
    format: Format,
) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    if options.mode == Mode::Lockstep {
        options.continuity = Continuity {
            checkpoints: Checkpoints {
                dir: Some(dir.path().join("checkpoints")),
                every: checkpoint_every,
                resume,
            },
            stop: Some(stop.clone()),
        };
        stop_on_ctrl_c(stop);
    }
    let bar = progress_bar(
        scenario.run.trials * u64::from(scenario.run.reps) * scenario.run.agents.len() as u64,
    );
    let mut progress = Progress {
        dir: &mut dir,
        bar: &bar,
    };
    let outcome = run_scenario(scenario, &options, &mut progress);
    bar.finish_and_clear();
    dir.finish()?;
    let outcome = match outcome {
        Err(parbayes::Error::Interrupted) => {
            eprintln!(
                "interrupted: the records so far are in {0}/trials.csv and a checkpoint in {0}/checkpoints\nresume with: parbayes resume {0}",
                dir.path().display()
            );
            return Err(parbayes::Error::Interrupted.into());
        }
        other => other?,
    };

    let summary = Summary::new(scenario, &outcome);
    let json = serde_json::to_string_pretty(&summary)?;
    dir.write_file("summary.json", json.as_bytes())?;
    let title = format!(
        "{}: {} sharing, {}",
        scenario.name,
        scenario.learner.agent().share(),
        scenario.learner.agent().policy()
    );
    write_curves_svg(&dir.path().join("curves.svg"), &title, &outcome.records)?;
    // Finished: trials.csv and summary.json hold everything the checkpoints did.
    let _ = std::fs::remove_dir_all(dir.path().join("checkpoints"));

    let mut stdout = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(stdout, "{json}")?,
        Format::Table => {
            write!(stdout, "{}", summary_table(&summary))?;
            writeln!(stdout, "results: {}", dir.path().display())?;
        }
    }
    Ok(())
}

/// Raises `stop` on the first Ctrl-C; the run then ends its current trial,
/// writes a checkpoint and returns.
fn stop_on_ctrl_c(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        if runtime.block_on(tokio::signal::ctrl_c()).is_ok() {
            stop.store(true, Ordering::SeqCst);
        }
    });
}

fn run_options(threads: Option<usize>, mode: Mode) -> Result<RunOptions> {
    let mut options = RunOptions {
        mode,
        ..RunOptions::default()
    };
    if let Some(t) = threads {
        anyhow::ensure!(
            t >= 1,
            parbayes::Error::Invalid {
                source_name: "command line".into(),
                field: "--threads".into(),
                problem: "0 threads; use 1 or more".into()
            }
        );
        options.threads = t;
    }
    Ok(options)
}

/// A progress bar on stderr over `trials` trials, hidden unless stderr is a
/// terminal.
fn progress_bar(trials: u64) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(trials)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {percent}% ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

fn sweep(SweepArgs { common, share }: SweepArgs) -> Result<()> {
    let scenario = Scenario::load(&common.scenario, &common.overrides(None))?;
    let options = run_options(common.threads, common.mode)?;
    let out = common.out.unwrap_or_else(|| {
        let mut dir = default_results_dir(&scenario);
        let name = dir.file_name().map(|n| {
            n.to_string_lossy()
                .replacen(&scenario.name, &format!("{}-sweep", scenario.name), 1)
        });
        if let Some(n) = name {
            dir.set_file_name(n);
        }
        dir
    });
    let mut dir = ResultsDir::create(&out)?;
    let bar = progress_bar(
        scenario.run.trials
            * u64::from(scenario.run.reps)
            * scenario.run.agents.len() as u64
            * share.len() as u64,
    );
    let mut progress = Progress {
        dir: &mut dir,
        bar: &bar,
    };
    let (sweep, _) = run_sweep(&scenario, &share, &options, &mut progress)?;
    bar.finish_and_clear();
    dir.finish()?;

    let json = serde_json::to_string_pretty(&sweep)?;
    dir.write_file("sweep.json", json.as_bytes())?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    for row in &sweep.rows {
        csv.serialize(row)?;
    }
    dir.write_file("sweep.csv", &csv.into_inner()?)?;
    let title = format!(
        "{}: communication against accuracy, {}",
        scenario.name,
        scenario.learner.agent().policy()
    );
    write_pareto_svg(&dir.path().join("pareto.svg"), &title, &sweep)?;

    let mut stdout = std::io::stdout().lock();
    match common.format {
        Format::Json => writeln!(stdout, "{json}")?,
        Format::Table => {
            write!(stdout, "{}", sweep_table(&sweep))?;
            writeln!(stdout, "results: {}", dir.path().display())?;
        }
    }
    Ok(())
}

/// Streams records to the results folder and ticks the progress bar.
struct Progress<'a> {
    dir: &'a mut ResultsDir,
    bar: &'a ProgressBar,
}

impl Observe for Progress<'_> {
    fn on_record(&mut self, record: &TrialRecord) -> parbayes::Result<()> {
        self.bar
            .set_message(format!("N = {} rep {}", record.agents, record.rep));
        self.dir.on_record(record)
    }

    fn on_trial(&mut self) {
        self.bar.inc(1);
    }
}
