//! A task of your own, run through the library like a shipped scenario:
//! the same lockstep runtime, the same metrics, the same results folder
//! (`trials.csv`, `summary.json`, `curves.svg`, `curves.png`).
//!
//! The task: a shop restocks one product. Stock is 0 to 5 units; each day
//! it orders 0, 1 or 2 more, then sells to whatever demand comes (0 to 3
//! units, with probabilities it does not know). A sale earns 4, a unit
//! left on the shelf costs 0.5 a night, an order costs 1 per unit.
//!
//! Run with `cargo run --release --example custom_task [RESULTS_DIR]`.

use parbayes::agent::AgentConfig;
use parbayes::env::{Step, Task, Truth};
use parbayes::model::{Known, Mdp, Shape, Transition};
use parbayes::policy::Policy;
use parbayes::report::{ResultsDir, run_in_folder, summary_table};
use parbayes::share::ShareRule;
use parbayes::{RunOptions, Scenario};
use rand::{Rng, RngExt};

const MAX_STOCK: usize = 5;
const ORDERS: usize = 3;
/// Demand of 0, 1, 2 or 3 units: the probabilities the shop must learn.
const DEMAND: [f64; 4] = [0.2, 0.4, 0.3, 0.1];

#[derive(Debug, Clone)]
struct Shop {
    truth: Truth,
}

impl Shop {
    fn new() -> parbayes::Result<Self> {
        let shape = Self::SHAPE;
        // The true model, row by row: demand is the outcome.
        let rows: Vec<Vec<Transition>> = (0..shape.rows())
            .map(|row| {
                let (stock, order) = (row / ORDERS, row % ORDERS);
                (0..DEMAND.len())
                    .map(|demand| {
                        let k = known(stock, order, demand);
                        Transition {
                            outcome: demand,
                            next: k.next,
                            prob: DEMAND[demand],
                            reward: k.reward,
                            terminal: false,
                        }
                    })
                    .collect()
            })
            .collect();
        let mut start = vec![0.0; shape.states];
        start[2] = 1.0;
        let model = Mdp::new(shape, start, &rows)?;
        Ok(Self {
            truth: Truth::new(vec![(0, model)], 0.9),
        })
    }

    const SHAPE: Shape = Shape {
        states: MAX_STOCK + 1,
        actions: ORDERS,
        outcomes: DEMAND.len(),
    };
}

/// What the shop knows: demand `demand` after ordering `order` with `stock`
/// on the shelf leaves this much stock and earns this much.
fn known(stock: usize, order: usize, demand: usize) -> Known {
    let on_shelf = (stock + order).min(MAX_STOCK);
    let sold = demand.min(on_shelf);
    let left = on_shelf - sold;
    Known {
        next: left,
        reward: 4.0 * sold as f64 - 0.5 * left as f64 - order as f64,
        terminal: false,
    }
}

impl Task for Shop {
    fn kind(&self) -> &str {
        "shop"
    }

    fn shape(&self) -> Shape {
        Self::SHAPE
    }

    fn known(&self, stock: usize, order: usize, demand: usize) -> Known {
        known(stock, order, demand)
    }

    fn gamma(&self) -> f64 {
        self.truth.gamma()
    }

    fn start_state<R: Rng + ?Sized>(&self, _rng: &mut R) -> usize {
        2
    }

    fn step<R: Rng + ?Sized>(&self, stock: usize, order: usize, rng: &mut R) -> Step {
        let mut u = rng.random::<f64>();
        let demand = DEMAND
            .iter()
            .position(|p| {
                u -= p;
                u < 0.0
            })
            .unwrap_or(DEMAND.len() - 1);
        let k = known(stock, order, demand);
        Step {
            outcome: demand,
            next: k.next,
            reward: k.reward,
            terminal: false,
        }
    }

    // The truth, so that model error and policy loss are measured.
    fn true_row_into(&self, _row: usize, out: &mut [f64]) -> bool {
        out.copy_from_slice(&DEMAND);
        true
    }

    fn truth(&self) -> Option<&Truth> {
        Some(&self.truth)
    }
}

fn main() -> parbayes::Result<()> {
    let agent = AgentConfig::builder()
        .policy(Policy::EpsilonGreedy { epsilon: 0.1 })
        .share(ShareRule::Periodic(20))
        .build()?;
    let scenario = Scenario::builder("shop", Shop::new()?)
        .description("restocking under unknown demand")
        .agent(agent)
        .agents([1, 4, 16])
        .trials(100)
        .steps_per_trial(20)
        .reps(5)
        .build()?;
    let out = std::env::args()
        .nth(1)
        .map(Into::into)
        .unwrap_or_else(|| parbayes::scenario::default_results_dir(&scenario));
    let dir = ResultsDir::create(&out)?;
    let summary = run_in_folder(&scenario, &RunOptions::default(), dir, None, &mut ())?;
    print!("{}", summary_table(&summary));
    println!("results: {}", out.display());
    Ok(())
}
