//! A learner process's handle on a remote aggregator: join with a block of
//! learners, then sync, retrying through lost connections.

use std::ops::Range;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use kameo::error::RemoteSendError;
use kameo::prelude::*;

use super::server::{AggregatorServer, DOOR_NAME};
use super::swarm::{REPLY_TIMEOUT, current, node, parse_addr};
use super::wire::{Join, Joined, Progress, Refusal, RunId, Sync, Synced};
use crate::agent::Agent;
use crate::error::RemoteError;
use crate::error::{Error, Result};
use crate::share::ShareMessage;

/// A connection to the aggregator of one run, for one block of learners.
///
/// A sync whose connection fails is retried with backoff (100 ms doubling
/// to 5 s) for as long as `patience` allows, and the retry asks for every
/// row, since the lost reply's rows would never come again. Shares are full
/// counts with sequence numbers, so a sync that did arrive before its reply
/// was lost changes nothing the second time.
pub struct AggregatorClient {
    aggregator: RemoteActorRef<AggregatorServer>,
    run: RunId,
    target: libp2p::Multiaddr,
    patience: Duration,
    block: Option<(Range<u32>, u64)>,
    /// The last sync failed: ask for every row.
    full: bool,
}

impl AggregatorClient {
    /// Dials `addr` (`HOST:PORT` or a multiaddr) and finds the aggregator
    /// serving `run`, waiting up to `patience` for it to come up.
    pub async fn connect(addr: &str, run: RunId, patience: Duration) -> Result<Self> {
        let target = parse_addr(addr)?;
        let listen = parse_addr("127.0.0.1:0")?;
        let me = node(&listen).await?;
        let deadline = Instant::now() + patience;
        let mut next_dial = Instant::now();
        loop {
            if Instant::now() >= next_dial {
                me.dial(target.clone());
                next_dial = Instant::now() + Duration::from_secs(1);
            }
            match RemoteActorRef::<AggregatorServer>::lookup(DOOR_NAME).await {
                Ok(Some(aggregator)) => {
                    return Ok(Self {
                        aggregator,
                        run,
                        target,
                        patience,
                        block: None,
                        full: false,
                    });
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "lookup failed"),
            }
            if Instant::now() >= deadline {
                return Err(RemoteError::Unreachable {
                    addr: addr.to_string(),
                    patience,
                }
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The run it belongs to.
    pub fn run(&self) -> &RunId {
        &self.run
    }

    /// Joins with learners `ids` (or rejoins: then the answer holds what to
    /// rebuild them from).
    pub async fn join(&mut self, ids: Range<u32>) -> Result<Joined> {
        self.join_as(ids, false).await
    }

    async fn join_as(&mut self, ids: Range<u32>, resync: bool) -> Result<Joined> {
        let msg = Join {
            run: self.run.clone(),
            ids: ids.clone(),
            resync,
        };
        let started = Instant::now();
        let mut wait = Duration::from_millis(100);
        let joined = loop {
            match self.aggregator.ask(&msg).reply_timeout(REPLY_TIMEOUT).await {
                Ok(joined) => break joined,
                Err(RemoteSendError::HandlerError(why)) => return Err(refused(why)),
                Err(e) if started.elapsed() + wait < self.patience => {
                    tracing::warn!(error = %e, ?wait, "join failed; retrying");
                    self.backoff(&mut wait).await;
                }
                Err(e) => return Err(RemoteError::Failed(e.to_string()).into()),
            }
        };
        self.block = Some((ids, joined.session));
        self.full = false;
        Ok(joined)
    }

    /// Hands over `shares` (of learners in the joined block) and `progress`,
    /// and returns the others' counts that changed for the block.
    ///
    /// If the aggregator restarted (from a snapshot) and no longer knows the
    /// block's session, the block rejoins, the sync is made again, and the
    /// answer says [`restarted`](Synced::restarted): the caller must then
    /// resend every learner's full counts.
    pub async fn sync(
        &mut self,
        shares: Vec<ShareMessage>,
        progress: Option<Progress>,
    ) -> Result<Synced> {
        let Some((ids, session)) = self.block.clone() else {
            return Err(RemoteError::NotJoined.into());
        };
        let mut msg = Sync {
            session,
            ids,
            shares,
            full: self.full,
            progress,
        };
        let started = Instant::now();
        let mut wait = Duration::from_millis(100);
        let mut restarted = false;
        loop {
            match self.aggregator.ask(&msg).reply_timeout(REPLY_TIMEOUT).await {
                Ok(mut synced) => {
                    self.full = false;
                    synced.restarted = restarted;
                    return Ok(synced);
                }
                Err(RemoteSendError::HandlerError(Refusal::Session(_))) if !restarted => {
                    tracing::warn!("the aggregator lost this block's session; rejoining");
                    restarted = true;
                    let joined = self.join_as(msg.ids.clone(), true).await?;
                    msg.session = joined.session;
                    // Its answers so far may predate what the learners hold.
                    msg.full = true;
                }
                Err(RemoteSendError::HandlerError(why)) => return Err(refused(why)),
                Err(e) if started.elapsed() + wait < self.patience => {
                    tracing::warn!(error = %e, ?wait, "sync failed; retrying");
                    self.full = true;
                    msg.full = true;
                    self.backoff(&mut wait).await;
                }
                Err(e) => {
                    self.full = true;
                    return Err(RemoteError::Silent {
                        patience: self.patience,
                        problem: e.to_string(),
                    }
                    .into());
                }
            }
        }
    }

    /// Waits `wait`, redials, finds the aggregator again (a restarted one
    /// is another peer), and doubles `wait` up to 5 s.
    async fn backoff(&mut self, wait: &mut Duration) {
        tokio::time::sleep(*wait).await;
        if let Some(me) = current() {
            me.dial(self.target.clone());
        }
        *wait = (*wait * 2).min(Duration::from_secs(5));
        let failed = self.aggregator.id().peer_id().copied();
        let mut found = RemoteActorRef::<AggregatorServer>::lookup_all(DOOR_NAME);
        let search = async {
            while let Ok(Some(candidate)) = found.try_next().await {
                if candidate.id().peer_id().copied() != failed {
                    return Some(candidate);
                }
            }
            None
        };
        if let Ok(Some(other)) = tokio::time::timeout(Duration::from_secs(2), search).await {
            tracing::info!("found the aggregator at another peer");
            self.aggregator = other;
        }
    }

    /// Shares what each of `agents` (the joined block, in id order) has
    /// to share by its rule, and hands each the others' counts that came
    /// back: one round trip for the whole block.
    pub async fn sync_agents(&mut self, agents: &mut [Agent]) -> Result<()> {
        let shares: Vec<ShareMessage> = agents.iter_mut().filter_map(Agent::share).collect();
        let mut synced = self.sync(shares, None).await?;
        if synced.restarted {
            let all: Vec<ShareMessage> = agents.iter_mut().filter_map(Agent::resend).collect();
            let again = self.sync(all, None).await?;
            synced.updates.extend(again.updates);
        }
        for update in &synced.updates {
            let agent = agents
                .iter_mut()
                .find(|a| a.id() == update.learner)
                .ok_or(RemoteError::ForeignUpdate(update.learner))?;
            agent.absorb(update)?;
        }
        Ok(())
    }
}

fn refused(why: Refusal) -> Error {
    RemoteError::Refused(why).into()
}
