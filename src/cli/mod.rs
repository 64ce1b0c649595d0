#[cfg(feature = "remote")]
mod serve;
mod solve;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use parbayes::observe::RunStart;
use parbayes::policy::Policy;
use parbayes::record::TrialRecord;
use parbayes::report::{
    Manifest, ResultsDir, run_in_folder, summary_table, sweep_in_folder, sweep_table,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parbayes::learner::{SimConfig, Workload};
use parbayes::runtime::Mode;
use parbayes::scenario::AnyScenario;
use parbayes::scenario::{SHIPPED, default_results_dir};
use parbayes::share::Sharing;
use parbayes::summary::Summary;
use parbayes::{Observe, Overrides, ParamError, RunOptions, Scenario};

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
        after_help = "Examples:\n  parbayes run scenarios/bandit-news.toml\n  parbayes run bandit-news --agents 1,2,5,10 --reps 20 --share kl:0.001 --out results/news\n  parbayes run bandit-news --agents 40 --trials 4000 --processes 4   (built with --features remote)"
    )]
    Run(RunArgs),
    /// Run a scenario under several share rules (and policies): communication against accuracy.
    #[command(
        after_help = "Examples:\n  parbayes sweep bandit-news --agents 10\n  parbayes sweep scenarios/bandit-news.toml --agents 10 --share never,kl:0.00001,ramp:100/doubling:0.03,always\n  parbayes sweep gridworld --agents 1,10 --reps 5 --out results/gw-sweep --format json\n  parbayes sweep paper-fig3 --policy posterior-sampling,epsilon-greedy:0.15,softmax:1"
    )]
    Sweep(SweepArgs),
    /// Continue an interrupted run from its checkpoints.
    #[command(
        after_help = "Example:\n  parbayes run bandit-news --checkpoint-every 1000 --out results/news\n  (Ctrl-C)\n  parbayes resume results/news"
    )]
    Resume {
        /// The results folder of the interrupted run.
        dir: PathBuf,
        /// What to print on stdout.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
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
    /// Serve a run across processes and machines: its aggregator, or a block of its learners.
    #[cfg(feature = "remote")]
    #[command(subcommand)]
    Serve(serve::Serve),
}

/// What `run` and `sweep` share.
#[derive(Debug, clap::Args)]
pub(crate) struct Common {
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
    /// Results folder [default: results/<scenario>[-sweep]-<UTC time>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Tokio worker threads [default: one per core]; results do not depend on
    /// it. With 1 the driver and the learners share one thread, the fastest
    /// way to run a single learner.
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
    fn overrides(&self, share: Option<Sharing>, policy: Option<Policy>) -> Overrides {
        Overrides {
            agents: self.agents.clone(),
            reps: self.reps,
            seed: self.seed,
            trials: self.trials,
            share,
            policy,
            fault_kill: self.fault_kill,
            ..Overrides::default()
        }
    }

    /// The overrides with `--policy` as written: a policy of either family.
    fn overrides_text(
        &self,
        share: Option<Sharing>,
        policy: Option<&str>,
    ) -> parbayes::Result<Overrides> {
        let mut overrides = self.overrides(share, None);
        if let Some(p) = policy {
            overrides
                .set_policy(p)
                .map_err(|e| parbayes::Error::invalid("command line", "--policy", e.problem()))?;
        }
        Ok(overrides)
    }
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Share rule: never, always, periodic:K, ramp:K, doubling:F, kl:θ,
    /// kl-posterior:θ; `RULE/every` or `RULE/doubling:F` also sets the downlink.
    #[arg(long)]
    share: Option<Sharing>,
    /// Policy: posterior-sampling, epsilon-greedy:E, softmax:T, ucb;
    /// contextual tasks: thompson[:v], linucb:α, ucb, epsilon-greedy:E, greedy.
    #[arg(long)]
    policy: Option<String>,
    /// Also write a checkpoint every K trials (lockstep; Ctrl-C always
    /// writes one), so `parbayes resume` can continue after a crash.
    #[arg(long, value_name = "K")]
    checkpoint_every: Option<u64>,
    /// Run the learners in K child processes on 127.0.0.1, free-running,
    /// with the aggregator in this one (needs the `remote` feature). A child
    /// that dies is restarted and rebuilt from the aggregator's record.
    #[arg(long, value_name = "K")]
    processes: Option<usize>,
    /// With --processes: serve live metrics as Prometheus text at
    /// http://ADDR/metrics.
    #[arg(long, value_name = "ADDR", requires = "processes")]
    metrics: Option<std::net::SocketAddr>,
    /// With --processes: trials a learner process may run past its last
    /// acknowledged sync (0: sync after every trial and wait). More is
    /// faster for small blocks, with the others' news later.
    #[arg(long, value_name = "K", requires = "processes")]
    ahead: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct SweepArgs {
    #[command(flatten)]
    common: Common,
    /// Share rules to compare, comma-separated; include `never` and `always`
    /// for the accuracy gain. Without it, a standard set: never, always,
    /// kl:θ for θ = 0.1 … 0.00001, kl-posterior:1, periodic:10, periodic:100,
    /// ramp:100, ramp:100/doubling:0.1, ramp:100/doubling:0.03, doubling:1,
    /// doubling:0.5, doubling:0.25, and the scenario's own rule; with
    /// several policies, only the scenario's own rule.
    #[arg(long, value_delimiter = ',')]
    share: Vec<Sharing>,
    /// Policies to compare, comma-separated (posterior-sampling,
    /// epsilon-greedy:E, softmax:T, ucb; contextual tasks: thompson[:v],
    /// linucb:α, ucb, epsilon-greedy:E, greedy); each runs under every rule,
    /// and with several the sweep also draws their curves side by side.
    #[arg(long, value_delimiter = ',')]
    policy: Vec<String>,
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
        Command::Resume { dir, format } => resume(&dir, format),
        Command::Check { scenarios } => {
            let mut stdout = std::io::stdout().lock();
            for path in scenarios {
                let s = AnyScenario::load(&path, &Overrides::default())?;
                writeln!(
                    stdout,
                    "{}: ok ({}, {} agent counts, {} trials × {} reps)",
                    path.display(),
                    s.name(),
                    s.run().agents().len(),
                    s.run().trials(),
                    s.run().reps()
                )?;
            }
            Ok(())
        }
        Command::Solve(args) => solve::solve(args),
        #[cfg(feature = "remote")]
        Command::Serve(command) => serve::serve(command),
        Command::Scenarios => {
            let mut stdout = std::io::stdout().lock();
            for (name, text) in SHIPPED {
                let s = AnyScenario::parse(text, name, name, &Overrides::default())?;
                writeln!(stdout, "{name:<20} {}", s.description())?;
            }
            Ok(())
        }
    }
}

fn run(
    RunArgs {
        common,
        share,
        policy,
        checkpoint_every,
        processes,
        metrics,
        ahead,
    }: RunArgs,
) -> Result<()> {
    let overrides = common.overrides_text(share, policy.as_deref())?;
    if let Some(k) = processes {
        anyhow::ensure!(
            k >= 1 && checkpoint_every.is_none(),
            parbayes::Error::invalid(
                "command line",
                "--processes",
                "must be ≥ 1, and runs across processes have no checkpoints",
            )
        );
        return run_processes(common, overrides, k, metrics, ahead);
    }
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
    match AnyScenario::load(&common.scenario, &overrides)? {
        AnyScenario::Tabular(s) => run_loaded(&common, &s, &overrides, checkpoint_every),
        AnyScenario::Contextual(s) => run_loaded(&common, &s, &overrides, checkpoint_every),
        _ => anyhow::bail!("a scenario of a kind this parbayes cannot run"),
    }
}

/// [`run`] once the scenario is loaded.
fn run_loaded<T: Workload>(
    common: &Common,
    scenario: &Scenario<T>,
    overrides: &Overrides,
    checkpoint_every: Option<u64>,
) -> Result<()> {
    let options = run_options(common.threads, common.mode)?;
    // Refuse what cannot run before the results folder exists.
    options.check(scenario)?;
    let options = interruptible(options);
    run_into_folder(common, scenario, overrides, &options, checkpoint_every)
}

/// Writes the manifest into a new results folder, runs `scenario` into it
/// with a progress bar, and prints the summary.
fn run_into_folder<T: Workload>(
    common: &Common,
    scenario: &Scenario<T>,
    overrides: &Overrides,
    options: &RunOptions,
    checkpoint_every: Option<u64>,
) -> Result<()> {
    let (out, dir) = results_folder(common, scenario, overrides, options, checkpoint_every)?;
    let mut bar = Bar::new();
    let summary = run_in_folder(scenario, options, dir, checkpoint_every, &mut bar);
    bar.0.finish_and_clear();
    show(summary, &out, options.mode, common.format)
}

/// Creates the run's results folder with the manifest that resumes it.
fn results_folder<T: Workload>(
    common: &Common,
    scenario: &Scenario<T>,
    overrides: &Overrides,
    options: &RunOptions,
    checkpoint_every: Option<u64>,
) -> Result<(PathBuf, ResultsDir)> {
    let out = common
        .out
        .clone()
        .unwrap_or_else(|| default_results_dir(scenario));
    let dir = ResultsDir::create(&out)?;
    Manifest::new(
        &common.scenario,
        scenario,
        overrides,
        common.threads,
        checkpoint_every,
        options.mode,
    )
    .write(&dir)?;
    Ok((out, dir))
}

#[cfg(feature = "remote")]
fn run_processes(
    common: Common,
    overrides: Overrides,
    k: usize,
    metrics: Option<std::net::SocketAddr>,
    ahead: Option<u64>,
) -> Result<()> {
    // A bad scenario is refused before any process starts.
    AnyScenario::load(&common.scenario, &overrides)?;
    let hosting = serve::children(
        k,
        common.scenario.clone(),
        &overrides,
        metrics,
        ahead.unwrap_or(serve::AHEAD),
    )?;
    run_hosted(common, overrides, hosting)
}

#[cfg(not(feature = "remote"))]
fn run_processes(
    _: Common,
    _: Overrides,
    _: usize,
    _: Option<std::net::SocketAddr>,
    _: Option<u64>,
) -> Result<()> {
    anyhow::bail!(parbayes::Error::invalid(
        "command line",
        "--processes",
        "this parbayes was built without the `remote` feature; \
         build it with `cargo build --release --features remote`",
    ))
}

/// Runs `common`'s scenario free-running with the aggregator here and the
/// learners where `hosting` says, into a results folder.
#[cfg(feature = "remote")]
fn run_hosted(
    common: Common,
    overrides: Overrides,
    hosting: parbayes::remote::Hosting,
) -> Result<()> {
    match AnyScenario::load(&common.scenario, &overrides)? {
        AnyScenario::Tabular(s) => run_hosted_loaded(&common, &s, &overrides, hosting),
        AnyScenario::Contextual(s) => run_hosted_loaded(&common, &s, &overrides, hosting),
        _ => anyhow::bail!("a scenario of a kind this parbayes cannot run"),
    }
}

/// [`run_hosted`] once the scenario is loaded.
#[cfg(feature = "remote")]
fn run_hosted_loaded<T: parbayes::remote::Hosted>(
    common: &Common,
    scenario: &Scenario<T>,
    overrides: &Overrides,
    mut hosting: parbayes::remote::Hosting,
) -> Result<()> {
    let options = run_options(common.threads, Mode::Async)?;
    options.check(scenario)?;
    let options = interruptible(options);
    hosting.stop = options.continuity.stop.clone();
    let (out, mut dir) = results_folder(common, scenario, overrides, &options, None)?;
    let mut bar = Bar::new();
    let outcome = parbayes::remote::run_scenario_hosted(
        scenario,
        &options,
        &hosting,
        &mut (&mut dir, &mut bar),
    );
    bar.0.finish_and_clear();
    let summary = outcome.and_then(|o| parbayes::report::finish_in_folder(scenario, &o, &dir));
    show(summary, &out, options.mode, common.format)
}

/// Continues the run in `path` from its checkpoints.
fn resume(path: &std::path::Path, format: Format) -> Result<()> {
    let options = interruptible(run_options(None, Mode::Lockstep)?);
    let mut bar = Bar::new();
    let summary = parbayes::report::resume(path, &options, &mut bar).map(|(_, s)| s);
    bar.0.finish_and_clear();
    show(summary, path, Mode::Lockstep, format)
}

/// `options` with a stop flag that the first Ctrl-C raises: the run then
/// ends its current trial (lockstep: writes a checkpoint) and returns.
fn interruptible(mut options: RunOptions) -> RunOptions {
    let stop = Arc::new(AtomicBool::new(false));
    options.continuity.stop = Some(stop.clone());
    stop_on_signal(stop);
    options
}

/// Prints a finished run's summary, or says where an interrupted one left
/// its records (and, in lockstep, how to resume it).
fn show(
    summary: parbayes::Result<Summary>,
    path: &std::path::Path,
    mode: Mode,
    format: Format,
) -> Result<()> {
    let summary = match summary {
        Err(parbayes::Error::Interrupted) => {
            let how = match mode {
                Mode::Lockstep => format!(
                    " and a checkpoint in {0}/checkpoints\nresume with: parbayes resume {0}",
                    path.display()
                ),
                Mode::Async => "; the async mode cannot be resumed".to_string(),
            };
            eprintln!(
                "interrupted: the records so far are in {}/trials.csv{how}",
                path.display()
            );
            return Err(parbayes::Error::Interrupted.into());
        }
        other => other?,
    };
    let mut stdout = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&summary)?)?,
        Format::Table => {
            write!(stdout, "{}", summary_table(&summary))?;
            writeln!(stdout, "results: {}", path.display())?;
        }
    }
    Ok(())
}

/// Raises `stop` on the first Ctrl-C or SIGTERM, so the run ends its trial
/// and keeps its work; a second signal exits at once (130), with every
/// record already written and the last checkpoint intact.
fn stop_on_signal(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let mut signals = Signals::new();
            if signals.next().await {
                stop.store(true, Ordering::SeqCst);
                eprintln!("stopping at the end of the trial; interrupt again to quit at once");
            }
            if signals.next().await {
                std::process::exit(130);
            }
        });
    });
}

/// Ctrl-C, and SIGTERM where there is one.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        Self {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    /// Waits for the next signal; false if none can come.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        if let Some(term) = &mut self.term {
            return tokio::select! {
                c = tokio::signal::ctrl_c() => c.is_ok(),
                t = term.recv() => t.is_some(),
            };
        }
        tokio::signal::ctrl_c().await.is_ok()
    }
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

/// A progress bar on stderr over every trial of the run, hidden unless
/// stderr is a terminal.
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Self {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(0)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {percent}% ETA {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Self(bar)
    }
}

impl Observe for Bar {
    fn on_start(&mut self, start: &RunStart) -> parbayes::Result<()> {
        // A sweep starts one run per rule: the bar covers them all.
        self.0.inc_length(start.trials);
        Ok(())
    }

    fn on_record(&mut self, record: &TrialRecord) -> parbayes::Result<()> {
        self.0
            .set_message(format!("N = {} rep {}", record.agents, record.rep));
        Ok(())
    }

    fn on_trial(&mut self) {
        self.0.inc(1);
    }

    fn on_trials(&mut self, trials: u64) {
        self.0.inc(trials);
    }
}

fn sweep(
    SweepArgs {
        common,
        share,
        policy,
    }: SweepArgs,
) -> Result<()> {
    // The first policy is checked against the task with the scenario; the
    // rest when their runs are built, before anything runs.
    let overrides = common.overrides_text(None, policy.first().map(String::as_str))?;
    match AnyScenario::load(&common.scenario, &overrides)? {
        AnyScenario::Tabular(s) => {
            let policies = parse_policies(&policy)?;
            sweep_loaded(&common, &s, &policies, share)
        }
        AnyScenario::Contextual(s) => {
            let policies = parse_policies(&policy)?;
            sweep_loaded(&common, &s, &policies, share)
        }
        _ => anyhow::bail!("a scenario of a kind this parbayes cannot run"),
    }
}

/// `--policy` of a sweep, as policies of the scenario's family.
fn parse_policies<P: std::str::FromStr<Err = ParamError>>(
    policies: &[String],
) -> parbayes::Result<Vec<P>> {
    policies
        .iter()
        .map(|p| {
            p.parse().map_err(|e: ParamError| {
                parbayes::Error::invalid("command line", "--policy", e.problem())
            })
        })
        .collect()
}

/// [`sweep`] once the scenario is loaded.
fn sweep_loaded<T: Workload>(
    common: &Common,
    scenario: &Scenario<T>,
    policy: &[<T::Config as SimConfig>::Policy],
    share: Vec<Sharing>,
) -> Result<()> {
    for p in policy {
        scenario.learner().with_policy(*p)?;
    }
    let options = run_options(common.threads, common.mode)?;
    options.check(scenario)?;
    let out = common.out.clone().unwrap_or_else(|| {
        let mut dir = default_results_dir(scenario);
        let name = dir.file_name().map(|n| {
            n.to_string_lossy()
                .replacen(scenario.name(), &format!("{}-sweep", scenario.name()), 1)
        });
        if let Some(n) = name {
            dir.set_file_name(n);
        }
        dir
    });
    let dir = ResultsDir::create(&out)?;
    let mut bar = Bar::new();
    let share = match (share.is_empty(), policy.len()) {
        (false, _) => share,
        (true, 0 | 1) => parbayes::sweep::standard_rules(scenario),
        (true, _) => vec![scenario.learner().sharing()],
    };
    let sweep = sweep_in_folder(scenario, policy, &share, &options, dir, &mut bar);
    bar.0.finish_and_clear();
    let sweep = sweep?;
    let mut stdout = std::io::stdout().lock();
    match common.format {
        Format::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&sweep)?)?,
        Format::Table => {
            write!(stdout, "{}", sweep_table(&sweep))?;
            writeln!(stdout, "results: {}", out.display())?;
        }
    }
    Ok(())
}
