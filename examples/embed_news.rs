//! An application that embeds parbayes: eight news servers each hold an
//! agent that picks the article to show, and learn from clicks that arrive
//! long after the impression (50 to 500 impressions later). They share
//! through one aggregator in the same process.
//!
//! The application owns the click stream; the agents never see the true
//! click rates. Run with `cargo run --release --example embed_news`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use parbayes::agent::{Agent, AgentConfig};
use parbayes::model::Structure;
use parbayes::share::ShareRule;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// What readers would click, unknown to the servers: 20 articles between
/// 1 % and 5 %.
const CLICK_RATES: [f64; 20] = [
    0.010, 0.012, 0.015, 0.018, 0.020, 0.022, 0.025, 0.027, 0.030, 0.050, 0.032, 0.035, 0.028,
    0.024, 0.019, 0.016, 0.040, 0.045, 0.038, 0.033,
];
const SERVERS: u32 = 8;
const IMPRESSIONS_PER_SERVER: u64 = 20_000;
/// Every server sends its news to the aggregator, and hears back, this often.
const SYNC_EVERY: u64 = 100;

/// A click (or its absence) on the way back to the server that showed the
/// article.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Feedback {
    due: u64,
    server: u32,
    article: usize,
    clicked: bool,
}

fn main() -> parbayes::Result<()> {
    let articles = Structure::bandit(CLICK_RATES.len())?;
    let config = AgentConfig::builder()
        .share(ShareRule::Periodic(SYNC_EVERY))
        .build()?;
    let mut aggregator = config.aggregator(&articles, 0);
    let mut servers: Vec<Agent> = (0..SERVERS)
        .map(|_| Agent::new(&articles, &config, aggregator.join(), 2026))
        .collect::<parbayes::Result<_>>()?;

    // The readers: the application's own random stream.
    let mut readers = Xoshiro256PlusPlus::seed_from_u64(7);
    let mut in_flight = BinaryHeap::new();
    let (mut clicks, mut shown) = (0u64, 0u64);
    let window = IMPRESSIONS_PER_SERVER * u64::from(SERVERS) / 5;
    let mut window_clicks = 0u64;
    println!(
        "{SERVERS} servers, {IMPRESSIONS_PER_SERVER} impressions each; clicks arrive 50-500 impressions later"
    );
    println!("{:>18}  {:>10}", "impressions", "click rate");

    for round in 0..IMPRESSIONS_PER_SERVER {
        for server in &mut servers {
            let now = shown;
            let article = server.decide(0)?;
            let clicked = readers.random::<f64>() < CLICK_RATES[article];
            in_flight.push(Reverse(Feedback {
                due: now + readers.random_range(50..=500),
                server: server.id(),
                article,
                clicked,
            }));
            shown += 1;
            clicks += u64::from(clicked);
            window_clicks += u64::from(clicked);
            if shown.is_multiple_of(window) {
                let rate = window_clicks as f64 / window as f64;
                println!("{:>8} – {:>7}  {rate:>10.4}", shown - window, shown);
                window_clicks = 0;
            }
        }
        // Feedback that has arrived, whatever its order.
        while in_flight
            .peek()
            .is_some_and(|Reverse(f): &Reverse<Feedback>| f.due <= shown)
        {
            let Reverse(f) = in_flight.pop().expect("peeked");
            servers[f.server as usize].observe_click(f.article, f.clicked)?;
        }
        if (round + 1).is_multiple_of(SYNC_EVERY) {
            for server in &mut servers {
                if let Some(message) = server.share() {
                    aggregator.receive(&message)?;
                }
            }
            for server in &mut servers {
                if let Some(update) = aggregator.answer(server.id())? {
                    server.absorb(&update)?;
                }
            }
        }
    }

    let best = CLICK_RATES.iter().copied().fold(0.0, f64::max);
    let random = CLICK_RATES.iter().sum::<f64>() / CLICK_RATES.len() as f64;
    let t = aggregator.traffic();
    println!(
        "click rate {:.4} over {shown} impressions; best article {best:.4}, random choice {random:.4}",
        clicks as f64 / shown as f64
    );
    println!(
        "traffic: {} messages up, {} down, {:.1} kB",
        t.messages_up,
        t.messages_down,
        (t.bytes_up + t.bytes_down) as f64 / 1000.0
    );
    Ok(())
}
