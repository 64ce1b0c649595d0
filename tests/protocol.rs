//! The sharing protocol against brute force: what each learner believes
//! against the plain sum of every learner's own counts.

use parbayes::ProtocolError;
use parbayes::agent::AgentConfig;
use parbayes::env::{BernoulliBandit, Environment};
use parbayes::learner::{Learner, LearnerConfig};
use parbayes::model::Evidence;
use parbayes::policy::Policy;
use parbayes::share::{Aggregator, Ledger, Schedule, ShareMessage, ShareRule};
use proptest::prelude::*;

fn config(share: ShareRule, forgetting: f64) -> LearnerConfig {
    let arms = vec![0.1, 0.3, 0.5, 0.2, 0.45];
    let agent = AgentConfig::builder()
        .policy(Policy::PosteriorSampling)
        .share(share)
        .forgetting(forgetting)
        .build()
        .unwrap();
    LearnerConfig::new(
        Environment::Bandit(BernoulliBandit::new(arms, vec![]).unwrap()),
        agent,
    )
    .unwrap()
}

/// Runs `trials` lockstep trials of the core (no actors) on the protocol's
/// schedule, answering after every trial, and calls `check` after each
/// trial's answers have been applied.
fn lockstep(
    config: &LearnerConfig,
    n: u32,
    trials: u64,
    steps: u64,
    mut check: impl FnMut(&[Learner], &Aggregator),
) -> Vec<ShareMessage> {
    let mut learners: Vec<Learner> = (0..n).map(|i| Learner::new(config, 7, 0, i)).collect();
    let mut agg = Aggregator::new(config.structure().shape(), n as usize)
        .with_downlink(config.agent().downlink())
        .with_prior(config.agent().prior());
    let mut log = Vec::new();
    let mut schedule = Schedule::new(steps, steps, config.agent().forgetting());
    for _ in 0..trials {
        let shares: Vec<ShareMessage> =
            learners.iter_mut().filter_map(|l| l.trial(steps)).collect();
        let due = schedule.after_trial(!shares.is_empty(), true).unwrap();
        assert!(due.answer, "answers every `steps` steps: every trial");
        agg.decay(due.decay);
        for m in shares {
            agg.receive(&m).unwrap();
            log.push(m);
        }
        for u in agg.answer_all() {
            learners[u.learner as usize].absorb(&u);
        }
        check(&learners, &agg);
    }
    log
}

fn combined(l: &Learner, row: usize) -> [f64; 2] {
    let mut a = [0.0; 2];
    l.ledger().combined_alpha_into(row, &mut a);
    [a[0] - 1.0, a[1] - 1.0]
}

/// A row's two counts, zeros if it was never touched.
fn counts(e: &Evidence, row: usize) -> [f64; 2] {
    e.row(row).map_or([0.0; 2], |c| [c[0], c[1]])
}

/// The brute-force sum over learners of one of their ledgers' stores.
fn sum_over(learners: &[Learner], row: usize, store: fn(&Ledger) -> &Evidence) -> [f64; 2] {
    learners.iter().fold([0.0; 2], |s, l| {
        let c = counts(store(l.ledger()), row);
        [s[0] + c[0], s[1] + c[1]]
    })
}

fn brute_force_sum(learners: &[Learner], row: usize) -> [f64; 2] {
    sum_over(learners, row, Ledger::own)
}

#[test]
fn always_gives_every_learner_the_pooled_evidence_after_every_trial() {
    let mut checked = 0;
    lockstep(
        &config(ShareRule::Always, 1.0),
        6,
        300,
        3,
        |learners, agg| {
            for row in 0..5 {
                let pooled = brute_force_sum(learners, row);
                for l in learners {
                    assert_eq!(combined(l, row), pooled, "learner {} row {row}", l.id());
                }
                assert_eq!(counts(agg.global(), row), pooled);
                checked += 1;
            }
        },
    );
    assert_eq!(checked, 300 * 5);
}

#[test]
fn always_with_forgetting_tracks_the_pooled_evidence_to_rounding() {
    lockstep(
        &config(ShareRule::Always, 0.99),
        4,
        200,
        2,
        |learners, _| {
            for row in 0..5 {
                let pooled = brute_force_sum(learners, row);
                for l in learners {
                    let c = combined(l, row);
                    for k in 0..2 {
                        assert!(
                            (c[k] - pooled[k]).abs() <= 1e-12 * pooled[k].max(1.0),
                            "{c:?} vs {pooled:?}"
                        );
                    }
                }
            }
        },
    );
}

#[test]
fn never_leaves_each_learner_with_its_own_evidence() {
    let log = lockstep(
        &config(ShareRule::Never, 1.0),
        5,
        200,
        2,
        |learners, agg| {
            assert_eq!(agg.global().stored_rows(), 0);
            for l in learners {
                for row in 0..5 {
                    assert_eq!(combined(l, row), counts(l.ledger().own(), row));
                }
            }
        },
    );
    assert!(log.is_empty());
}

#[test]
fn row_by_row_rules_keep_global_equal_to_the_sum_of_what_was_last_sent() {
    for rule in [ShareRule::Kl(0.005), ShareRule::Doubling(1.0)] {
        sent_sum_invariant(rule);
    }
}

/// After every trial under `rule`, the global estimate is the sum of what
/// each learner last sent, and each learner's picture of it is exact.
fn sent_sum_invariant(rule: ShareRule) {
    lockstep(&config(rule, 1.0), 5, 400, 1, |learners, agg| {
        for row in 0..5 {
            assert_eq!(
                counts(agg.global(), row),
                sum_over(learners, row, Ledger::sent)
            );
            // Each learner's picture of the global estimate is exact too:
            // what it sent plus what it was told of the others.
            for l in learners {
                let mut picture = [0.0; 2];
                l.ledger().global_alpha_into(row, &mut picture);
                let told = counts(l.ledger().sent(), row);
                let others = counts(l.ledger().others(), row);
                assert_eq!(
                    picture,
                    [1.0 + told[0] + others[0], 1.0 + told[1] + others[1]]
                );
            }
        }
    });
}

#[test]
fn the_doubling_downlink_keeps_each_learner_within_half_of_the_others_evidence() {
    let (mut answers, mut rows_down) = (0, 0);
    let log = lockstep(
        &config(ShareRule::Doubling(1.0), 1.0),
        8,
        2000,
        1,
        |learners, agg| {
            for l in learners {
                let contrib = agg.contribution(l.id()).unwrap();
                for row in 0..5 {
                    let g = counts(agg.global(), row);
                    let mine = counts(contrib, row);
                    let truth = [g[0] - mine[0], g[1] - mine[1]];
                    let told = counts(l.ledger().others(), row);
                    // Never more than there is, never less than half of it.
                    assert!(told[0] <= truth[0] && told[1] <= truth[1]);
                    let (t, k) = (truth[0] + truth[1], told[0] + told[1]);
                    assert!(t - k < k.max(1.0), "told {k} of {t}");
                }
            }
            answers += 1;
            rows_down = agg.traffic().rows_down;
        },
    );
    assert_eq!(answers, 2000);
    // Each of 8 learners is told each of 5 arms O(log n) times (n ≤ 14,000
    // others' pulls: at most 15 times), where an ungated downlink sends a
    // row whenever another learner sent it.
    assert!(rows_down <= 8 * 5 * 15, "{rows_down} rows down");
    let up: usize = log.iter().map(|m| m.rows.len()).sum();
    assert!(up <= 8 * 5 * 12, "{up} rows up");
}

fn global_of(messages: &[ShareMessage], n: usize) -> Evidence {
    let mut agg = Aggregator::new(config(ShareRule::Always, 1.0).structure().shape(), n);
    for m in messages {
        // A duplicate, or a message overtaken by a newer one, is refused as
        // stale; nothing else may be refused.
        match agg.receive(m) {
            Ok(()) | Err(ProtocolError::Stale { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    agg.global().clone()
}

fn as_sorted(e: &Evidence) -> Vec<(usize, Vec<f64>)> {
    let mut rows: Vec<_> = e.iter().map(|(r, c)| (r, c.to_vec())).collect();
    rows.sort_by_key(|r| r.0);
    rows
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any order, with any duplicates, gives the global estimate of the
    /// in-order stream: the sum of each learner's latest counts.
    #[test]
    fn duplicated_and_reordered_messages_leave_the_global_estimate_unchanged(
        order in Just((0..60usize).collect::<Vec<_>>()).prop_shuffle(),
        dups in prop::collection::vec(0usize..60, 0..30),
        rule in prop_oneof![Just(ShareRule::Always), Just(ShareRule::Kl(0.01)), Just(ShareRule::Periodic(3)), Just(ShareRule::Doubling(1.0))],
    ) {
        let log = lockstep(&config(rule, 1.0), 4, 40, 2, |_, _| {});
        let in_order = global_of(&log, 4);
        let mut scrambled: Vec<ShareMessage> = order.iter().filter_map(|&i| log.get(i).cloned()).collect();
        scrambled.extend(log.iter().skip(60).cloned());
        for d in dups {
            if let Some(m) = log.get(d % log.len().max(1)) {
                scrambled.insert(d % (scrambled.len() + 1), m.clone());
            }
        }
        prop_assert_eq!(as_sorted(&global_of(&scrambled, 4)), as_sorted(&in_order));
    }
}

#[test]
fn doubling_holds_back_less_than_it_sent_and_a_flush_gives_the_pooled_sum() {
    // Doubling holds back less than it has sent of each row; a flush at the
    // end sends the rest, and the global estimate is then exactly the sum
    // of every learner's own counts.
    let config = config(ShareRule::Doubling(1.0), 1.0);
    let mut learners: Vec<Learner> = (0..4).map(|i| Learner::new(&config, 7, 0, i)).collect();
    let mut agg = Aggregator::new(config.structure().shape(), 4);
    let mut rows_sent = 0;
    let total = |e: &Evidence, row| counts(e, row).iter().sum::<f64>();
    for _ in 0..3000 {
        for l in &mut learners {
            if let Some(m) = l.trial(1) {
                rows_sent += m.rows.len();
                agg.receive(&m).unwrap();
            }
            // What a learner holds back is bounded by what it has sent.
            for row in 0..5 {
                let (own, sent) = (total(l.ledger().own(), row), total(l.ledger().sent(), row));
                assert!(own - sent < sent.max(1.0), "{own} own, {sent} sent");
            }
        }
        for u in agg.answer_all() {
            learners[u.learner as usize].absorb(&u);
        }
    }
    // O(log T) rows per arm: at most 13 sends of each of 5 arms per learner
    // in 3000 pulls, where `always` would send 3000 rows.
    assert!(rows_sent <= 4 * 5 * 13, "{rows_sent} rows sent");
    for l in &mut learners {
        if let Some(m) = l.flush() {
            agg.receive(&m).unwrap();
        }
    }
    for row in 0..5 {
        assert_eq!(counts(agg.global(), row), brute_force_sum(&learners, row));
    }
}

#[test]
fn an_aggregator_restored_from_an_older_snapshot_is_whole_again_once_every_learner_resends() {
    let shape = parbayes::model::Shape {
        states: 1,
        actions: 5,
        outcomes: 2,
    };
    let mut ledgers: Vec<Ledger> = (0..5).map(|i| Ledger::new(i, shape, 1.0)).collect();
    let mut live = Aggregator::new(shape, 5);
    let mut snapshot = None;
    for t in 0..300u64 {
        for (i, l) in ledgers.iter_mut().enumerate() {
            let row = ((t * 7 + i as u64 * 3) % 5) as usize;
            l.observe(row, (t * 13 + i as u64).is_multiple_of(3) as usize);
            if let Some(m) = l.check(ShareRule::Doubling(0.5)) {
                live.receive(&m).unwrap();
            }
        }
        if t == 150 {
            snapshot = Some(live.clone());
        }
    }
    let mut restored = snapshot.unwrap().restarted();
    assert_ne!(as_sorted(restored.global()), as_sorted(live.global()));
    for l in &mut ledgers {
        if let Some(m) = l.resend() {
            restored.receive(&m).unwrap();
        }
    }
    assert_eq!(as_sorted(restored.global()), as_sorted(live.global()));
    for row in 0..5 {
        assert_eq!(
            counts(restored.global(), row),
            sum_over_ledgers(&ledgers, row)
        );
    }
    // A second resend is a copy of what it already holds: nothing changes.
    for l in &mut ledgers {
        if let Some(m) = l.resend() {
            restored.receive(&m).unwrap();
        }
    }
    assert_eq!(as_sorted(restored.global()), as_sorted(live.global()));
}

fn sum_over_ledgers(ledgers: &[Ledger], row: usize) -> [f64; 2] {
    ledgers.iter().fold([0.0; 2], |[a, b], l| {
        let c = counts(l.sent(), row);
        [a + c[0], b + c[1]]
    })
}
