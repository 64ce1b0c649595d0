//! The hot paths allocate nothing per call: a counting allocator watches
//! the calls an application makes per request, after a warm-up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use parbayes::linear::{LinearAgent, LinearConfig, LinearModel, LinearPolicy, Noise};
use parbayes::{Agent, AgentConfig, Structure};

/// Counts the allocations of threads that ask it to.
struct Counting;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    WATCHING.with(|w| w.set(true));
    f();
    WATCHING.with(|w| w.set(false));
    COUNT.with(Cell::get)
}

#[test]
fn contextual_decisions_and_observations_allocate_nothing() {
    let policies = [
        LinearPolicy::Thompson { scale: 1.0 },
        LinearPolicy::LinUcb { alpha: 1.0 },
        LinearPolicy::BayesUcb,
        LinearPolicy::EpsilonGreedy { epsilon: 0.1 },
    ];
    let noises = [
        Noise::Known { variance: 0.5 },
        Noise::Unknown {
            shape: 1.0,
            rate: 1.0,
        },
    ];
    for model in [LinearModel::Disjoint, LinearModel::Shared] {
        for policy in policies {
            for noise in noises {
                let config = LinearConfig::builder(5, 6)
                    .model(model)
                    .policy(policy)
                    .noise(noise)
                    .propensity_draws(20)
                    .build()
                    .unwrap();
                let mut agent = LinearAgent::new(&config, 0, 1).unwrap();
                let context: Vec<f64> = (0..agent.context_len())
                    .map(|k| ((k * 7) % 5) as f64 / 4.0 - 0.5)
                    .collect();
                // Warm-up: every key touched once, so the ledger holds its rows.
                for arm in 0..5 {
                    agent.observe(&context, arm, 0.5).unwrap();
                }
                let n = allocations(|| {
                    for t in 0..200 {
                        let arm = agent.decide(&context).unwrap();
                        agent.observe(&context, arm, f64::from(t % 3)).unwrap();
                        let d = agent.decide_with_propensity(&context).unwrap();
                        assert!(d.propensity > 0.0);
                    }
                });
                assert_eq!(n, 0, "{model:?} {policy} {noise:?}: {n} allocations");
            }
        }
    }
}

#[test]
fn bandit_decisions_and_observations_allocate_nothing() {
    let articles = Structure::bandit(20).unwrap();
    for policy in [
        "posterior-sampling",
        "epsilon-greedy:0.1",
        "softmax:0.1",
        "ucb",
    ] {
        let config = AgentConfig::builder()
            .policy(policy.parse().unwrap())
            .build()
            .unwrap();
        let mut agent = Agent::new(&articles, &config, 0, 1).unwrap();
        // Warm-up: every arm seen, and the policy's caches built.
        for arm in 0..20 {
            agent.observe_click(arm, arm % 3 == 0).unwrap();
            agent.decide(0).unwrap();
        }
        let n = allocations(|| {
            for t in 0..2000 {
                let arm = agent.decide(0).unwrap();
                agent.observe_click(arm, t % 7 == 0).unwrap();
            }
        });
        assert_eq!(n, 0, "{policy}: {n} allocations");
    }
}
