//! Gamma samplers kept between draws.

use rand::Rng;
use rand_distr::{Distribution, Gamma};

/// A `Gamma(shape, 1)` sampler kept with its shape and rebuilt only when
/// a draw asks for another. Building one derives the shape's constants (a
/// square root and a division for shapes ≥ 1, one more division below),
/// about a third of a draw's cost, while a posterior's shapes change only
/// when its counts do. A kept sampler draws exactly what a fresh one would
/// from the same stream.
#[derive(Debug, Clone)]
pub(crate) struct KeptGamma {
    shape: f64,
    sampler: Gamma<f64>,
}

impl Default for KeptGamma {
    /// `Gamma(1, 1)`.
    fn default() -> Self {
        Self {
            shape: 1.0,
            sampler: Gamma::new(1.0, 1.0).expect("Gamma(1, 1) exists"),
        }
    }
}

impl KeptGamma {
    /// One `Gamma(shape, 1)` draw; `shape` is positive and finite.
    #[inline(always)]
    pub(crate) fn draw<R: Rng + ?Sized>(&mut self, shape: f64, rng: &mut R) -> f64 {
        if self.shape != shape {
            match Gamma::new(shape, 1.0) {
                Ok(g) => self.sampler = g,
                // Unreachable for the positive shapes our posteriors hold.
                Err(_) => return f64::NAN,
            }
            self.shape = shape;
        }
        self.sampler.sample(rng)
    }
}

/// [`KeptGamma`] samplers by slot.
#[derive(Debug, Clone, Default)]
pub(crate) struct GammaCache {
    slots: Vec<KeptGamma>,
}

impl GammaCache {
    /// One `Gamma(shape, 1)` draw from slot `slot`'s sampler; `shape` is
    /// positive and finite. The slots grow on first use, once.
    #[inline(always)]
    pub(crate) fn draw<R: Rng + ?Sized>(&mut self, slot: usize, shape: f64, rng: &mut R) -> f64 {
        if slot >= self.slots.len() {
            self.grow(slot);
        }
        self.slots[slot].draw(shape, rng)
    }

    /// Makes room for `slot`, with `Gamma(1, 1)` samplers.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, slot: usize) {
        self.slots.resize(slot + 1, KeptGamma::default());
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
