//! Value iteration and policy evaluation against independent computations:
//! MDPs solved by hand, and policy iteration with exact linear solves on
//! random MDPs.

mod common;

use common::linear_solve;
use parbayes::env::{Environment, GridWorld, Layout};
use parbayes::model::{Mdp, Shape, Transition, ValueIteration, evaluate_policy, solve};
use proptest::prelude::*;

fn t(next: usize, prob: f64, reward: f64, terminal: bool) -> Transition {
    Transition {
        outcome: next,
        next,
        prob,
        reward,
        terminal,
    }
}

/// `V^π` exactly: `(I − γ P_π) V = r_π`.
fn exact_values(mdp: &Mdp, gamma: f64, policy: &[usize]) -> Vec<f64> {
    let shape = mdp.shape();
    let n = shape.states;
    let mut a = vec![vec![0.0; n]; n];
    let mut b = vec![0.0; n];
    for s in 0..n {
        a[s][s] += 1.0;
        for tr in mdp.transitions(shape.row(s, policy[s])) {
            b[s] += tr.prob * tr.reward;
            if !tr.terminal {
                a[s][tr.next] -= gamma * tr.prob;
            }
        }
    }
    linear_solve(a, b)
}

/// Howard's policy iteration with exact evaluation.
fn policy_iteration(mdp: &Mdp, gamma: f64) -> (Vec<usize>, Vec<f64>) {
    let shape = mdp.shape();
    let mut policy = vec![0; shape.states];
    loop {
        let v = exact_values(mdp, gamma, &policy);
        let mut stable = true;
        #[allow(clippy::needless_range_loop)] // s indexes rows as well as the policy
        for s in 0..shape.states {
            let q = |a: usize| -> f64 {
                mdp.transitions(shape.row(s, a))
                    .map(|tr| {
                        tr.prob * (tr.reward + if tr.terminal { 0.0 } else { gamma * v[tr.next] })
                    })
                    .sum()
            };
            let best = (0..shape.actions)
                .max_by(|&x, &y| q(x).total_cmp(&q(y)))
                .unwrap();
            // Switch only for a real improvement, so ties cannot cycle.
            if q(best) > q(policy[s]) + 1e-12 {
                policy[s] = best;
                stable = false;
            }
        }
        if stable {
            return (policy, v);
        }
    }
}

#[test]
fn two_state_chain_by_hand() {
    // State 0: action 0 stays with reward 1; action 1 goes to 1 with reward 0.
    // State 1: the only action stays with reward 2 (action 1 copies it).
    // γ = 0.5: staying in 1 is worth 2 / (1 − 0.5) = 4; in 0, staying is
    // worth 1 / 0.5 = 2 and moving 0 + 0.5 · 4 = 2 — a tie; with reward 1.5
    // for staying the stay is worth 3 > 2.
    let shape = Shape {
        states: 2,
        actions: 2,
        outcomes: 2,
    };
    let rows = vec![
        vec![t(0, 1.0, 1.5, false)],
        vec![t(1, 1.0, 0.0, false)],
        vec![t(1, 1.0, 2.0, false)],
        vec![t(1, 1.0, 2.0, false)],
    ];
    let mdp = Mdp::new(shape, vec![1.0, 0.0], &rows).unwrap();
    let s = solve(&mdp, 0.5);
    assert!((s.values[0] - 3.0).abs() < 1e-10, "{:?}", s.values);
    assert!((s.values[1] - 4.0).abs() < 1e-10);
    assert_eq!(s.policy[0], 0);
    assert!((s.v_start - 3.0).abs() < 1e-10);
}

#[test]
fn terminal_transitions_do_not_bootstrap() {
    // From 0: w.p. 0.5 reward 1 and the episode ends (landing in 1, whose
    // value is 100 but must not count), w.p. 0.5 stay with reward 0.
    // V(0) = 0.5 · 1 + 0.5 · γ V(0)  ⇒  V(0) = 0.5 / (1 − 0.5 γ).
    let shape = Shape {
        states: 2,
        actions: 1,
        outcomes: 2,
    };
    let rows = vec![
        vec![t(1, 0.5, 1.0, true), t(0, 0.5, 0.0, false)],
        vec![t(1, 1.0, 10.0, false)],
    ];
    let mdp = Mdp::new(shape, vec![1.0, 0.0], &rows).unwrap();
    let gamma = 0.9;
    let s = solve(&mdp, gamma);
    assert!((s.values[0] - 0.5 / (1.0 - 0.5 * gamma)).abs() < 1e-10);
    assert!((s.values[1] - 100.0).abs() < 1e-9);
    let v = evaluate_policy(&mdp, gamma, &[0, 0], 1e-12);
    assert!((v[0] - s.values[0]).abs() < 1e-10);
}

#[test]
fn gamma_zero_is_one_sweep_of_expected_rewards() {
    let g = GridWorld::new(Layout::default(), 0.6, vec![], 0.9).unwrap();
    let mdp = Environment::GridWorld(g).true_model();
    let mut vi = ValueIteration::new(&mdp);
    let c = vi.solve(&mdp, 0.0, 0.0);
    assert_eq!(c.iterations, 1);
    // Corner (0, 0) = 0, up: off the grid w.p. 0.6 + 0.2 (left) → −0.8.
    assert!((vi.q_of(0)[0] + 0.8).abs() < 1e-15);
}

/// A random MDP: every row reaches `fanout` random next states.
fn random_mdp(states: usize, actions: usize, fanout: usize, seed: &[f64]) -> Mdp {
    let shape = Shape {
        states,
        actions,
        outcomes: states,
    };
    let mut k = 0;
    let mut next_u = || {
        k += 1;
        seed[k % seed.len()].fract().abs()
    };
    let mut rows = Vec::new();
    for _ in 0..shape.rows() {
        let mut row: Vec<Transition> = Vec::new();
        for _ in 0..fanout {
            let next = ((next_u() * states as f64) as usize).min(states - 1);
            let w = 0.05 + next_u();
            let reward = next_u() * 4.0 - 2.0;
            match row.iter_mut().find(|x| x.next == next) {
                Some(x) => x.prob += w,
                None => row.push(t(next, w, reward, next_u() < 0.05)),
            }
        }
        let total: f64 = row.iter().map(|x| x.prob).sum();
        for x in &mut row {
            x.prob /= total;
        }
        rows.push(row);
    }
    let start = vec![1.0 / states as f64; states];
    Mdp::new(shape, start, &rows).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn value_iteration_matches_policy_iteration(
        states in 2usize..25,
        actions in 1usize..5,
        fanout in 1usize..6,
        gamma in 0.0f64..0.97,
        seed in proptest::collection::vec(0.0f64..1.0, 17..40),
    ) {
        let mdp = random_mdp(states, actions, fanout, &seed);
        let s = solve(&mdp, gamma);
        let (_, v_pi) = policy_iteration(&mdp, gamma);
        for (a, b) in s.values.iter().zip(&v_pi) {
            prop_assert!((a - b).abs() <= 1e-9, "{a} vs {b}");
        }
        // The greedy policy of value iteration is optimal too.
        let v_greedy = exact_values(&mdp, gamma, &s.policy);
        for (a, b) in v_greedy.iter().zip(&v_pi) {
            prop_assert!((a - b).abs() <= 1e-9);
        }
        // Iterative policy evaluation agrees with the linear solve.
        let v_eval = evaluate_policy(&mdp, gamma, &s.policy, 1e-12);
        for (a, b) in v_eval.iter().zip(&v_greedy) {
            prop_assert!((a - b).abs() <= 1e-10);
        }
        prop_assert!((s.v_start - mdp.start_value(&v_pi)).abs() <= 1e-9);
    }

    #[test]
    fn warm_starts_reach_the_same_fixed_point(
        gamma in 0.5f64..0.95,
        seed in proptest::collection::vec(0.0f64..1.0, 17..40),
    ) {
        let first = random_mdp(12, 3, 4, &seed);
        let mut shifted = seed.clone();
        shifted.rotate_left(3);
        let second = random_mdp(12, 3, 4, &shifted);
        let mut vi = ValueIteration::new(&first);
        vi.solve(&first, gamma, 1e-11);
        vi.solve(&second, gamma, 1e-11);
        let cold = solve(&second, gamma);
        for (a, b) in vi.values().iter().zip(&cold.values) {
            prop_assert!((a - b).abs() <= 1e-9);
        }
    }
}
