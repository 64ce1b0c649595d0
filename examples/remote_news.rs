//! News servers in separate processes, sharing through one aggregator
//! over the network: the shape of a production bandit deployment. Each
//! server process holds agents that pick articles locally and learn from
//! clicks; every 100 impressions it syncs all its agents in one round trip.
//!
//! Run `cargo run --release --features remote --example remote_news`: it
//! serves the aggregator on 127.0.0.1 and starts two server processes of
//! itself (`remote_news servers ADDR 0..4` and `4..8`); on real machines,
//! start the servers by hand with the aggregator's address.

use std::time::Duration;

use parbayes::agent::{Agent, AgentConfig};
use parbayes::model::Structure;
use parbayes::remote::{AggregatorClient, Close, RunId, open_aggregator};
use parbayes::share::{Aggregator, ShareRule};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// What readers would click, unknown to the servers: 20 articles between
/// 1 % and 5 %.
const CLICK_RATES: [f64; 20] = [
    0.010, 0.012, 0.015, 0.018, 0.020, 0.022, 0.025, 0.027, 0.030, 0.050, 0.032, 0.035, 0.028,
    0.024, 0.019, 0.016, 0.040, 0.045, 0.038, 0.033,
];
const AGENTS: u32 = 8;
const IMPRESSIONS_PER_AGENT: u64 = 20_000;
const SYNC_EVERY: u64 = 100;

fn run_id() -> parbayes::Result<RunId> {
    let shape = Structure::bandit(CLICK_RATES.len())?.shape();
    Ok(RunId::new("remote-news", shape, AGENTS, 0))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [role, addr, ids] if role == "servers" => {
            let (a, b) = ids.split_once("..").ok_or("ids as A..B")?;
            servers(addr, a.parse()?..b.parse()?).await
        }
        [] => aggregator().await,
        _ => Err("usage: remote_news [servers ADDR A..B]".into()),
    }
}

/// The aggregator, and two server processes of this same program.
async fn aggregator() -> Result<(), Box<dyn std::error::Error>> {
    let shape = run_id()?.shape;
    let (addr, server) = open_aggregator(
        "127.0.0.1:0",
        run_id()?,
        Aggregator::new(shape, AGENTS as usize),
    )
    .await?;
    println!("aggregator at {addr}");
    let me = std::env::current_exe()?;
    let mut children = Vec::new();
    for ids in ["0..4", "4..8"] {
        children.push(
            tokio::process::Command::new(&me)
                .args(["servers", &addr.to_string(), ids])
                .kill_on_drop(true)
                .spawn()?,
        );
    }
    for mut child in children {
        let status = child.wait().await?;
        if !status.success() {
            return Err(format!("a server process failed: {status}").into());
        }
    }
    let seen = server.ask(Close).await?.ok_or("not serving")?;
    // One row per article: the impressions every agent shared.
    let shown = |k: usize| seen.global.row(k).map_or(0.0, |c| c.iter().sum::<f64>());
    let favourite = (0..CLICK_RATES.len())
        .max_by(|&a, &b| shown(a).total_cmp(&shown(b)))
        .ok_or("no articles")?;
    println!(
        "global evidence: {:.0} impressions; most shown article {favourite} (click rate {:.3}; best {:.3})",
        (0..CLICK_RATES.len()).map(shown).sum::<f64>(),
        CLICK_RATES[favourite],
        CLICK_RATES.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "over the wire: {} messages in, {:.1} kB in, {:.1} kB out",
        seen.wire.messages_in,
        seen.wire.bytes_in as f64 / 1000.0,
        seen.wire.bytes_out as f64 / 1000.0
    );
    Ok(())
}

/// One server process: agents `ids`, each showing articles and learning
/// from clicks, all synced every `SYNC_EVERY` impressions.
async fn servers(addr: &str, ids: std::ops::Range<u32>) -> Result<(), Box<dyn std::error::Error>> {
    let articles = Structure::bandit(CLICK_RATES.len())?;
    let config = AgentConfig::builder()
        .share(ShareRule::Periodic(SYNC_EVERY))
        .build()?;
    let mut agents: Vec<Agent> = ids
        .clone()
        .map(|id| Agent::new(&articles, &config, id, 2026))
        .collect::<parbayes::Result<_>>()?;
    let mut client = AggregatorClient::connect(addr, run_id()?, Duration::from_secs(30)).await?;
    client.join(ids.clone()).await?;
    let mut readers = Xoshiro256PlusPlus::seed_from_u64(u64::from(ids.start));
    let (mut clicks, mut shown) = (0u64, 0u64);
    for round in 1..=IMPRESSIONS_PER_AGENT {
        for agent in &mut agents {
            let article = agent.decide(0)?;
            let clicked = readers.random::<f64>() < CLICK_RATES[article];
            agent.observe_click(article, clicked)?;
            clicks += u64::from(clicked);
            shown += 1;
        }
        if round.is_multiple_of(SYNC_EVERY) {
            client.sync_agents(&mut agents).await?;
        }
    }
    println!(
        "servers {}..{}: click rate {:.4} over {shown} impressions",
        ids.start,
        ids.end,
        clicks as f64 / shown as f64
    );
    Ok(())
}
