//! The aggregator as a remote actor: it folds the shares of learner
//! processes and answers each with what the others learned.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Instant;

use kameo::error::Infallible;
use kameo::prelude::*;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use super::AnyAggregator;
use super::wire::{Join, Joined, PROTOCOL, Progress, Refusal, RunId, Sync, Synced, Totals};
use crate::error::ProtocolError;
use crate::learner::{LearnerMetrics, LearnerStats};
use crate::model::Evidence;
use crate::share::{OthersUpdate, Traffic, WireTraffic};

/// What a driver hears from the aggregator as learner blocks move on.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    /// A block joined (`rejoin`: again, after its process restarted).
    Joined {
        /// Its learners.
        ids: Range<u32>,
        /// Whether it had joined before.
        rejoin: bool,
    },
    /// A block reports progress.
    Progress {
        /// Its learners.
        ids: Range<u32>,
        /// The last trial all of them finished.
        reached: u64,
        /// Metrics at record trials, in trial order.
        records: Vec<(u64, Vec<LearnerMetrics>)>,
    },
}

/// One block of learners held by one process.
#[derive(Debug)]
struct Block {
    session: u64,
    reached: u64,
    stats: Vec<LearnerStats>,
    heard: Instant,
}

/// The aggregator of runs whose learners live in other processes: one per
/// process, its only remote endpoint, registered once under
/// [`DOOR_NAME`] (registering and unregistering again costs a DHT round
/// that can stall for minutes once peers have gone). It serves one run at a
/// time, [`Open`]ed and [`Close`]d by the process; learner processes
/// [`Join`] with a block of ids and then [`Sync`], one ask at a time.
#[derive(RemoteActor, Default)]
#[remote_actor(id = "parbayes.aggregator.v1")]
pub struct AggregatorServer {
    serving: Option<Serving>,
}

/// The name every process's aggregator registers under.
pub const DOOR_NAME: &str = "parbayes/aggregator";

/// The run being served.
struct Serving {
    run: RunId,
    aggregator: AnyAggregator,
    /// By first id.
    blocks: BTreeMap<u32, (Range<u32>, Block)>,
    sessions: u64,
    events: Option<UnboundedSender<ServerEvent>>,
    wire: WireTraffic,
}

/// What an [`AggregatorServer`] serves.
pub struct ServerArgs {
    /// The run it serves; peers of another are refused.
    pub run: RunId,
    /// Its protocol state, with learners `0..run.agents` already members.
    pub aggregator: AnyAggregator,
    /// Where to report joins and progress.
    pub events: Option<UnboundedSender<ServerEvent>>,
    /// Blocks known from a snapshot (empty for a new run).
    pub blocks: Vec<BlockRecord>,
    /// Sessions are numbered after this one.
    pub sessions: u64,
}

impl ServerArgs {
    /// A new run's aggregator.
    pub fn new(
        run: RunId,
        aggregator: impl Into<AnyAggregator>,
        events: Option<UnboundedSender<ServerEvent>>,
    ) -> Self {
        Self {
            run,
            aggregator: aggregator.into(),
            events,
            blocks: Vec::new(),
            sessions: 0,
        }
    }

    /// An aggregator restarting from `snapshot` while its learners carry
    /// on. The sessions of the earlier incarnation become unknown, so every
    /// block rejoins and resends its full counts.
    pub fn restored(
        snapshot: ServerSnapshot,
        events: Option<UnboundedSender<ServerEvent>>,
    ) -> Self {
        Self {
            run: snapshot.run,
            aggregator: snapshot.aggregator.restarted(),
            events,
            blocks: snapshot.blocks,
            sessions: snapshot.sessions + (1 << 32),
        }
    }
}

/// A block of learners as a snapshot keeps it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BlockRecord {
    /// Its ids.
    pub ids: Range<u32>,
    /// The last trial it reported.
    pub reached: u64,
    /// Its learners' running totals then.
    pub stats: Vec<Totals>,
}

/// What an aggregator restarts from: the run, the protocol state and the
/// blocks of learners, as of a moment.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, kameo::Reply)]
pub struct ServerSnapshot {
    /// The run served.
    pub run: RunId,
    /// The protocol state.
    pub aggregator: AnyAggregator,
    /// Every block that joined.
    pub blocks: Vec<BlockRecord>,
    /// The last session number handed out.
    pub sessions: u64,
}

impl Actor for AggregatorServer {
    type Args = ();
    type Error = Infallible;

    async fn on_start((): (), _me: ActorRef<Self>) -> Result<Self, Self::Error> {
        Ok(Self::default())
    }
}

/// Serve this run from now on (local only).
pub struct Open(pub ServerArgs);

impl Message<Open> for AggregatorServer {
    type Reply = ();

    async fn handle(&mut self, Open(args): Open, _ctx: &mut Context<Self, Self::Reply>) {
        let now = Instant::now();
        let blocks = args
            .blocks
            .into_iter()
            .map(|b| {
                let block = Block {
                    // No live session: the block must rejoin.
                    session: 0,
                    reached: b.reached,
                    stats: b.stats.into_iter().map(LearnerStats::from).collect(),
                    heard: now,
                };
                (b.ids.start, (b.ids, block))
            })
            .collect();
        self.serving = Some(Serving {
            run: args.run,
            aggregator: args.aggregator,
            blocks,
            sessions: args.sessions,
            events: args.events,
            wire: WireTraffic::default(),
        });
    }
}

/// A snapshot of the run being served (local only).
pub struct Save;

impl Message<Save> for AggregatorServer {
    type Reply = Option<ServerSnapshot>;

    async fn handle(&mut self, _: Save, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.serving.as_ref().map(|s| ServerSnapshot {
            run: s.run.clone(),
            aggregator: s.aggregator.clone(),
            blocks: s
                .blocks
                .values()
                .map(|(ids, b)| BlockRecord {
                    ids: ids.clone(),
                    reached: b.reached,
                    stats: b.stats.iter().copied().map(Totals::from).collect(),
                })
                .collect(),
            sessions: s.sessions,
        })
    }
}

/// Stop serving the run; later peers are refused (local only).
pub struct Close;

impl Message<Close> for AggregatorServer {
    type Reply = Option<Seen>;

    async fn handle(&mut self, _: Close, _ctx: &mut Context<Self, Self::Reply>) -> Option<Seen> {
        self.serving.take().map(|s| s.seen())
    }
}

fn wire_len<T: Serialize>(msg: &T) -> u64 {
    rmp_serde::to_vec_named(msg).map_or(0, |v| v.len() as u64)
}

impl Serving {
    fn check_run(&self, run: &RunId) -> Result<(), Refusal> {
        if run.protocol != PROTOCOL {
            return Err(Refusal::Protocol {
                ours: PROTOCOL,
                theirs: run.protocol,
            });
        }
        if *run != self.run {
            return Err(Refusal::OtherRun(format!(
                "it runs {:?} (agents {}, repetition {}, {:?}); this aggregator serves {:?} \
                 (agents {}, repetition {}, {:?})",
                run.name,
                run.agents,
                run.rep,
                run.shape,
                self.run.name,
                self.run.agents,
                self.run.rep,
                self.run.shape
            )));
        }
        Ok(())
    }

    fn join(&mut self, msg: &Join) -> Result<Joined, Refusal> {
        self.check_run(&msg.run)?;
        let ids = msg.ids.clone();
        let bad = |problem: &str| Refusal::Ids {
            start: ids.start,
            end: ids.end,
            problem: problem.into(),
        };
        if ids.is_empty() || ids.end > self.run.agents {
            return Err(bad(&format!(
                "must be a non-empty block within 0..{}",
                self.run.agents
            )));
        }
        if let Some((other, _)) = self
            .blocks
            .values()
            .find(|(r, _)| *r != ids && r.start < ids.end && ids.start < r.end)
        {
            return Err(bad(&format!(
                "overlap block {}..{}, held by another process",
                other.start, other.end
            )));
        }
        self.sessions += 1;
        let session = self.sessions;
        let now = Instant::now();
        let joined = match self.blocks.get_mut(&ids.start) {
            Some((r, block)) if msg.resync && *r == ids => {
                block.session = session;
                block.heard = now;
                Joined {
                    session,
                    resume_after: block.reached,
                    recoveries: Vec::new(),
                    stats: Vec::new(),
                }
            }
            Some((_, block)) => {
                block.session = session;
                block.heard = now;
                let recoveries = ids
                    .clone()
                    .map(|id| self.aggregator.recovery(id))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Refusal::Malformed(e.to_string()))?;
                Joined {
                    session,
                    resume_after: block.reached,
                    recoveries,
                    stats: block.stats.clone(),
                }
            }
            None => {
                let block = Block {
                    session,
                    reached: 0,
                    stats: vec![LearnerStats::default(); ids.len()],
                    heard: now,
                };
                self.blocks.insert(ids.start, (ids.clone(), block));
                Joined {
                    session,
                    resume_after: 0,
                    recoveries: Vec::new(),
                    stats: Vec::new(),
                }
            }
        };
        let rejoin = msg.resync || joined.resume_after > 0 || !joined.recoveries.is_empty();
        tracing::info!(
            start = ids.start,
            end = ids.end,
            session,
            rejoin,
            "block joined"
        );
        if let Some(events) = &self.events {
            let _ = events.send(ServerEvent::Joined { ids, rejoin });
        }
        Ok(joined)
    }

    fn sync(&mut self, msg: Sync) -> Result<Synced, Refusal> {
        let ids = msg.ids.clone();
        match self.blocks.get(&ids.start) {
            Some((r, b)) if *r == ids && b.session == msg.session => {}
            _ => return Err(Refusal::Session(msg.session)),
        }
        // Everything is checked before anything changes.
        for share in &msg.shares {
            if !ids.contains(&share.learner) {
                return Err(Refusal::Malformed(format!(
                    "a share from learner {} in the sync of block {}..{}",
                    share.learner, ids.start, ids.end
                )));
            }
            self.aggregator.check(&share.rows).map_err(|problem| {
                Refusal::Malformed(
                    ProtocolError::Malformed {
                        learner: share.learner,
                        problem,
                    }
                    .to_string(),
                )
            })?;
        }
        if let Some(p) = &msg.progress
            && (p.stats.len() != ids.len() || p.records.iter().any(|(_, m)| m.len() != ids.len()))
        {
            return Err(Refusal::Malformed(format!(
                "progress of block {}..{} must describe each of its {} learners",
                ids.start,
                ids.end,
                ids.len()
            )));
        }
        let rows_up: usize = msg.shares.iter().map(|s| s.rows.len()).sum();
        metrics::counter!("parbayes_rows_up_total").increment(rows_up as u64);
        for share in &msg.shares {
            match self.aggregator.receive(share) {
                // Delivered before: its reply was lost, and it is retried.
                Ok(()) | Err(ProtocolError::Stale { .. }) => {}
                Err(e) => return Err(Refusal::Malformed(e.to_string())),
            }
        }
        let mut updates = Vec::new();
        for id in ids.clone() {
            let update = if msg.full {
                let rec = self
                    .aggregator
                    .recovery(id)
                    .map_err(|e| Refusal::Malformed(e.to_string()))?;
                Some(OthersUpdate {
                    learner: id,
                    stamp: rec.stamp,
                    rows: rec.others,
                })
            } else {
                self.aggregator
                    .answer(id)
                    .map_err(|e| Refusal::Malformed(e.to_string()))?
            };
            updates.extend(update);
        }
        let rows_down: usize = updates.iter().map(|u| u.rows.len()).sum();
        metrics::counter!("parbayes_rows_down_total").increment(rows_down as u64);
        let (_, block) = self.blocks.get_mut(&ids.start).expect("checked above");
        block.heard = Instant::now();
        if let Some(Progress {
            reached,
            stats,
            records,
        }) = msg.progress
            && reached >= block.reached
        {
            block.reached = reached;
            block.stats = stats.into_iter().map(LearnerStats::from).collect();
            if let Some(events) = &self.events {
                let _ = events.send(ServerEvent::Progress {
                    ids,
                    reached,
                    records,
                });
            }
        }
        Ok(Synced {
            updates,
            restarted: false,
        })
    }
}

#[remote_message("parbayes.join.v1")]
impl Message<Join> for AggregatorServer {
    type Reply = Result<Joined, Refusal>;

    async fn handle(&mut self, msg: Join, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let size = wire_len(&msg);
        let Some(this) = &mut self.serving else {
            metrics::counter!("parbayes_refused_total").increment(1);
            return Err(not_serving());
        };
        match this.join(&msg) {
            Ok(joined) => {
                this.wire.joins += 1;
                metrics::counter!("parbayes_joins_total").increment(1);
                this.accepted(size, &joined);
                Ok(joined)
            }
            Err(why) => this.refuse(why),
        }
    }
}

#[remote_message("parbayes.sync.v1")]
impl Message<Sync> for AggregatorServer {
    type Reply = Result<Synced, Refusal>;

    async fn handle(&mut self, msg: Sync, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let size = wire_len(&msg);
        let Some(this) = &mut self.serving else {
            metrics::counter!("parbayes_refused_total").increment(1);
            return Err(not_serving());
        };
        match this.sync(msg) {
            Ok(synced) => {
                this.accepted(size, &synced);
                Ok(synced)
            }
            Err(why) => this.refuse(why),
        }
    }
}

fn not_serving() -> Refusal {
    Refusal::OtherRun("this aggregator serves no run now".into())
}

impl Serving {
    fn refuse<T>(&mut self, why: Refusal) -> Result<T, Refusal> {
        self.wire.refused += 1;
        metrics::counter!("parbayes_refused_total").increment(1);
        tracing::warn!(%why, "refused a message");
        Err(why)
    }

    /// Counts a message of `bytes_in` accepted and its `reply`, here and in
    /// the metrics of [`super::exporter`] (no-ops unless they are served).
    fn accepted<T: Serialize>(&mut self, bytes_in: u64, reply: &T) {
        let bytes_out = wire_len(reply);
        self.wire.messages_in += 1;
        self.wire.bytes_in += bytes_in;
        self.wire.messages_out += 1;
        self.wire.bytes_out += bytes_out;
        metrics::counter!("parbayes_messages_in_total").increment(1);
        metrics::counter!("parbayes_bytes_in_total").increment(bytes_in);
        metrics::counter!("parbayes_messages_out_total").increment(1);
        metrics::counter!("parbayes_bytes_out_total").increment(bytes_out);
    }

    fn seen(&self) -> Seen {
        Seen {
            global: self.aggregator.global().clone(),
            traffic: self.aggregator.traffic(),
            wire: self.wire,
            blocks: self
                .blocks
                .values()
                .map(|(r, b)| (r.clone(), b.heard.elapsed().as_secs_f64()))
                .collect(),
        }
    }
}

/// The global counts and traffic now (local only).
pub struct Look;

/// What [`Look`] sees.
#[derive(Debug, Clone, kameo::Reply)]
pub struct Seen {
    /// `Σᵢ contrib[i]`.
    pub global: Evidence,
    /// The protocol's traffic, counted as in one process.
    pub traffic: Traffic,
    /// What crossed the wire.
    pub wire: WireTraffic,
    /// Each block's ids and seconds since it was last heard from.
    pub blocks: Vec<(Range<u32>, f64)>,
}

impl Message<Look> for AggregatorServer {
    type Reply = Option<Seen>;

    async fn handle(&mut self, _: Look, _ctx: &mut Context<Self, Self::Reply>) -> Option<Seen> {
        self.serving.as_ref().map(Serving::seen)
    }
}
