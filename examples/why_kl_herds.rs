//! Why the paper's KL trigger stops helping as learners multiply, measured.
//!
//! Runs the bandit-news task (20 arms, click rates 1–5 %) in lockstep with N
//! learners under a share rule, on the library's core (no actors), and
//! reports at the end of 2000 pulls:
//!
//! - `best arm`: the share of the last 100 pulls that took the best arm;
//! - `unsent`: the share of all pulls the aggregator never heard of;
//! - `sent CTR` against `seen CTR`: the click rate of the evidence the
//!   aggregator holds against that of everything the learners observed. A
//!   trigger that fires on surprising outcomes sends right after clicks, so
//!   what arrives over-represents them (optional stopping);
//! - `after click`: the share of sends whose last observation was a click,
//!   against the click rate itself;
//! - `best-arm bias`: the global estimate of the best arm's click rate minus
//!   the truth (0.050).
//!
//! Run with `cargo run --release --example why_kl_herds [-- N…]`; the
//! default agent counts are 10, 100, 1000 and 10000 (about a minute).

use parbayes::agent::AgentConfig;
use parbayes::env::{BernoulliBandit, Environment};
use parbayes::learner::{Learner, LearnerConfig};
use parbayes::model::Evidence;
use parbayes::share::{Aggregator, Sharing};

const RATES: [f64; 20] = [
    0.010, 0.012, 0.015, 0.018, 0.020, 0.022, 0.025, 0.027, 0.030, 0.050, 0.032, 0.035, 0.028,
    0.024, 0.019, 0.016, 0.040, 0.045, 0.038, 0.033,
];
const BEST: usize = 9;
const PULLS: u64 = 2000;
const SEED: u64 = 42;

/// (pulls, clicks) of one store summed over arms, and of the best arm.
fn totals(e: &Evidence) -> ([f64; 2], [f64; 2]) {
    let mut all = [0.0; 2];
    let mut best = [0.0; 2];
    for (arm, c) in e.iter() {
        all = [all[0] + c[0] + c[1], all[1] + c[1]];
        if arm == BEST {
            best = [c[0] + c[1], c[1]];
        }
    }
    (all, best)
}

fn main() -> parbayes::Result<()> {
    let counts: Vec<u32> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("agent counts are whole numbers"))
        .collect();
    let counts = if counts.is_empty() {
        vec![10, 100, 1000, 10_000]
    } else {
        counts
    };
    println!(
        "{:<12} {:>6} {:>9} {:>7} {:>9} {:>9} {:>12} {:>14}",
        "rule",
        "agents",
        "best arm",
        "unsent",
        "sent CTR",
        "seen CTR",
        "after click",
        "best-arm bias"
    );
    for rule in ["kl:0.00001", "doubling:1"] {
        let sharing: Sharing = rule.parse().expect("a valid rule");
        let agent = AgentConfig::builder().sharing(sharing).build()?;
        let task = Environment::Bandit(BernoulliBandit::new(RATES.to_vec(), vec![])?);
        let config = LearnerConfig::new(task, agent)?;
        for &n in &counts {
            let mut learners: Vec<Learner> =
                (0..n).map(|i| Learner::new(&config, SEED, 0, i)).collect();
            let mut agg = Aggregator::new(config.structure().shape(), n as usize)
                .with_downlink(sharing.downlink);
            let (mut sends, mut sends_after_click, mut best_late) = (0u64, 0u64, 0u64);
            for pull in 0..PULLS {
                for l in &mut learners {
                    let (before, best_before) = totals(l.ledger().own());
                    let message = l.trial(1);
                    let (after, best_after) = totals(l.ledger().own());
                    if pull >= PULLS - 100 && best_after[0] > best_before[0] {
                        best_late += 1;
                    }
                    if let Some(m) = message {
                        sends += 1;
                        sends_after_click += u64::from(after[1] > before[1]);
                        agg.receive(&m)?;
                    }
                }
                for u in agg.answer_all() {
                    learners[u.learner as usize].absorb(&u);
                }
            }
            let seen = learners.iter().fold([0.0; 2], |s, l| {
                let (all, _) = totals(l.ledger().own());
                [s[0] + all[0], s[1] + all[1]]
            });
            let (sent, best_sent) = totals(agg.global());
            let best_mean = (1.0 + best_sent[1]) / (2.0 + best_sent[0]);
            println!(
                "{:<12} {:>6} {:>8.1}% {:>6.1}% {:>8.2}% {:>8.2}% {:>11.1}% {:>+14.4}",
                rule,
                n,
                100.0 * best_late as f64 / (100.0 * f64::from(n)),
                100.0 * (1.0 - sent[0] / seen[0]),
                100.0 * sent[1] / sent[0],
                100.0 * seen[1] / seen[0],
                100.0 * sends_after_click as f64 / sends.max(1) as f64,
                best_mean - RATES[BEST],
            );
        }
    }
    Ok(())
}
