//! An application that embeds contextual agents: eight news servers each
//! hold a `LinearAgent` that picks the article to show a reader from the
//! reader's own feature vector, and learn from clicks that arrive long
//! after the impression (50 to 500 impressions later). They share their
//! regressions through one aggregator in the same process.
//!
//! The application owns the readers and the click model; the agents never
//! see it. It prints the agents' click rate against the best policy's (the
//! article of highest click probability for each reader) and a random
//! choice's. Run with `cargo run --release --example embed_contextual`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use parbayes::linear::{LinearAgent, LinearConfig, Noise};
use parbayes::share::ShareRule;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

const ARTICLES: usize = 10;
/// A reader: a constant 1 and five features (age band, topics read, …).
const FEATURES: usize = 6;
const SERVERS: u32 = 8;
const IMPRESSIONS_PER_SERVER: u64 = 20_000;
/// Every server sends its news to the aggregator, and hears back, this often.
const SYNC_EVERY: u64 = 100;

/// A click (or its absence) on the way back to the server that showed the
/// article, with the reader it was shown to.
struct Feedback {
    due: u64,
    server: u32,
    article: usize,
    reader: [f64; FEATURES],
    clicked: bool,
}

// The heap orders feedback by arrival alone.
impl PartialEq for Feedback {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}
impl Eq for Feedback {}
impl PartialOrd for Feedback {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Feedback {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.due.cmp(&other.due)
    }
}

/// What readers would click, unknown to the servers: a logistic model per
/// article; a random article is clicked about 3 % of the time, the best
/// one for each reader about 11 %.
struct Readers {
    weights: Vec<[f64; FEATURES]>,
    rng: Xoshiro256PlusPlus,
}

impl Readers {
    fn new(seed: u64) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let weights = (0..ARTICLES)
            .map(|_| {
                let mut w = [0.0; FEATURES];
                w[0] = -4.0;
                for v in &mut w[1..] {
                    *v = 0.5 * rng.sample::<f64, _>(StandardNormal);
                }
                w
            })
            .collect();
        Self { weights, rng }
    }

    fn next_reader(&mut self) -> [f64; FEATURES] {
        let mut x = [1.0; FEATURES];
        for v in &mut x[1..] {
            *v = self.rng.sample(StandardNormal);
        }
        x
    }

    fn click_probability(&self, reader: &[f64], article: usize) -> f64 {
        let z: f64 = self.weights[article]
            .iter()
            .zip(reader)
            .map(|(w, x)| w * x)
            .sum();
        1.0 / (1.0 + (-z).exp())
    }
}

fn main() -> parbayes::Result<()> {
    // Clicks are 0 or 1: the noise variance is unknown and learned
    // (a normal-inverse-gamma posterior).
    let config = LinearConfig::builder(ARTICLES, FEATURES)
        .noise(Noise::Unknown {
            shape: 1.0,
            rate: 0.05,
        })
        .share(ShareRule::Doubling(0.5))
        .build()?;
    let mut aggregator = config.aggregator(0);
    let mut servers: Vec<LinearAgent> = (0..SERVERS)
        .map(|_| LinearAgent::new(&config, aggregator.join(), 2026))
        .collect::<parbayes::Result<_>>()?;

    let mut readers = Readers::new(7);
    let mut in_flight = BinaryHeap::new();
    let (mut shown, mut clicks, mut best, mut random) = (0u64, 0u64, 0.0, 0.0);
    let window = IMPRESSIONS_PER_SERVER * u64::from(SERVERS) / 5;
    let (mut w_clicks, mut w_best, mut w_random) = (0u64, 0.0, 0.0);
    println!(
        "{SERVERS} servers, {IMPRESSIONS_PER_SERVER} impressions each, {ARTICLES} articles, \
         {FEATURES} reader features; clicks arrive 50-500 impressions later"
    );
    println!(
        "{:>18}  {:>10}  {:>12}  {:>12}",
        "impressions", "click rate", "best policy", "random"
    );

    for round in 0..IMPRESSIONS_PER_SERVER {
        for server in &mut servers {
            let reader = readers.next_reader();
            let article = server.decide(&reader)?;
            let p: [f64; ARTICLES] = std::array::from_fn(|a| readers.click_probability(&reader, a));
            let clicked = readers.rng.random::<f64>() < p[article];
            let due = shown + readers.rng.random_range(50..=500);
            in_flight.push(Reverse(Feedback {
                due,
                server: server.id(),
                article,
                reader,
                clicked,
            }));
            shown += 1;
            let top = p.iter().copied().fold(0.0, f64::max);
            let mean = p.iter().sum::<f64>() / ARTICLES as f64;
            (best, random) = (best + top, random + mean);
            clicks += u64::from(clicked);
            w_clicks += u64::from(clicked);
            (w_best, w_random) = (w_best + top, w_random + mean);
            if shown.is_multiple_of(window) {
                let n = window as f64;
                println!(
                    "{:>8} – {:>7}  {:>10.4}  {:>12.4}  {:>12.4}",
                    shown - window,
                    shown,
                    w_clicks as f64 / n,
                    w_best / n,
                    w_random / n
                );
                (w_clicks, w_best, w_random) = (0, 0.0, 0.0);
            }
        }
        // Feedback that has arrived, whatever its order.
        while in_flight
            .peek()
            .is_some_and(|Reverse(f): &Reverse<Feedback>| f.due <= shown)
        {
            let Reverse(f) = in_flight.pop().expect("peeked");
            let reward = if f.clicked { 1.0 } else { 0.0 };
            servers[f.server as usize].observe(&f.reader, f.article, reward)?;
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

    let n = shown as f64;
    println!(
        "click rate {:.4} over {shown} impressions; best policy {:.4}, random choice {:.4}",
        clicks as f64 / n,
        best / n,
        random / n
    );
    let t = aggregator.traffic();
    println!(
        "traffic: {} messages up, {} down, {:.1} kB",
        t.messages_up,
        t.messages_down,
        (t.bytes_up + t.bytes_down) as f64 / 1000.0
    );
    Ok(())
}
