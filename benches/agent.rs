//! The embedding API's hot path: `decide` then `observe` on a 20-arm
//! bandit, as an application drives it, the share check of each rule, and
//! the aggregator's fold-and-answer under each downlink.
//! Fixed seeds; parameters in the BenchmarkId. Target: at least 1.5 M
//! decide + observe per second on one core.

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use parbayes::policy::Policy;
use parbayes::share::{Aggregator, Downlink, RowBatch, ShareMessage, ShareRule};
use parbayes::{Agent, AgentConfig, Structure};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// bandit-news's click rates.
const RATES: [f64; 20] = [
    0.010, 0.012, 0.015, 0.018, 0.020, 0.022, 0.025, 0.027, 0.030, 0.050, 0.032, 0.035, 0.028,
    0.024, 0.019, 0.016, 0.040, 0.045, 0.038, 0.033,
];

fn decide_observe(c: &mut Criterion) {
    let mut group = c.benchmark_group("agent");
    const STEPS: u64 = 10_000;
    group.throughput(Throughput::Elements(STEPS));
    let structure = Structure::bandit(RATES.len()).expect("20 arms");
    let cases = [
        (Policy::PosteriorSampling, ShareRule::Never),
        (Policy::PosteriorSampling, ShareRule::Periodic(100)),
        (Policy::EpsilonGreedy { epsilon: 0.1 }, ShareRule::Never),
    ];
    for (policy, share) in cases {
        let config = AgentConfig::builder()
            .policy(policy)
            .share(share)
            .build()
            .expect("valid settings");
        let id = BenchmarkId::new(
            "decide_observe",
            format!("arms=20/policy={policy}/share={share}/steps={STEPS}/seed=42"),
        );
        group.bench_function(id, |b| {
            b.iter_batched_ref(
                || {
                    let agent = Agent::new(&structure, &config, 0, 42).expect("fits");
                    (agent, Xoshiro256PlusPlus::seed_from_u64(7))
                },
                |(agent, clicks)| {
                    for _ in 0..STEPS {
                        let arm = agent.decide(0).expect("state 0 exists");
                        let clicked = clicks.random::<f64>() < RATES[arm];
                        agent.observe_click(arm, clicked).expect("arm exists");
                        if let Some(m) = agent.share() {
                            std::hint::black_box(m);
                        }
                    }
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// An observation and the share check after it, for each rule, on one
/// agent's own feedback stream (recorded once, so only the checks differ).
fn share_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("share_check");
    const STEPS: u64 = 10_000;
    group.throughput(Throughput::Elements(STEPS));
    let structure = Structure::bandit(RATES.len()).expect("20 arms");
    let rules = [
        ShareRule::Never,
        ShareRule::Always,
        ShareRule::Periodic(100),
        ShareRule::Ramp(100),
        ShareRule::Doubling(1.0),
        ShareRule::Doubling(0.1),
        ShareRule::Kl(0.00001),
        ShareRule::KlPosterior(0.1),
    ];
    for share in rules {
        let config = AgentConfig::builder()
            .share(share)
            .build()
            .expect("valid settings");
        // One agent's feedback stream, made once: the bench times the checks.
        let mut maker = Agent::new(&structure, &config, 0, 42).expect("fits");
        let mut clicks = Xoshiro256PlusPlus::seed_from_u64(7);
        let feedback: Vec<(usize, bool)> = (0..STEPS)
            .map(|_| {
                let arm = maker.decide(0).expect("state 0");
                (arm, clicks.random::<f64>() < RATES[arm])
            })
            .collect();
        let id = BenchmarkId::new(
            "observe_share",
            format!("arms=20/share={share}/steps={STEPS}/seed=42"),
        );
        group.bench_function(id, |b| {
            b.iter_batched_ref(
                || Agent::new(&structure, &config, 0, 42).expect("fits"),
                |agent| {
                    for &(arm, clicked) in &feedback {
                        agent.observe_click(arm, clicked).expect("arm exists");
                        if let Some(m) = agent.share() {
                            std::hint::black_box(m);
                        }
                    }
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// The aggregator's side per round: fold one message from each of 100
/// learners, then answer them all, with every changed row going down or only
/// the rows the doubling downlink finds news.
fn downlink(c: &mut Criterion) {
    let mut group = c.benchmark_group("downlink");
    const LEARNERS: u32 = 100;
    const ROUNDS: u64 = 200;
    group.throughput(Throughput::Elements(ROUNDS * u64::from(LEARNERS)));
    let structure = Structure::bandit(RATES.len()).expect("20 arms");
    // Learner i pulls arm (i + round) mod 20 and sends its full counts.
    let messages: Vec<Vec<ShareMessage>> = (0..ROUNDS)
        .map(|round| {
            (0..LEARNERS)
                .map(|i| {
                    let arm = (i as usize + round as usize) % RATES.len();
                    let mut rows = RowBatch::new(2);
                    let pulls = (round / RATES.len() as u64 + 1) as f64;
                    rows.push(arm, &[pulls, 0.0]);
                    ShareMessage {
                        learner: i,
                        seq: round + 1,
                        rows,
                    }
                })
                .collect()
        })
        .collect();
    for down in [
        Downlink::Every,
        Downlink::Doubling(0.1),
        Downlink::Doubling(1.0),
        Downlink::Kl(0.001),
    ] {
        let id = BenchmarkId::new(
            "receive_answer_all",
            format!("arms=20/learners={LEARNERS}/rounds={ROUNDS}/downlink={down}"),
        );
        group.bench_function(id, |b| {
            b.iter_batched_ref(
                || Aggregator::new(structure.shape(), LEARNERS as usize).with_downlink(down),
                |agg| {
                    for round in &messages {
                        for m in round {
                            agg.receive(m).expect("a fresh message");
                        }
                        std::hint::black_box(agg.answer_all());
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// A contextual agent's `decide` + `observe` (LinTS, disjoint arms) on
/// `LinearBandit` contexts. Target: ≥ 150 k per second at d = 20, K = 10.
fn linear_decide_observe(c: &mut Criterion) {
    use parbayes::env::LinearBandit;
    use parbayes::linear::{LinearAgent, LinearConfig, LinearPolicy};
    let mut group = c.benchmark_group("linear");
    const STEPS: u64 = 2_000;
    group.throughput(Throughput::Elements(STEPS));
    for (dim, policy) in [
        (20, LinearPolicy::Thompson { scale: 1.0 }),
        (20, LinearPolicy::LinUcb { alpha: 1.0 }),
    ] {
        let config = LinearConfig::builder(10, dim)
            .policy(policy)
            .build()
            .expect("valid");
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let task = LinearBandit::random(10, dim, 0.5, &mut rng).expect("valid");
        let id = BenchmarkId::new(
            "decide_observe",
            format!("arms=10/dim={dim}/policy={policy}/steps={STEPS}/seed=42"),
        );
        group.bench_function(id, |b| {
            b.iter_batched_ref(
                || {
                    let agent = LinearAgent::new(&config, 0, 42).expect("fits");
                    (agent, Xoshiro256PlusPlus::seed_from_u64(7), vec![0.0; dim])
                },
                |(agent, rng, x)| {
                    for _ in 0..STEPS {
                        task.context_into(rng, x);
                        let arm = agent.decide(x).expect("d features");
                        let r = task.reward(x, arm, rng);
                        agent.observe(x, arm, r).expect("arm exists");
                    }
                },
                BatchSize::LargeInput,
            )
        });
    }
    shared_theta(&mut group);
    group.finish();
}

/// LinTS with one θ over per-arm features, the seed study's model: K = 10
/// arms of d = 66 features (6K + 6), contexts N(0, I/d) per arm, rewards
/// `x_kᵀθ + N(0, 0.25)`. A decision is one θ̃ draw and K dot products.
fn shared_theta(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    use parbayes::linear::{LinearAgent, LinearConfig, LinearModel, LinearPolicy};
    use rand_distr::StandardNormal;
    const STEPS: u64 = 2_000;
    let (arms, dim) = (10, 66);
    let policy = LinearPolicy::Thompson { scale: 1.0 };
    let config = LinearConfig::builder(arms, dim)
        .model(LinearModel::Shared)
        .policy(policy)
        .build()
        .expect("valid");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let theta: Vec<f64> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
    let scale = 1.0 / (dim as f64).sqrt();
    let id = BenchmarkId::new(
        "decide_observe",
        format!("arms={arms}/dim={dim}/model=shared/policy={policy}/steps={STEPS}/seed=42"),
    );
    group.bench_function(id, |b| {
        b.iter_batched_ref(
            || {
                let agent = LinearAgent::new(&config, 0, 42).expect("fits");
                (
                    agent,
                    Xoshiro256PlusPlus::seed_from_u64(7),
                    vec![0.0; arms * dim],
                )
            },
            |(agent, rng, x)| {
                for _ in 0..STEPS {
                    x.iter_mut()
                        .for_each(|v| *v = scale * rng.sample::<f64, _>(StandardNormal));
                    let arm = agent.decide(x).expect("K × d features");
                    let features = &x[arm * dim..(arm + 1) * dim];
                    let mean: f64 = features.iter().zip(&theta).map(|(x, t)| x * t).sum();
                    let r = mean + 0.5 * rng.sample::<f64, _>(StandardNormal);
                    agent.observe(x, arm, r).expect("arm exists");
                }
            },
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(
    benches,
    decide_observe,
    share_check,
    downlink,
    linear_decide_observe
);
criterion_main!(benches);
