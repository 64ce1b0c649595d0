//! One portable random stream per learner.
//!
//! Xoshiro256++ gives the same sequence on every platform and thread count,
//! which lockstep reproducibility needs; `StdRng` makes no such promise.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator every learner owns.
pub type LearnerRng = Xoshiro256PlusPlus;

/// SplitMix64's finaliser: a bijection on u64 that scatters nearby inputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The stream of learner `agent` in repetition `rep` of a run seeded `seed`.
///
/// It depends on nothing else (not the number of agents, not the thread
/// count), so agent 3 of repetition 0 sees the same randomness at N = 5 and
/// at N = 10.
pub fn learner_rng(seed: u64, rep: u32, agent: u32) -> LearnerRng {
    let key = mix(mix(mix(seed) ^ u64::from(rep)) ^ (u64::from(agent) << 1 | 1));
    Xoshiro256PlusPlus::seed_from_u64(key)
}

/// The stream of learner `agent` rebuilt after a crash in trial `trial`:
/// derived afresh, so a recovered learner does not replay its old draws.
pub fn recovered_rng(seed: u64, rep: u32, agent: u32, trial: u64) -> LearnerRng {
    let key = mix(mix(mix(mix(seed) ^ u64::from(rep)) ^ (u64::from(agent) << 1 | 1)) ^ mix(trial));
    Xoshiro256PlusPlus::seed_from_u64(key)
}

/// The stream a task's own parameters are drawn from (a linear task's
/// θ when the scenario does not give them): the same for every learner and
/// repetition of a run seeded `seed`, apart from every learner's stream.
pub fn task_rng(seed: u64) -> LearnerRng {
    // An even key, like the fault stream's, with a tag of its own.
    Xoshiro256PlusPlus::seed_from_u64(mix(mix(seed) ^ 0x7a5c << 1))
}

/// The stream that decides which learners fail in trial `trial`, apart from
/// every learner's own, so injecting faults leaves the survivors' draws alone.
pub fn fault_rng(seed: u64, rep: u32, trial: u64) -> LearnerRng {
    // Agent ids are odd-keyed above; an even key cannot collide with them.
    let key = mix(mix(mix(mix(seed) ^ u64::from(rep)) ^ (trial << 1)) ^ 0xfa17);
    Xoshiro256PlusPlus::seed_from_u64(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| learner_rng(42, 0, 1).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut seen = std::collections::HashSet::new();
        for rep in 0..20 {
            for agent in 0..200 {
                assert!(seen.insert(learner_rng(42, rep, agent).next_u64()));
            }
        }
    }
}
