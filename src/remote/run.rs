//! One experiment with its aggregator here and its learners in other
//! processes: started as children on 127.0.0.1 (`run --processes K`), or
//! joining from anywhere (`serve aggregator`).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kameo::prelude::*;
use libp2p::Multiaddr;
use tokio::sync::{OnceCell, mpsc};
use tokio::task::JoinSet;

use super::Hosted;
use super::learners::run_id;
use super::server::{
    AggregatorServer, Close, DOOR_NAME, Look, Open, Save, Seen, ServerArgs, ServerEvent,
    ServerSnapshot,
};
use super::swarm::node;
use super::wire::RunId;
use crate::error::RemoteError;
use crate::error::{Error, Result, RuntimeError};

use crate::observe::Observe;
use crate::record::TrialRecord;
use crate::runtime::{
    Mode, RunOptions, RunOutcome, RunTiming, TrialRecorder, announce, tokio_runtime,
};
use crate::scenario::Scenario;
use crate::share::Aggregator;

/// One learner process to start: what its command line must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerProcess {
    /// The aggregator's address, as a multiaddr.
    pub connect: String,
    /// The experiment's learner count.
    pub agents: u32,
    /// Its repetition.
    pub rep: u32,
    /// The block of learners the process runs.
    pub ids: Range<u32>,
}

/// Builds the command that starts one learner process.
pub type LearnerCommand = Arc<dyn Fn(&LearnerProcess) -> std::process::Command + Send + Sync>;

/// Where a remote experiment's learners come from, and how long to wait
/// for them.
#[derive(Clone)]
pub struct Hosting {
    /// Where the aggregator listens: `127.0.0.1:0` for child processes.
    pub listen: String,
    /// Start this many learner processes with `command`, and restart one
    /// that dies (up to `restarts` times each); `None`: learners join from
    /// elsewhere.
    pub children: Option<(usize, LearnerCommand)>,
    /// Restarts allowed per learner process.
    pub restarts: u32,
    /// A block not heard from for this long fails the run, naming it.
    pub patience: Duration,
    /// Raised to stop at the end of the current trial.
    pub stop: Option<Arc<AtomicBool>>,
    /// Serve live metrics as Prometheus text here
    /// ([`serve_metrics`](super::serve_metrics)).
    pub metrics: Option<std::net::SocketAddr>,
    /// Save the aggregator's state to this file this often, and restart
    /// from it if it is there when the run starts: its learners rejoin and
    /// resend their full counts.
    pub snapshot: Option<(PathBuf, Duration)>,
}

impl std::fmt::Debug for Hosting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosting")
            .field("listen", &self.listen)
            .field("children", &self.children.as_ref().map(|(k, _)| *k))
            .field("restarts", &self.restarts)
            .field("patience", &self.patience)
            .field("metrics", &self.metrics)
            .field("snapshot", &self.snapshot)
            .finish()
    }
}

/// Runs every experiment of `scenario`, one at a time, with each one's
/// aggregator in this process and its learners wherever `hosting` says
/// (free-running), on a tokio runtime of `options.threads`. Records reach
/// `observer` in (agents, repetition, trial) order, as from
/// [`run_scenario`](crate::run_scenario).
pub fn run_scenario_hosted<T: Hosted>(
    scenario: &Scenario<T>,
    options: &RunOptions,
    hosting: &Hosting,
    observer: &mut (dyn Observe + Send),
) -> Result<RunOutcome> {
    options.check(scenario)?;
    let experiments = announce(scenario, observer)?;
    let result: Result<RunOutcome> = tokio_runtime(options)?.block_on(async {
        let mut outcome = RunOutcome {
            mode: Mode::Async,
            ..RunOutcome::default()
        };
        for (agents, rep) in experiments {
            let (records, timing) = run_hosted(scenario, agents, rep, hosting, observer).await?;
            outcome.records.extend(records);
            outcome.timings.push(timing);
        }
        Ok(outcome)
    });
    // The observer finishes (trials.csv is flushed) even when the run failed.
    let finished = observer.on_finish();
    let outcome = result?;
    finished?;
    Ok(outcome)
}

/// Each block's learner ids and the last trial it reported, by first id.
type Blocks = BTreeMap<u32, (Range<u32>, u64)>;

/// Opens the aggregator of experiment (`agents`, `rep`): from the hosting's
/// snapshot when there is one (with the blocks it knew), else fresh.
async fn open_server<T: Hosted>(
    scenario: &Scenario<T>,
    agents: u32,
    rep: u32,
    hosting: &Hosting,
    events: mpsc::UnboundedSender<ServerEvent>,
) -> Result<(&'static ActorRef<AggregatorServer>, Blocks)> {
    let config = &scenario.learner;
    let run = run_id(scenario, agents, rep);
    let mut blocks = Blocks::new();
    let restored = match &hosting.snapshot {
        Some((path, _)) if path.exists() => Some(read_snapshot(path, &run)?),
        _ => None,
    };
    let args = match restored {
        Some(snapshot) => {
            for b in &snapshot.blocks {
                blocks.insert(b.ids.start, (b.ids.clone(), b.reached));
            }
            tracing::info!(
                blocks = snapshot.blocks.len(),
                "restarting from the snapshot"
            );
            ServerArgs::restored(snapshot, Some(events))
        }
        None => ServerArgs::new(
            run,
            T::hosted_aggregator(config, agents as usize),
            Some(events),
        ),
    };
    let server = door().await?;
    server
        .ask(Open(args))
        .await
        .map_err(|e| RuntimeError::Aggregator(format!("{e:?}")))?;
    Ok((server, blocks))
}

/// Runs experiment (`agents`, `rep`) of `scenario` with the aggregator in
/// this process and the learners wherever `hosting` says. Records come in
/// trial order: trial t is recorded once every block has reported it, with
/// the global estimate and traffic as of that moment. The timing carries
/// what crossed the wire.
pub async fn run_hosted<T: Hosted>(
    scenario: &Scenario<T>,
    agents: u32,
    rep: u32,
    hosting: &Hosting,
    observer: &mut (dyn Observe + Send),
) -> Result<(Vec<TrialRecord>, RunTiming)> {
    let started = Instant::now();
    let plan = &scenario.run;
    let me = node(&super::swarm::parse_addr(&hosting.listen)?).await?;
    if let Some(addr) = hosting.metrics {
        super::serve_metrics(addr)?;
    }
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (server, mut blocks) = open_server(scenario, agents, rep, hosting, events_tx).await?;
    tracing::info!(address = %me.listening, agents, rep, "aggregator serving");
    let mut children = Children::default();
    if let Some((k, command)) = &hosting.children {
        for ids in crate::runtime::cohort_ranges(agents, *k) {
            let spec = LearnerProcess {
                connect: me.listening.to_string(),
                agents,
                rep,
                ids,
            };
            children.start(command, spec)?;
        }
    }

    let mut recorder = TrialRecorder::new(scenario, agents, rep);
    let mut saved = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let result: Result<()> = async {
        loop {
            if recorder.released() == plan.trials && children.all_finished() {
                return Ok(());
            }
            tokio::select! {
                Some(event) = events.recv() => match event {
                    ServerEvent::Joined { ids, .. } => {
                        blocks.entry(ids.start).or_insert((ids, 0));
                    }
                    ServerEvent::Progress { ids, reached, records: metrics } => {
                        if let Some((_, r)) = blocks.get_mut(&ids.start) {
                            *r = (*r).max(reached);
                        }
                        for (t, m) in metrics {
                            recorder.hold(t, ids.start, m);
                        }
                        let covered: u32 = blocks.values().map(|(r, _)| r.len() as u32).sum();
                        if covered < agents {
                            continue;
                        }
                        let slowest = blocks.values().map(|(_, r)| *r).min().unwrap_or(0);
                        while let Some((trial, metrics)) = recorder.next_due(slowest, observer) {
                            let seen = look(server).await?;
                            recorder.record(trial, &metrics, &seen.global, seen.traffic, observer)?;
                        }
                    }
                },
                Some((index, status)) = children.exits.recv() => {
                    children.exited(index, status, &blocks, plan.trials, hosting)?;
                }
                _ = tick.tick() => {
                    if hosting.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
                        return Err(Error::Interrupted);
                    }
                    if let Some((path, every)) = &hosting.snapshot
                        && saved.elapsed() >= *every
                    {
                        write_snapshot(server, path).await?;
                        saved = Instant::now();
                    }
                    let seen = look(server).await?;
                    gauge_blocks(&seen, hosting.patience);
                    for (ids, age) in &seen.blocks {
                        let finished = blocks.get(&ids.start).is_some_and(|(_, r)| *r >= plan.trials);
                        if !finished && *age > hosting.patience.as_secs_f64() {
                            return Err(RemoteError::Unheard {
                                ids: ids.clone(),
                                seconds: *age,
                                patience: hosting.patience,
                            }
                            .into());
                        }
                    }
                }
            }
        }
    }
    .await;
    children.stop().await;
    let seen = server.ask(Close).await.ok().flatten();
    result?;
    let wire = seen.as_ref().map(|s| s.wire);
    if let Some(seen) = &seen {
        let observations: f64 = seen.global.iter().flat_map(|(_, c)| c).sum();
        tracing::info!(
            observations,
            "run finished: observations in the global estimate"
        );
    }
    if let Some((path, _)) = &hosting.snapshot {
        // Finished: nothing to restart from.
        let _ = std::fs::remove_file(path);
    }
    Ok(recorder.finish(started.elapsed().as_secs_f64(), wire))
}

/// Serves `aggregator` for `run` from this process, listening on `listen`
/// (`HOST:PORT` or a multiaddr): agents of an application in other
/// processes then join and sync through an
/// [`AggregatorClient`](super::AggregatorClient). Returns where it listens
/// and the aggregator, to [`Look`] at or [`Close`].
pub async fn open_aggregator(
    listen: &str,
    run: RunId,
    aggregator: Aggregator,
) -> Result<(Multiaddr, &'static ActorRef<AggregatorServer>)> {
    let me = node(&super::swarm::parse_addr(listen)?).await?;
    let server = door().await?;
    server
        .ask(Open(ServerArgs::new(run, aggregator, None)))
        .await
        .map_err(|e| RuntimeError::Aggregator(format!("{e:?}")))?;
    Ok((me.listening.clone(), server))
}

/// This process's aggregator, started and registered on first use.
async fn door() -> Result<&'static ActorRef<AggregatorServer>> {
    static DOOR: OnceCell<ActorRef<AggregatorServer>> = OnceCell::const_new();
    DOOR.get_or_try_init(|| async {
        let server = AggregatorServer::spawn_with_mailbox((), kameo::mailbox::unbounded());
        server
            .register(DOOR_NAME)
            .await
            .map_err(|e| RemoteError::Transport {
                what: "cannot register the aggregator".into(),
                problem: e.to_string(),
            })?;
        Ok(server)
    })
    .await
}

/// Reads the snapshot at `path`, which must be of `run`.
fn read_snapshot(path: &Path, run: &RunId) -> Result<ServerSnapshot> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let snapshot: ServerSnapshot = rmp_serde::from_slice(&bytes).map_err(|e| {
        Error::invalid(
            path.display().to_string(),
            "(snapshot)",
            format!("unreadable: {e}"),
        )
    })?;
    if snapshot.run != *run {
        return Err(Error::invalid(
            path.display().to_string(),
            "(snapshot)",
            format!(
                "it is of another run ({:?}, agents {}, repetition {}); remove it or give \
                 another --snapshot",
                snapshot.run.name, snapshot.run.agents, snapshot.run.rep
            ),
        ));
    }
    Ok(snapshot)
}

/// Saves the aggregator's state to `path`, beside it first and then renamed
/// over it, so a kill mid-write leaves the previous snapshot whole.
async fn write_snapshot(server: &ActorRef<AggregatorServer>, path: &Path) -> Result<()> {
    let Some(snapshot) = server.ask(Save).await.ok().flatten() else {
        return Ok(());
    };
    let bytes = rmp_serde::to_vec(&snapshot)
        .map_err(|e| RuntimeError::Checkpoint(format!("cannot encode the snapshot: {e}")))?;
    let part = path.with_extension("part");
    let write = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&part, bytes).map_err(write)?;
    std::fs::rename(&part, path).map_err(write)?;
    Ok(())
}

/// The per-run gauges of [`super::exporter`]: a block counts as connected
/// while it has been heard from within `patience`.
fn gauge_blocks(seen: &Seen, patience: Duration) {
    let live = seen
        .blocks
        .iter()
        .filter(|(_, age)| *age <= patience.as_secs_f64());
    let (blocks, learners) = live.fold((0, 0), |(b, l), (ids, _)| (b + 1, l + ids.len()));
    metrics::gauge!("parbayes_blocks_connected").set(blocks as f64);
    metrics::gauge!("parbayes_learners_connected").set(learners as f64);
    for (ids, age) in &seen.blocks {
        let block = format!("{}..{}", ids.start, ids.end);
        metrics::gauge!("parbayes_block_last_heard_seconds", "block" => block).set(*age);
    }
}

async fn look(server: &ActorRef<AggregatorServer>) -> Result<Seen> {
    server
        .ask(Look)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| RuntimeError::StoppedEarly("the aggregator's server").into())
}

/// The learner processes this run started.
struct Children {
    specs: Vec<LearnerProcess>,
    restarts: Vec<u32>,
    finished: Vec<bool>,
    running: JoinSet<()>,
    exits_tx: mpsc::UnboundedSender<(usize, std::process::ExitStatus)>,
    exits: mpsc::UnboundedReceiver<(usize, std::process::ExitStatus)>,
    command: Option<LearnerCommand>,
}

impl Default for Children {
    fn default() -> Self {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        Self {
            specs: Vec::new(),
            restarts: Vec::new(),
            finished: Vec::new(),
            running: JoinSet::new(),
            exits_tx,
            exits,
            command: None,
        }
    }
}

impl Children {
    fn all_finished(&self) -> bool {
        self.finished.iter().all(|&f| f)
    }

    fn start(&mut self, command: &LearnerCommand, spec: LearnerProcess) -> Result<()> {
        self.command = Some(command.clone());
        self.specs.push(spec);
        self.restarts.push(0);
        self.finished.push(false);
        self.spawn(self.specs.len() - 1)
    }

    fn spawn(&mut self, index: usize) -> Result<()> {
        let spec = &self.specs[index];
        let command = self.command.as_ref().expect("set by start");
        let mut cmd = tokio::process::Command::from(command(spec));
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| RemoteError::Spawn {
            ids: spec.ids.clone(),
            problem: e.to_string(),
        })?;
        tracing::info!(
            pid = child.id(),
            start = spec.ids.start,
            end = spec.ids.end,
            "learner process started"
        );
        let exits = self.exits_tx.clone();
        self.running.spawn(async move {
            if let Ok(status) = child.wait().await {
                let _ = exits.send((index, status));
            }
        });
        Ok(())
    }

    /// A child exited: done, restarted, or the run fails.
    fn exited(
        &mut self,
        index: usize,
        status: std::process::ExitStatus,
        blocks: &BTreeMap<u32, (Range<u32>, u64)>,
        trials: u64,
        hosting: &Hosting,
    ) -> Result<()> {
        let spec = &self.specs[index];
        let reached = blocks.get(&spec.ids.start).map_or(0, |(_, r)| *r);
        if status.success() && reached >= trials {
            self.finished[index] = true;
            return Ok(());
        }
        if hosting
            .stop
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
        {
            return Err(Error::Interrupted);
        }
        if self.restarts[index] >= hosting.restarts {
            return Err(RemoteError::Exited {
                ids: spec.ids.clone(),
                status: status.to_string(),
                reached,
                restarts: self.restarts[index],
            }
            .into());
        }
        self.restarts[index] += 1;
        tracing::warn!(
            start = spec.ids.start,
            end = spec.ids.end,
            %status,
            reached,
            "learner process died; restarting it"
        );
        eprintln!(
            "learner process {}..{} exited ({status}) after trial {reached}; restarting it",
            spec.ids.start, spec.ids.end
        );
        self.spawn(index)
    }

    /// Kills whatever still runs.
    async fn stop(&mut self) {
        self.running.shutdown().await;
    }
}
