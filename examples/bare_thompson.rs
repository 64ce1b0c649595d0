//! The yardstick for parbayes's speed: the bare Thompson-sampling loop on
//! the same crates, with no actors, no sharing and no metrics. Each step
//! draws 20 Betas as ratios of two Gamma draws, takes the argmax, draws a
//! Bernoulli click and updates one count. The arms are bandit-news's.
//!
//! ```sh
//! cargo run --release --example bare_thompson -- 2000000
//! ```
//!
//! It prints steps per second; compare with the `steps_per_second` that
//! `parbayes run bandit-news --agents 1 --reps 1 --trials 2000000 --share
//! never --format json` reports, run just before or after it.

use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Gamma};
use rand_xoshiro::Xoshiro256PlusPlus;

const ARMS: [f64; 20] = [
    0.010, 0.012, 0.015, 0.018, 0.020, 0.022, 0.025, 0.027, 0.030, 0.050, 0.032, 0.035, 0.028,
    0.024, 0.019, 0.016, 0.040, 0.045, 0.038, 0.033,
];

fn main() {
    let steps: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("steps: a whole number"))
        .unwrap_or(2_000_000);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    // Beta(1, 1) priors: successes + 1, failures + 1.
    let mut alpha = [1.0f64; 20];
    let mut beta = [1.0f64; 20];
    let mut clicks = 0u64;
    let started = Instant::now();
    for _ in 0..steps {
        let mut best = (0, f64::NEG_INFINITY);
        for a in 0..ARMS.len() {
            let x = Gamma::new(alpha[a], 1.0).expect("α > 0").sample(&mut rng);
            let y = Gamma::new(beta[a], 1.0).expect("β > 0").sample(&mut rng);
            let theta = x / (x + y);
            if theta > best.1 {
                best = (a, theta);
            }
        }
        let a = best.0;
        if rng.random::<f64>() < ARMS[a] {
            alpha[a] += 1.0;
            clicks += 1;
        } else {
            beta[a] += 1.0;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "bare Thompson loop: {steps} steps in {seconds:.3} s = {:.0} steps/s ({clicks} clicks)",
        steps as f64 / seconds
    );
}
