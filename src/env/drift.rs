/// A scheduled change of a bandit's success probabilities: at `step`, every
/// rate is multiplied by `scale`, then the arms in `set` take new rates.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RateChange {
    /// The 0-based step the change holds from.
    pub step: u64,
    /// Every rate is multiplied by this first.
    pub scale: f64,
    /// Then these arms take these rates.
    pub set: Vec<(usize, f64)>,
}

impl RateChange {
    pub(crate) fn apply(&self, rates: &mut [f64]) {
        for r in rates.iter_mut() {
            *r *= self.scale;
        }
        for &(arm, p) in &self.set {
            rates[arm] = p;
        }
    }

    /// The rates after applying `changes` (sorted by step) up to `step`.
    pub fn rates_at(base: &[f64], changes: &[RateChange], step: u64) -> Vec<f64> {
        let mut rates = base.to_vec();
        for c in changes.iter().take_while(|c| c.step <= step) {
            c.apply(&mut rates);
        }
        rates
    }
}
