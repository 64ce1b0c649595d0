//! Learners in other processes and on other machines, over kameo's remote
//! actors (libp2p: TCP, noise, yamux; peers dialled explicitly). Built with
//! the `remote` feature.
//!
//! One [`AggregatorServer`] per run is the only remote endpoint of its
//! process. A learner process joins with a block of learner ids and then
//! syncs, one ask at a time: its shares and progress go up, the others'
//! changed counts come back in the reply. One ask in flight per process
//! keeps its messages in order and acknowledged (kameo's fire-and-forget
//! sends drop messages past about a hundred in flight); shares are full
//! counts with sequence numbers, so a retried sync changes nothing twice.
//!
//! A learner process killed mid-run rejoins (restarted by its parent, or
//! by hand) and is rebuilt from the aggregator's record of its learners,
//! continuing after the last trial the aggregator heard of: only what its
//! learners had not yet shared is lost.
//!
//! [`run_hosted`] runs an experiment with the aggregator in this process
//! and the learners as child processes or joining from elsewhere;
//! [`serve_learners`] is a learner process; [`AggregatorClient`] lets an
//! application's [`Agent`](crate::Agent)s sync with a remote aggregator.

mod any;
mod client;
mod exporter;
mod learners;
mod run;
mod server;
mod swarm;
mod wire;

pub use crate::error::RemoteError;
pub use any::{AnyAggregator, Hosted};
pub use client::AggregatorClient;
pub use exporter::serve_metrics;
pub use learners::{Served, run_id, serve_learners};
pub use run::{
    Hosting, LearnerCommand, LearnerProcess, open_aggregator, run_hosted, run_scenario_hosted,
};
pub use server::{AggregatorServer, Close, DOOR_NAME, Look, Open, Seen, ServerArgs, ServerEvent};
pub use swarm::{Node, current, node, parse_addr};
pub use wire::{Join, Joined, PROTOCOL, Progress, Refusal, RunId, Sync, Synced, Totals};
