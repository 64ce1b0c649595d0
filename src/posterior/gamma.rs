//! Gamma samplers kept between draws.

use rand::Rng;
use rand_distr::{Distribution, Gamma};

/// `Gamma(shape, 1)` samplers by slot, each rebuilt only when its shape
/// changes. Building one derives the shape's constants (a square root and a
/// division for shapes ≥ 1), about a third of a draw's cost, while a
/// posterior's shapes change only when its counts do. A cached sampler
/// draws exactly what a fresh one would from the same stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct GammaCache {
    slots: Vec<(f64, Gamma<f64>)>,
}

impl GammaCache {
    /// One `Gamma(shape, 1)` draw from slot `slot`'s sampler; `shape` is
    /// positive and finite. The slots grow on first use, once.
    #[inline(always)]
    pub(crate) fn draw<R: Rng + ?Sized>(&mut self, slot: usize, shape: f64, rng: &mut R) -> f64 {
        if slot >= self.slots.len() {
            self.grow(slot);
        }
        let (cached, sampler) = &mut self.slots[slot];
        if *cached != shape {
            match Gamma::new(shape, 1.0) {
                Ok(g) => *sampler = g,
                // Unreachable for the positive shapes our posteriors hold.
                Err(_) => return f64::NAN,
            }
            *cached = shape;
        }
        sampler.sample(rng)
    }

    /// Makes room for `slot`, with `Gamma(1, 1)` samplers.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, slot: usize) {
        let unit = Gamma::new(1.0, 1.0).expect("Gamma(1, 1) exists");
        self.slots.resize(slot + 1, (1.0, unit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::posterior::beta::gamma_draw;
    use crate::rng::learner_rng;

    #[test]
    fn a_cached_sampler_draws_what_a_fresh_one_draws() {
        let mut cached = learner_rng(7, 0, 0);
        let mut fresh = cached.clone();
        let mut cache = GammaCache::default();
        // Shapes that repeat, change, and cover both of rand_distr's paths
        // (below and above 1).
        let shapes = [1.0, 1.0, 3.5, 3.5, 0.3, 0.3, 1.0, 250.0, 250.0, 3.5];
        for (i, &shape) in shapes.iter().cycle().take(200).enumerate() {
            let slot = i % 3;
            let a = cache.draw(slot, shape, &mut cached);
            let b = gamma_draw(shape, &mut fresh);
            assert_eq!(a.to_bits(), b.to_bits(), "draw {i}, shape {shape}");
        }
    }
}
