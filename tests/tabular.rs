//! Model files in Gymnasium's layout whose entries for one next state differ
//! in reward or terminal flag (CliffWalking, slippery: falling off the cliff
//! and a plain move can both end in the start cell) load as they are and
//! solve to the exact V*, checked against a linear solve on the file's raw
//! entries.

mod common;

use common::linear_solve;
use parbayes::env::{Environment, TabularMdp, Task};
use parbayes::learner::{Learner, LearnerConfig};
use parbayes::model::solve;

const CLIFF: &str = "scenarios/models/cliffwalking-slippery.json";
const GAMMA: f64 = 0.95;

/// One entry as written: `[next, probability, reward, terminal]`.
type Entry = (usize, f64, f64, bool);

/// The file's entries per (state, action).
fn raw_entries() -> Vec<Vec<Vec<Entry>>> {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(CLIFF).unwrap()).unwrap();
    doc["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|by_action| {
            by_action
                .as_array()
                .unwrap()
                .iter()
                .map(|list| {
                    list.as_array()
                        .unwrap()
                        .iter()
                        .map(|e| {
                            (
                                e[0].as_u64().unwrap() as usize,
                                e[1].as_f64().unwrap(),
                                e[2].as_f64().unwrap(),
                                e[3].as_bool().unwrap(),
                            )
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

#[test]
fn cliffwalking_loads_with_two_rewards_for_one_next_state_and_solves_exactly() {
    let env = TabularMdp::load(CLIFF.as_ref(), GAMMA).unwrap();
    let raw = raw_entries();
    let states = raw.len();
    // Some rows reach the start cell two ways: extra outcomes exist.
    assert!(env.shape().outcomes > states, "{:?}", env.shape());
    let start = 36;
    let right_of_start = env.shape().row(start, 1);
    let ways: Vec<(usize, f64)> = env
        .truth()
        .model()
        .transitions(right_of_start)
        .map(|t| (t.next, t.reward))
        .collect();
    assert!(
        ways.contains(&(start, -100.0)) && ways.contains(&(start, -1.0)),
        "{ways:?}"
    );

    let solution = solve(env.truth().model(), GAMMA);
    // V^π of the solver's policy from the raw entries: (I − γP) V = R.
    let mut a = vec![vec![0.0; states]; states];
    let mut r = vec![0.0; states];
    for s in 0..states {
        a[s][s] += 1.0;
        for &(next, p, reward, terminal) in &raw[s][solution.policy[s]] {
            r[s] += p * reward;
            if !terminal {
                a[s][next] -= GAMMA * p;
            }
        }
    }
    let v = linear_solve(a, r);
    for s in 0..states {
        assert!((solution.values[s] - v[s]).abs() < 1e-8, "state {s}");
        // And no action does better: the policy is optimal.
        for (act, list) in raw[s].iter().enumerate() {
            let q: f64 = list
                .iter()
                .map(|&(next, p, reward, terminal)| {
                    p * (reward + if terminal { 0.0 } else { GAMMA * v[next] })
                })
                .sum();
            assert!(q <= v[s] + 1e-8, "state {s} action {act}: {q} > {}", v[s]);
        }
    }
    assert!((solution.v_start - v[start]).abs() < 1e-8);
}

#[test]
fn learners_on_cliffwalking_see_the_two_ways_apart() {
    let env = Environment::Tabular(TabularMdp::load(CLIFF.as_ref(), GAMMA).unwrap());
    let agent = parbayes::AgentConfig::builder()
        .policy(parbayes::policy::Policy::EpsilonGreedy { epsilon: 0.3 })
        .build()
        .unwrap();
    let config = LearnerConfig::new(env, agent).unwrap();
    let structure = config.structure().clone();
    let mut learner = Learner::new(&config, 1, 0, 0);
    for _ in 0..200 {
        learner.trial(30);
    }
    // Every outcome the learner saw means what the truth says it means.
    let truth = config.task().truth().unwrap().model();
    let shape = structure.shape();
    for row in 0..shape.rows() {
        let (s, a) = (row / shape.actions, row % shape.actions);
        if let Some(counts) = learner.ledger().own().row(row) {
            for (o, &n) in counts.iter().enumerate() {
                if n > 0.0 {
                    let t = truth.transitions(row).find(|t| t.outcome == o).unwrap();
                    let k = structure.known(s, a, o);
                    assert_eq!(
                        (k.next, k.reward, k.terminal),
                        (t.next, t.reward, t.terminal)
                    );
                }
            }
        }
    }
    let second_ways: f64 = (0..shape.rows())
        .filter_map(|row| learner.ledger().own().row(row))
        .map(|c| c[shape.states..].iter().sum::<f64>())
        .sum();
    assert!(
        second_ways > 0.0,
        "an ε-greedy walker reaches the start cell both ways"
    );
}
