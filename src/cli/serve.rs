//! `parbayes serve aggregator|learners`, and the learner processes that
//! `run --processes K` starts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;

use parbayes::learner::Workload;
use parbayes::remote::{Hosting, LearnerProcess, serve_learners};
use parbayes::runtime::Mode;
use parbayes::scenario::AnyScenario;
use parbayes::share::Sharing;
use parbayes::{Overrides, RunOptions, Scenario};

/// Learners in separate processes and machines.
#[derive(Debug, Subcommand)]
pub enum Serve {
    /// Serve a run's aggregator; learners join with `serve learners`. Writes
    /// the results folder once every learner has finished.
    #[command(
        after_help = "Example (three terminals, or three machines):\n  parbayes serve aggregator --listen 0.0.0.0:7000 bandit-news --agents 40 --out results/news-remote\n  parbayes serve learners --connect 10.0.0.1:7000 --ids 0..20 bandit-news --agents 40\n  parbayes serve learners --connect 10.0.0.1:7000 --ids 20..40 bandit-news --agents 40"
    )]
    Aggregator(AggregatorArgs),
    /// Run a block of a run's learners against a remote aggregator.
    #[command(
        after_help = "Example:\n  parbayes serve learners --connect 127.0.0.1:7000 --ids 0..20 bandit-news --agents 40"
    )]
    Learners(LearnersArgs),
}

/// `serve aggregator`.
#[derive(Debug, clap::Args)]
pub struct AggregatorArgs {
    /// Where to listen: HOST:PORT or a multiaddr.
    #[arg(long, value_name = "ADDR")]
    listen: String,
    #[command(flatten)]
    run: super::Common,
    /// Share rule (see `parbayes run --help`).
    #[arg(long)]
    share: Option<Sharing>,
    /// Policy (see `parbayes run --help`).
    #[arg(long)]
    policy: Option<String>,
    /// Seconds a block of learners may go unheard before the run fails.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    patience: u64,
    /// Serve live metrics as Prometheus text at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Save the aggregator's state to FILE every --snapshot-every seconds; if
    /// FILE is there at the start, restart from it (its learners rejoin and
    /// resend their full counts).
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    /// Seconds between snapshots.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 5.0,
        requires = "snapshot"
    )]
    snapshot_every: f64,
}

/// `serve learners`.
#[derive(Debug, clap::Args)]
pub struct LearnersArgs {
    /// The aggregator's address: HOST:PORT or a multiaddr.
    #[arg(long, value_name = "ADDR")]
    connect: String,
    /// The block of learner ids this process runs, as A..B (B excluded).
    #[arg(long, value_name = "A..B", value_parser = parse_ids)]
    ids: std::ops::Range<u32>,
    /// A scenario file, or the name of a shipped one; it and the options
    /// below must match the aggregator's.
    scenario: PathBuf,
    /// Learners in the whole run.
    #[arg(long)]
    agents: Option<u32>,
    /// The repetition.
    #[arg(long, default_value_t = 0)]
    rep: u32,
    /// Seed of every learner's random stream.
    #[arg(long)]
    seed: Option<u64>,
    /// Trials per repetition.
    #[arg(long)]
    trials: Option<u64>,
    /// Share rule.
    #[arg(long)]
    share: Option<Sharing>,
    /// Policy.
    #[arg(long)]
    policy: Option<String>,
    /// Seconds to keep trying to reach the aggregator.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    patience: u64,
    /// Trials the learners may run past their last acknowledged sync; 0:
    /// sync after every trial and wait for the answer.
    #[arg(long, value_name = "K", default_value_t = AHEAD)]
    ahead: u64,
}

/// The default of `--ahead`.
pub const AHEAD: u64 = 0;

fn parse_ids(text: &str) -> std::result::Result<std::ops::Range<u32>, String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("{text}: expected A..B, e.g. 0..20"))?;
    let a: u32 = a.parse().map_err(|e| format!("{a}: {e}"))?;
    let b: u32 = b.parse().map_err(|e| format!("{b}: {e}"))?;
    if a >= b {
        return Err(format!("{text}: the block is empty; B must exceed A"));
    }
    Ok(a..b)
}

pub fn serve(command: Serve) -> Result<()> {
    match command {
        Serve::Aggregator(args) => aggregator(args),
        Serve::Learners(args) => learners(args),
    }
}

fn aggregator(args: AggregatorArgs) -> Result<()> {
    let AggregatorArgs {
        listen,
        run,
        share,
        policy,
        patience,
        metrics,
        snapshot,
        snapshot_every,
    } = args;
    anyhow::ensure!(
        snapshot_every.is_finite() && snapshot_every > 0.0,
        parbayes::Error::invalid(
            "command line",
            "--snapshot-every",
            format!("{snapshot_every}; use a positive number of seconds"),
        )
    );
    let hosting = Hosting {
        listen,
        children: None,
        restarts: 0,
        patience: Duration::from_secs(patience),
        stop: None,
        metrics,
        snapshot: snapshot.map(|p| (p, Duration::from_secs_f64(snapshot_every))),
    };
    let overrides = run.overrides_text(share, policy.as_deref())?;
    super::run_hosted(run, overrides, hosting)
}

fn learners(args: LearnersArgs) -> Result<()> {
    let mut overrides = Overrides {
        agents: args.agents.map(|n| vec![n]),
        seed: args.seed,
        trials: args.trials,
        share: args.share,
        ..Overrides::default()
    };
    if let Some(p) = &args.policy {
        overrides
            .set_policy(p)
            .map_err(|e| parbayes::Error::invalid("command line", "--policy", e.problem()))?;
    }
    match AnyScenario::load(&args.scenario, &overrides)? {
        AnyScenario::Tabular(s) => learners_loaded(&args, &s),
        AnyScenario::Contextual(s) => learners_loaded(&args, &s),
        _ => anyhow::bail!("a scenario of a kind this parbayes cannot run"),
    }
}

/// [`learners`] once the scenario is loaded.
fn learners_loaded<T: Workload>(args: &LearnersArgs, scenario: &Scenario<T>) -> Result<()> {
    let [agents] = scenario.run().agents()[..] else {
        anyhow::bail!(parbayes::Error::invalid(
            "command line",
            "--agents",
            "a learner process belongs to one run: give exactly one agent count",
        ));
    };
    let options = RunOptions {
        mode: Mode::Async,
        ..RunOptions::default()
    };
    options.check(scenario)?;
    // The learners step on this thread; the node and the sync in flight
    // run beside them, so a reply is taken as soon as it arrives.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let served = runtime.block_on(serve_learners(
        scenario,
        &args.connect,
        agents,
        args.rep,
        args.ids.clone(),
        Duration::from_secs(args.patience),
        args.ahead,
    ))?;
    tracing::info!(
        start = args.ids.start,
        end = args.ids.end,
        trials = served.trials,
        first_trial = served.first_trial,
        peak_memory_mb = peak_memory_mb(),
        "learners finished"
    );
    Ok(())
}

/// This process's peak resident memory in MB (Linux), for the log.
fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1000.0)
}

/// Hosting for `run --processes k`: children of this executable on
/// 127.0.0.1, each running `serve learners` with the run's own options.
pub fn children(
    k: usize,
    scenario: PathBuf,
    overrides: &Overrides,
    metrics: Option<std::net::SocketAddr>,
    ahead: u64,
) -> Result<Hosting> {
    let exe = std::env::current_exe()?;
    let overrides = overrides.clone();
    let command = move |p: &LearnerProcess| {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["serve", "learners", "--connect", &p.connect])
            .arg(format!("--ids={}..{}", p.ids.start, p.ids.end))
            .arg(format!("--agents={}", p.agents))
            .arg(format!("--rep={}", p.rep))
            .arg(format!("--ahead={ahead}"));
        if let Some(t) = overrides.trials {
            cmd.arg(format!("--trials={t}"));
        }
        if let Some(s) = overrides.seed {
            cmd.arg(format!("--seed={s}"));
        }
        if let Some(s) = &overrides.share {
            cmd.arg(format!("--share={s}"));
        }
        let policy = (overrides.policy.map(|p| p.to_string()))
            .or_else(|| overrides.linear_policy.map(|p| p.to_string()));
        if let Some(p) = policy {
            cmd.arg(format!("--policy={p}"));
        }
        cmd.arg(&scenario);
        cmd
    };
    Ok(Hosting {
        listen: "127.0.0.1:0".into(),
        children: Some((k, Arc::new(command))),
        restarts: 5,
        patience: Duration::from_secs(60),
        stop: None,
        metrics,
        snapshot: None,
    })
}
