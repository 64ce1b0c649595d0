//! The embedding API: an agent driven by hand decides exactly as the
//! simulated learner built on it; feedback may come late, out of order and
//! in batches; bad input is refused and changes nothing.

use parbayes::agent::{Agent, AgentConfig};
use parbayes::env::Task;
use parbayes::learner::{Learner, LearnerConfig};
use parbayes::model::Structure;
use parbayes::policy::Policy;
use parbayes::share::{Aggregator, OthersUpdate, RowBatch, ShareRule};
use parbayes::{Error, Overrides, ProtocolError, Scenario};

fn shipped(name: &str, policy: Policy) -> LearnerConfig {
    let overrides = Overrides {
        policy: Some(policy),
        ..Overrides::default()
    };
    Scenario::load(name.as_ref(), &overrides)
        .unwrap()
        .learner()
        .with_share(ShareRule::Always)
        .unwrap()
}

/// Runs a simulated learner and an agent fed the same task by hand, trial
/// by trial, and asserts they hold the same evidence and send the same
/// messages after every trial: one different decision would show at once.
fn same_decisions(config: &LearnerConfig, trials: u64, steps: u64) {
    let (seed, id) = (11, 3);
    let mut learner = Learner::new(config, seed, 0, id);
    let mut agent = Agent::new(config.structure(), config.agent(), id, seed).unwrap();
    let mut task = config.task().clone();
    // A learner draws its first start state when it is built.
    let mut state = task.start_state(agent.rng_mut());
    let mut taken = 0u64;
    for trial in 0..trials {
        let from_learner = learner.trial(steps);

        state = task.start_state(agent.rng_mut());
        agent.start_episode();
        for _ in 0..steps {
            task.advance_to(taken);
            let action = agent.decide(state).unwrap();
            let step = task.step(state, action, agent.rng_mut());
            agent.observe(state, action, step.outcome).unwrap();
            taken += 1;
            state = if step.terminal {
                task.start_state(agent.rng_mut())
            } else {
                step.next
            };
        }
        let from_agent = agent.share();

        assert_eq!(from_agent, from_learner, "trial {trial}");
        assert_eq!(
            agent.ledger().own(),
            learner.ledger().own(),
            "trial {trial}"
        );
    }
    let _ = state;
}

#[test]
fn an_agent_fed_by_hand_decides_exactly_as_the_simulated_learner() {
    same_decisions(&shipped("bandit-news", Policy::PosteriorSampling), 3000, 1);
    same_decisions(&shipped("bandit-news", Policy::BayesUcb), 2000, 1);
    same_decisions(
        &shipped("bandit-news", Policy::EpsilonGreedy { epsilon: 0.1 }),
        2000,
        1,
    );
    // Planning on the GridWorld: a posterior draw, or the mean, solved per trial.
    same_decisions(&shipped("gridworld", Policy::PosteriorSampling), 60, 10);
    same_decisions(
        &shipped("gridworld", Policy::EpsilonGreedy { epsilon: 0.15 }),
        60,
        10,
    );
    same_decisions(
        &shipped("gridworld", Policy::Softmax { temperature: 1.0 }),
        60,
        10,
    );
}

#[test]
fn late_reordered_and_batched_feedback_gives_the_same_posterior() {
    let news = Structure::bandit(5).unwrap();
    let config = AgentConfig::builder()
        .share(ShareRule::Never)
        .build()
        .unwrap();
    let mut prompt = Agent::new(&news, &config, 0, 1).unwrap();
    let mut late = Agent::new(&news, &config, 0, 1).unwrap();
    // Impressions now, clicks known later: the late agent hears of them in
    // reverse order, in one batch, after deciding on many more.
    let mut log = Vec::new();
    for t in 0..500 {
        let arm = prompt.decide(0).unwrap();
        let clicked = (t * 7 + arm).is_multiple_of(5);
        prompt.observe_click(arm, clicked).unwrap();
        log.push((arm, clicked));
        late.decide(0).unwrap();
    }
    for &(arm, clicked) in log.iter().rev() {
        late.observe_click(arm, clicked).unwrap();
    }
    let (mut a, mut b) = ([0.0; 2], [0.0; 2]);
    for arm in 0..5 {
        prompt.posterior_mean_into(0, arm, &mut a).unwrap();
        late.posterior_mean_into(0, arm, &mut b).unwrap();
        assert_eq!(a, b, "arm {arm}");
    }
    assert_eq!(prompt.ledger().own(), late.ledger().own());
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let news = Structure::bandit(3).unwrap();
    let config = AgentConfig::builder()
        .share(ShareRule::Always)
        .build()
        .unwrap();
    let mut agent = Agent::new(&news, &config, 4, 1).unwrap();
    agent.observe_click(1, true).unwrap();
    let before = format!("{:?}", agent.ledger());
    let out_of_range = [
        agent.decide(1).unwrap_err(),
        agent.observe(0, 3, 0).unwrap_err(),
        agent.observe(0, 0, 2).unwrap_err(),
        agent.observe(2, 0, 0).unwrap_err(),
    ];
    for e in out_of_range {
        assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
    }
    let mut rows = RowBatch::new(2);
    rows.push(0, &[1.0, 2.0]);
    let update = |learner, rows: &RowBatch| OthersUpdate {
        learner,
        stamp: 1,
        rows: rows.clone(),
    };
    let e = agent.absorb(&update(5, &rows)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Protocol(ProtocolError::Misrouted {
                meant_for: 5,
                delivered_to: 4
            })
        ),
        "{e}"
    );
    let mut negative = RowBatch::new(2);
    negative.push(0, &[-1.0, 2.0]);
    let mut nan = RowBatch::new(2);
    nan.push(1, &[f64::NAN, 2.0]);
    let mut missing_row = RowBatch::new(2);
    missing_row.push(3, &[1.0, 2.0]);
    let mut three = RowBatch::new(3);
    three.push(0, &[1.0, 2.0, 3.0]);
    for bad in [negative, nan, missing_row, three] {
        let e = agent.absorb(&update(4, &bad)).unwrap_err();
        assert!(
            matches!(e, Error::Protocol(ProtocolError::Malformed { .. })),
            "{e}"
        );
    }
    assert_eq!(format!("{:?}", agent.ledger()), before);
    // A configuration that cannot act on the structure is refused up front.
    let grid = Scenario::load("gridworld".as_ref(), &Overrides::default()).unwrap();
    let ucb = AgentConfig::builder()
        .policy(Policy::BayesUcb)
        .build()
        .unwrap();
    assert!(Agent::new(grid.learner().structure(), &ucb, 0, 1).is_err());
}

#[test]
fn agents_that_join_late_or_leave_keep_the_global_estimate_exact() {
    let news = Structure::bandit(4).unwrap();
    let config = AgentConfig::builder()
        .share(ShareRule::Always)
        .build()
        .unwrap();
    let mut agg = Aggregator::new(news.shape(), 0);
    let mut agents: Vec<Agent> = (0..3)
        .map(|_| Agent::new(&news, &config, agg.join(), 9).unwrap())
        .collect();
    let rounds = |agents: &mut Vec<Agent>, agg: &mut Aggregator, n: usize| {
        for t in 0..n {
            for a in agents.iter_mut() {
                let arm = a.decide(0).unwrap();
                a.observe_click(arm, (t + arm) % 3 == 0).unwrap();
                if let Some(m) = a.share() {
                    agg.receive(&m).unwrap();
                }
            }
            for a in agents.iter_mut() {
                if let Some(u) = agg.answer(a.id()).unwrap() {
                    a.absorb(&u).unwrap();
                }
            }
        }
    };
    rounds(&mut agents, &mut agg, 50);
    // One leaves; a newcomer joins and hears everything shared so far.
    let gone = agents.remove(1);
    agg.leave(gone.id()).unwrap();
    agents.push(Agent::new(&news, &config, agg.join(), 9).unwrap());
    rounds(&mut agents, &mut agg, 50);
    // With `always`, every member holds exactly the sum of every agent's
    // own counts, the departed one's included.
    let mut everyone: Vec<&Agent> = agents.iter().collect();
    everyone.push(&gone);
    for a in &agents {
        for arm in 0..4 {
            let mut alpha = [0.0; 2];
            a.ledger().combined_alpha_into(arm, &mut alpha);
            let mut sum = [1.0; 2];
            for b in &everyone {
                if let Some(c) = b.ledger().own().row(arm) {
                    sum[0] += c[0];
                    sum[1] += c[1];
                }
            }
            assert_eq!(alpha, sum, "agent {} arm {arm}", a.id());
        }
    }
    assert_eq!(agg.members().collect::<Vec<_>>(), vec![0, 2, 3]);
}

#[test]
fn a_restarted_agent_recovers_what_it_shared_and_goes_on_sharing() {
    let news = Structure::bandit(3).unwrap();
    let config = AgentConfig::builder()
        .share(ShareRule::Always)
        .build()
        .unwrap();
    let mut agg = Aggregator::new(news.shape(), 0);
    let mut agent = Agent::new(&news, &config, agg.join(), 5).unwrap();
    let mut other = Agent::new(&news, &config, agg.join(), 6).unwrap();
    for t in 0u32..40 {
        for a in [&mut agent, &mut other] {
            let arm = a.decide(0).unwrap();
            a.observe_click(arm, t.is_multiple_of(4)).unwrap();
            agg.receive(&a.share().unwrap()).unwrap();
        }
    }
    let shared = agent.ledger().own().clone();
    // The process restarts: a fresh agent under the same id.
    let mut restarted = Agent::new(&news, &config, agent.id(), 7).unwrap();
    let record = agg.recovery(agent.id()).unwrap();
    assert!(matches!(
        other.recover(&record),
        Err(Error::Protocol(ProtocolError::Misrouted { .. }))
    ));
    restarted.recover(&record).unwrap();
    assert_eq!(restarted.ledger().own(), &shared);
    assert_eq!(
        restarted.ledger().others(),
        agg.contribution(other.id()).unwrap()
    );
    // Its next message is not taken for a stale one.
    restarted.observe_click(0, true).unwrap();
    agg.receive(&restarted.share().unwrap()).unwrap();
    assert_eq!(
        agg.contribution(agent.id()).unwrap().row(0).unwrap()[1],
        shared.row(0).map_or(0.0, |c| c[1]) + 1.0
    );
}

#[test]
fn an_agent_plans_on_a_structure_the_application_describes() {
    use parbayes::model::Known;
    use rand::{RngExt, SeedableRng};
    // State 0 pays 0.1 for waiting; trying to move (action 1) succeeds with
    // probability 0.8. State 1 pays 1 and keeps you with probability 0.9.
    // The agent knows what each outcome means, not the probabilities.
    let structure = Structure::new(2, 2, 2, 0.9, |s, a, o| match (s, a, o) {
        (0, 0, _) => Known {
            next: 0,
            reward: 0.1,
            terminal: false,
        },
        (0, _, o) => Known {
            next: o,
            reward: 0.0,
            terminal: false,
        },
        (_, _, 0) => Known {
            next: 1,
            reward: 1.0,
            terminal: false,
        },
        _ => Known {
            next: 0,
            reward: 0.0,
            terminal: false,
        },
    })
    .unwrap();
    let config = AgentConfig::builder()
        .share(ShareRule::Never)
        .build()
        .unwrap();
    let mut agent = Agent::new(&structure, &config, 0, 3).unwrap();
    let mut world = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
    let (mut state, mut in_good) = (0, 0);
    for step in 0..2000 {
        if step % 20 == 0 {
            agent.start_episode();
        }
        let action = agent.decide(state).unwrap();
        let outcome = match (state, action) {
            (0, 0) => 0,
            (0, _) => usize::from(world.random::<f64>() < 0.8),
            _ => usize::from(world.random::<f64>() >= 0.9),
        };
        agent.observe(state, action, outcome).unwrap();
        state = structure.known(state, action, outcome).next;
        if step >= 1800 {
            in_good += usize::from(state == 1);
        }
    }
    // The optimal policy spends 8/9 of its steps in state 1 (it
    // falls back a tenth of the time and climbs out with 0.8); waiting
    // forever would spend none.
    assert!(in_good > 140, "{in_good} of 200 steps in the paying state");
}

/// Drives `agent` on its task for `steps` steps from `state`, returning the
/// decisions it made and the message it then shares.
fn drive(
    agent: &mut Agent,
    task: &mut parbayes::env::Environment,
    mut state: usize,
    steps: u64,
) -> (Vec<usize>, Option<parbayes::share::ShareMessage>) {
    let mut actions = Vec::new();
    agent.start_episode();
    for _ in 0..steps {
        let action = agent.decide(state).unwrap();
        let step = task.step(state, action, agent.rng_mut());
        agent.observe(state, action, step.outcome).unwrap();
        actions.push(action);
        state = if step.terminal {
            task.start_state(agent.rng_mut())
        } else {
            step.next
        };
    }
    (actions, agent.share())
}

#[test]
fn a_saved_agent_restored_from_json_or_messagepack_continues_exactly() {
    // A bandit agent and a planning one (the GridWorld, γ = 0.9).
    for (name, steps) in [("bandit-news", 500), ("gridworld", 200)] {
        let config = shipped(name, Policy::PosteriorSampling);
        let mut task = config.task().clone();
        let mut agent = Agent::new(config.structure(), config.agent(), 2, 9).unwrap();
        let start = task.start_state(agent.rng_mut());
        drive(&mut agent, &mut task, start, steps);

        let json = serde_json::to_string(&agent.save()).unwrap();
        let packed = rmp_serde::to_vec(&agent.save()).unwrap();
        for state in [
            serde_json::from_str(&json).unwrap(),
            rmp_serde::from_slice(&packed).unwrap(),
        ] {
            let mut copy = Agent::restore(config.structure(), config.agent(), state).unwrap();
            let (mut a, mut b) = (agent.clone(), task.clone());
            let mut task_copy = task.clone();
            assert_eq!(
                drive(&mut copy, &mut task_copy, start, steps),
                drive(&mut a, &mut b, start, steps),
                "{name}"
            );
            assert_eq!(copy.ledger().own(), a.ledger().own(), "{name}");
        }
    }
}

#[test]
fn a_state_that_does_not_fit_is_refused() {
    let news = shipped("bandit-news", Policy::PosteriorSampling);
    let mut agent = Agent::new(news.structure(), news.agent(), 0, 1).unwrap();
    agent.observe_click(0, true).unwrap();
    let saved = agent.save();

    // Another task's shape.
    let other = Structure::bandit(3).unwrap();
    let err = Agent::restore(&other, news.agent(), saved.clone()).unwrap_err();
    assert!(err.to_string().contains("rows"), "{err}");
    // Another prior.
    let prior = AgentConfig::builder().prior(2.0).build().unwrap();
    let err = Agent::restore(news.structure(), &prior, saved.clone()).unwrap_err();
    assert!(err.to_string().contains("prior"), "{err}");
    // A negative count, edited into the file.
    let json = serde_json::to_string(&saved).unwrap();
    let edited = json.replacen("\"counts\":[0.0,1.0]", "\"counts\":[0.0,-1.0]", 1);
    assert_ne!(edited, json, "the edit must change the file: {json}");
    let state = serde_json::from_str(&edited).unwrap();
    let err = Agent::restore(news.structure(), news.agent(), state).unwrap_err();
    assert!(err.to_string().contains("≥ 0"), "{err}");
    // A plan for an agent that does not plan (the GridWorld's, pasted in).
    let grid = shipped("gridworld", Policy::PosteriorSampling);
    let planned = Agent::new(grid.structure(), grid.agent(), 0, 1)
        .unwrap()
        .save();
    let plan = serde_json::to_value(&planned).unwrap()["plan"].clone();
    assert!(!plan.is_null());
    let mut value = serde_json::to_value(&saved).unwrap();
    value["plan"] = plan;
    let state = serde_json::from_value(value).unwrap();
    let err = Agent::restore(news.structure(), news.agent(), state).unwrap_err();
    assert!(err.to_string().contains("plan"), "{err}");
    // The GridWorld's own state fits it.
    assert!(Agent::restore(grid.structure(), grid.agent(), planned).is_ok());
}

/// Arms retire, come back and are added while the agent runs; a retired
/// arm is never chosen, still learns, and its mark survives a save; a
/// planning agent refuses both arm changes and propensities.
#[test]
fn arms_retire_return_and_grow() {
    let news = Structure::bandit(3).unwrap();
    for policy in [
        "posterior-sampling",
        "epsilon-greedy:0.5",
        "softmax:0.1",
        "ucb",
    ] {
        let config = AgentConfig::builder()
            .policy(policy.parse().unwrap())
            .build()
            .unwrap();
        let mut agent = Agent::new(&news, &config, 0, 5).unwrap();
        agent.retire(2).unwrap();
        for _ in 0..2000 {
            let arm = agent.decide(0).unwrap();
            assert_ne!(arm, 2, "{policy}");
            agent.observe_click(2, true).unwrap();
            let choice = agent.decide_with_propensity(0).unwrap();
            assert!(choice.arm != 2 && choice.propensity > 0.0);
        }
        let mut mean = [0.0; 2];
        agent.posterior_mean_into(0, 2, &mut mean).unwrap();
        assert!(mean[1] > 0.99, "a retired arm still learns");
        let mut copy = Agent::restore(&news, &config, agent.save()).unwrap();
        assert!(copy.is_retired(2));
        for _ in 0..200 {
            assert_eq!(copy.decide(0).unwrap(), agent.decide(0).unwrap());
        }
        agent.retire(0).unwrap();
        assert!(agent.retire(1).is_err(), "the last arm in play stays");
        agent.reinstate(2).unwrap();
        assert!(!agent.is_retired(2));
    }

    // A new arm: the structure grows, and a saved state restores with it.
    let config = AgentConfig::default();
    let mut agent = Agent::new(&news, &config, 0, 5).unwrap();
    assert_eq!(agent.add_arm().unwrap(), 3);
    assert_eq!(agent.shape().actions, 4);
    agent.observe_click(3, true).unwrap();
    let grown = agent.structure().clone();
    assert!(Agent::restore(&news, &config, agent.save()).is_err());
    let mut copy = Agent::restore(&grown, &config, agent.save()).unwrap();
    for _ in 0..100 {
        assert_eq!(copy.decide(0).unwrap(), agent.decide(0).unwrap());
    }

    // An MDP agent plans: its choices are not a state's alone.
    let config = shipped("gridworld", Policy::PosteriorSampling);
    let mut planner = Agent::new(config.structure(), config.agent(), 0, 1).unwrap();
    for e in [
        planner.retire(1).unwrap_err(),
        planner.decide_with_propensity(0).unwrap_err(),
        planner.add_arm().unwrap_err(),
    ] {
        assert!(e.is_bad_input(), "{e}");
    }
}
