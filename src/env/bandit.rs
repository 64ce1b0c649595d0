use rand::{Rng, RngExt};

use super::drift::RateChange;
use crate::error::{Error, Result};
use crate::model::Shape;

/// K Bernoulli arms: pulling arm `a` clicks (outcome 1, reward 1) with
/// probability `p[a]`. One state, K actions, two outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct BernoulliBandit {
    rates: Vec<f64>,
    changes: Vec<RateChange>,
    next_change: usize,
    best: f64,
}

impl BernoulliBandit {
    /// At least one arm, every rate in `[0, 1]`; changes sorted by step with
    /// valid arms, a finite non-negative scale and rates that stay in `[0, 1]`.
    pub fn new(rates: Vec<f64>, mut changes: Vec<RateChange>) -> Result<Self> {
        let bad = |field: String, problem: String| Err(Error::invalid("bandit", field, problem));
        if rates.is_empty() {
            return bad(
                "arms".into(),
                "no arms; give at least one probability".into(),
            );
        }
        if let Some((i, p)) = rates
            .iter()
            .enumerate()
            .find(|(_, p)| !(0.0..=1.0).contains(*p))
        {
            return bad(
                format!("arms[{i}]"),
                format!("{p} is not a probability in [0, 1]"),
            );
        }
        changes.sort_by_key(|c| c.step);
        let mut now = rates.clone();
        for (k, c) in changes.iter().enumerate() {
            if !(c.scale.is_finite() && c.scale >= 0.0) {
                return bad(
                    format!("drift[{k}].scale"),
                    format!("{} must be finite and ≥ 0", c.scale),
                );
            }
            if let Some(&(arm, _)) = c.set.iter().find(|(arm, _)| *arm >= rates.len()) {
                return bad(
                    format!("drift[{k}].set"),
                    format!("arm {arm} does not exist; arms are 0..{}", rates.len()),
                );
            }
            c.apply(&mut now);
            if let Some((i, p)) = now
                .iter()
                .enumerate()
                .find(|(_, p)| !(0.0..=1.0).contains(*p))
            {
                return bad(
                    format!("drift[{k}]"),
                    format!("makes arm {i}'s rate {p}, outside [0, 1]"),
                );
            }
        }
        let best = max(&rates);
        Ok(Self {
            rates,
            changes,
            next_change: 0,
            best,
        })
    }

    /// One state, an action per arm, two outcomes.
    pub fn shape(&self) -> Shape {
        Shape {
            states: 1,
            actions: self.rates.len(),
            outcomes: 2,
        }
    }

    /// The current success probabilities.
    pub fn probabilities(&self) -> &[f64] {
        &self.rates
    }

    /// The drift schedule, in step order.
    pub fn changes(&self) -> &[RateChange] {
        &self.changes
    }

    /// The best current rate μ*.
    pub fn best(&self) -> f64 {
        self.best
    }

    /// Pulls `arm`: outcome 1 (a click) with its current rate, else 0.
    #[inline]
    pub fn pull<R: Rng + ?Sized>(&self, arm: usize, rng: &mut R) -> usize {
        usize::from(rng.random::<f64>() < self.rates[arm])
    }

    /// Applies every change due at or before `step`.
    pub fn advance_to(&mut self, step: u64) {
        while let Some(c) = self.changes.get(self.next_change) {
            if c.step > step {
                break;
            }
            c.apply(&mut self.rates);
            self.best = max(&self.rates);
            self.next_change += 1;
        }
    }
}

fn max(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::learner_rng;

    #[test]
    fn validates_rates_and_changes() {
        assert!(BernoulliBandit::new(vec![], vec![]).is_err());
        assert!(BernoulliBandit::new(vec![0.5, 1.5], vec![]).is_err());
        assert!(BernoulliBandit::new(vec![0.5, f64::NAN], vec![]).is_err());
        let up = RateChange {
            step: 5,
            scale: 3.0,
            set: vec![],
        };
        assert!(BernoulliBandit::new(vec![0.5], vec![up]).is_err());
        let bad_arm = RateChange {
            step: 5,
            scale: 1.0,
            set: vec![(2, 0.1)],
        };
        assert!(BernoulliBandit::new(vec![0.5, 0.1], vec![bad_arm]).is_err());
    }

    #[test]
    fn drift_applies_at_its_step() {
        let change = RateChange {
            step: 10,
            scale: 0.2,
            set: vec![(1, 0.15)],
        };
        let mut b = BernoulliBandit::new(vec![0.05, 0.01], vec![change]).unwrap();
        b.advance_to(9);
        assert_eq!(b.probabilities(), &[0.05, 0.01]);
        b.advance_to(10);
        assert!((b.probabilities()[0] - 0.01).abs() < 1e-15);
        assert_eq!(b.probabilities()[1], 0.15);
        assert_eq!(b.best(), 0.15);
    }

    #[test]
    fn pull_frequency_matches_rate() {
        let b = BernoulliBandit::new(vec![0.3], vec![]).unwrap();
        let mut rng = learner_rng(3, 0, 0);
        let n = 100_000;
        let hits: usize = (0..n).map(|_| b.pull(0, &mut rng)).sum();
        // sd of the frequency is 0.00145; allow 5 of them.
        assert!((hits as f64 / n as f64 - 0.3).abs() < 0.0073);
    }
}
