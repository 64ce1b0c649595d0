use rand::{Rng, RngExt};
use rand_distr::{Distribution, Poisson, StandardNormal};
use statrs::function::erf::erfc;
use statrs::function::gamma::ln_gamma;

use super::tabular::MAX_PLANNING_ENTRIES;
use super::truth::Truth;
use crate::error::{Error, Result};
use crate::model::MAX_REWARD;
use crate::model::{Mdp, Shape, Transition};

/// Bounds that keep the exact model's computation to about a second.
pub const MAX_RATE: f64 = 100_000.0;
pub const MAX_PROFILE: usize = 168;
pub const MAX_VMS: usize = 100;
pub const MAX_BINS: usize = 200;

/// How response times arise from the load.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseModel {
    /// Mean `base_ms / (1 − ρ)` below saturation, capped at `saturation_ms`
    /// (which also holds at ρ ≥ 1), times the noise `exp(σ Z)`, Z standard
    /// normal (median factor 1).
    Queue {
        /// Response time of an idle system.
        base_ms: f64,
        /// The cap at saturation.
        saturation_ms: f64,
        /// The log-normal noise's σ.
        sigma: f64,
    },
    /// An empirical sample of response times per load level, drawn with
    /// replacement from the level nearest ρ.
    Empirical(Vec<LoadLevel>),
}

/// Response times measured at one load `ρ = requests / (VMs · μ)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadLevel {
    /// The load ρ.
    pub load: f64,
    /// Response times measured at it, in ms.
    pub response_ms: Vec<f64>,
}

/// Everything that defines the VM-allocation task.
#[derive(Debug, Clone, PartialEq)]
pub struct VmParams {
    /// Response-time bins of width `max_ms / bins`; the last is open-ended.
    pub bins: usize,
    /// The response time the bins span.
    pub max_ms: f64,
    /// The most VMs; the fewest is 1.
    pub max_vms: usize,
    /// Poisson demand per period, cycled period by period (one rate: fixed).
    pub demand: Vec<f64>,
    /// Requests one VM serves per period, μ.
    pub per_vm: f64,
    /// How response times follow from the load.
    pub response: ResponseModel,
    /// Cost per VM per period.
    pub vm_cost: f64,
    /// The SLA is broken when the response time's bin lies at or above this
    /// (a multiple of the bin width).
    pub sla_ms: f64,
    /// Penalty of a period that breaks the SLA.
    pub sla_penalty: f64,
    /// VMs at the start of every trial.
    pub start_vms: usize,
    /// The threshold autoscaler baseline adds a VM at or above `upper_ms` and
    /// removes one below `lower_ms`.
    pub threshold_upper_ms: f64,
    /// See `threshold_upper_ms`.
    pub threshold_lower_ms: f64,
    /// The discount.
    pub gamma: f64,
}

/// The paper's cloud task: state (response-time bin q, VMs v), actions
/// remove / keep / add one VM (clamped to `1..=max_vms`). Each period the
/// demand is Poisson(λ) with λ from a cycled profile; the next period's
/// response time follows from the load per VM. The learner knows
/// `v' = clamp(v + a)` and the reward `−(vm_cost · v' + sla_penalty ·
/// [q' ≥ SLA bin])`, and learns `P(q' | q, v, a)`.
#[derive(Debug, Clone, PartialEq)]
pub struct VmAllocation {
    params: VmParams,
    truth: Truth,
    /// `per_phase[l][v − 1]`: the response-time bin distribution of a period
    /// in phase l of the demand profile with v VMs.
    per_phase: std::sync::Arc<[Vec<Vec<f64>>]>,
    poisson: Vec<Option<Poisson<f64>>>,
    /// The period the next step simulates.
    period: u64,
    sla_bin: usize,
}

impl VmAllocation {
    /// Checks `params` and computes the exact kernel of every phase.
    pub fn new(params: VmParams) -> Result<Self> {
        check(&params)?;
        let width = params.max_ms / params.bins as f64;
        let sla_bin = (params.sla_ms / width).round() as usize;
        let per_phase: Vec<Vec<Vec<f64>>> = params
            .demand
            .iter()
            .map(|&rate| {
                (1..=params.max_vms)
                    .map(|v| bin_distribution(&params, rate, v))
                    .collect()
            })
            .collect();
        let model = true_model(&params, &per_phase, sla_bin);
        let poisson = params
            .demand
            .iter()
            .map(|&rate| (rate > 0.0).then(|| Poisson::new(rate).expect("checked rate")))
            .collect();
        Ok(Self {
            truth: Truth::new(vec![(0, model)], params.gamma),
            per_phase: per_phase.into(),
            poisson,
            period: 0,
            sla_bin,
            params,
        })
    }

    /// Its parameters.
    pub fn params(&self) -> &VmParams {
        &self.params
    }

    /// The true model, solved.
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    /// `bins × max_vms` states, three actions, a bin per outcome.
    pub fn shape(&self) -> Shape {
        shape(&self.params)
    }

    /// The state of bin `q` with `v` VMs.
    #[inline]
    pub fn state(&self, q: usize, v: usize) -> usize {
        (v - 1) * self.params.bins + q
    }

    /// `(q, v)` of a state.
    #[inline]
    pub fn decode(&self, state: usize) -> (usize, usize) {
        (state % self.params.bins, state / self.params.bins + 1)
    }

    /// The VMs after `action` in a state with `v`.
    #[inline]
    pub fn next_vms(&self, v: usize, action: usize) -> usize {
        (v + action).saturating_sub(1).clamp(1, self.params.max_vms)
    }

    /// The known `(next, reward, terminal)` of landing in bin `o`.
    #[inline]
    pub fn known(&self, state: usize, action: usize, o: usize) -> (usize, f64, bool) {
        let (_, v) = self.decode(state);
        let v_next = self.next_vms(v, action);
        let broken = if o >= self.sla_bin {
            self.params.sla_penalty
        } else {
            0.0
        };
        (
            self.state(o, v_next),
            -(self.params.vm_cost * v_next as f64 + broken),
            false,
        )
    }

    /// The period the next step simulates: the learner's step count.
    pub fn advance_to(&mut self, step: u64) {
        self.period = step;
    }

    /// Simulates one period: Poisson demand on the new allocation, a
    /// response time, its bin.
    pub fn step<R: Rng + ?Sized>(&self, state: usize, action: usize, rng: &mut R) -> Transition {
        let phase = (self.period % self.params.demand.len() as u64) as usize;
        let requests = self.poisson[phase].as_ref().map_or(0.0, |p| p.sample(rng));
        let (_, v) = self.decode(state);
        let v_next = self.next_vms(v, action);
        let load = requests / (v_next as f64 * self.params.per_vm);
        let response_ms = match &self.params.response {
            ResponseModel::Queue {
                base_ms,
                saturation_ms,
                sigma,
            } => {
                let z: f64 = StandardNormal.sample(rng);
                mean_response(*base_ms, *saturation_ms, load) * (sigma * z).exp()
            }
            ResponseModel::Empirical(levels) => {
                let level = &levels[nearest_level(levels, load)];
                level.response_ms[rng.random_range(0..level.response_ms.len())]
            }
        };
        let o = self.bin_of(response_ms);
        let (next, reward, terminal) = self.known(state, action, o);
        Transition {
            outcome: o,
            next,
            prob: 0.0,
            reward,
            terminal,
        }
    }

    fn bin_of(&self, response_ms: f64) -> usize {
        let width = self.params.max_ms / self.params.bins as f64;
        ((response_ms / width) as usize).min(self.params.bins - 1)
    }

    /// The response-time bin distribution of a period in `phase` with `v`
    /// VMs, exactly.
    pub fn bin_distribution(&self, phase: usize, v: usize) -> &[f64] {
        &self.per_phase[phase][v - 1]
    }

    /// Reward per period of the fixed allocations `v = 1..=max_vms` and of
    /// the threshold autoscaler, each simulated for `reps` runs of
    /// `trials × steps_per_trial` periods on the demand learners face, with
    /// streams of their own.
    pub fn baselines(
        &self,
        trials: u64,
        steps_per_trial: u64,
        reps: u32,
        seed: u64,
    ) -> Vec<(String, f64)> {
        let width = self.params.max_ms / self.params.bins as f64;
        let mut policies: Vec<Baseline> = (1..=self.params.max_vms).map(Baseline::Fixed).collect();
        policies.push(Baseline::Threshold {
            upper: (self.params.threshold_upper_ms / width).ceil() as usize,
            lower: (self.params.threshold_lower_ms / width).ceil() as usize,
        });
        policies
            .iter()
            .enumerate()
            .map(|(k, policy)| {
                let mut env = self.clone();
                let mut total = 0.0;
                for rep in 0..reps {
                    let mut rng = crate::rng::learner_rng(seed, rep, u32::MAX - k as u32);
                    let mut step = 0;
                    for _ in 0..trials {
                        let mut state = self.truth.model().sample_start(&mut rng);
                        // A fixed allocation starts at its own size.
                        if let Baseline::Fixed(target) = policy {
                            let (q, _) = env.decode(state);
                            state = env.state(q, *target);
                        }
                        for _ in 0..steps_per_trial {
                            env.advance_to(step);
                            let (q, v) = env.decode(state);
                            let t = env.step(state, policy.action(q, v), &mut rng);
                            total += t.reward;
                            state = t.next;
                            step += 1;
                        }
                    }
                }
                let periods = (trials * steps_per_trial * u64::from(reps)).max(1);
                (policy.name(), total / periods as f64)
            })
            .collect()
    }
}

/// A rule every VM run is compared with.
#[derive(Debug, Clone, Copy)]
enum Baseline {
    /// Move to this many VMs and stay.
    Fixed(usize),
    /// Add a VM when the response-time bin is at or above `upper`, remove
    /// one below `lower`.
    Threshold { upper: usize, lower: usize },
}

impl Baseline {
    fn action(&self, q: usize, v: usize) -> usize {
        match *self {
            Baseline::Fixed(target) => match target.cmp(&v) {
                std::cmp::Ordering::Less => 0,
                std::cmp::Ordering::Equal => 1,
                std::cmp::Ordering::Greater => 2,
            },
            Baseline::Threshold { upper, lower } => {
                if q >= upper {
                    2
                } else if q < lower {
                    0
                } else {
                    1
                }
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Baseline::Fixed(v) => format!("fixed-{v}"),
            Baseline::Threshold { .. } => "threshold".into(),
        }
    }
}

/// Reads an empirical response-time sample: a CSV file with a header and
/// the columns `load` (ρ = requests / (VMs · μ), the level the row was
/// measured at) and `response_ms`. Rows with equal `load` form one level.
pub fn load_levels(path: &std::path::Path) -> Result<Vec<LoadLevel>> {
    #[derive(serde::Deserialize)]
    struct Row {
        load: f64,
        response_ms: f64,
    }
    let source = path.display().to_string();
    let text = crate::error::read_text(path, 256 << 20, "a response-time file is CSV text")?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut levels: Vec<LoadLevel> = Vec::new();
    for (i, row) in reader.deserialize::<Row>().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| {
            Error::invalid(
                &source,
                format!("line {line}"),
                format!("{e}; each row is `load,response_ms`"),
            )
        })?;
        if !(row.load.is_finite()
            && row.load >= 0.0
            && row.response_ms.is_finite()
            && row.response_ms >= 0.0)
        {
            return Err(Error::invalid(
                &source,
                format!("line {line}"),
                format!(
                    "load {} and response_ms {} must be finite and ≥ 0",
                    row.load, row.response_ms
                ),
            ));
        }
        match levels.iter_mut().find(|l| l.load == row.load) {
            Some(l) => l.response_ms.push(row.response_ms),
            None => levels.push(LoadLevel {
                load: row.load,
                response_ms: vec![row.response_ms],
            }),
        }
    }
    if levels.is_empty() {
        return Err(Error::invalid(
            &source,
            "(file)",
            "no rows; give `load,response_ms` rows after the header",
        ));
    }
    Ok(levels)
}

fn shape(p: &VmParams) -> Shape {
    Shape {
        states: p.bins * p.max_vms,
        actions: 3,
        outcomes: p.bins,
    }
}

fn check(p: &VmParams) -> Result<()> {
    check_size(p)?;
    check_load(p)?;
    check_costs(p)
}

/// The sizes, checked first: the other checks multiply by them.
fn check_size(p: &VmParams) -> Result<()> {
    let bad = |field: &str, problem: String| Err(Error::invalid("vm", field, problem));
    if !(1..=MAX_BINS).contains(&p.bins) {
        return bad(
            "bins",
            format!("{} is out of range; use 1 to {MAX_BINS}", p.bins),
        );
    }
    if !(1..=MAX_VMS).contains(&p.max_vms) {
        return bad(
            "max_vms",
            format!("{} is out of range; use 1 to {MAX_VMS}", p.max_vms),
        );
    }
    let entries = (p.bins * p.bins * p.max_vms * 3) as u64;
    if entries > MAX_PLANNING_ENTRIES {
        return bad(
            "bins",
            format!(
                "bins² × max_vms × 3 = {entries} entries in a learner's model; at most {MAX_PLANNING_ENTRIES}"
            ),
        );
    }
    Ok(())
}

/// Demand and how the service responds to it.
fn check_load(p: &VmParams) -> Result<()> {
    let bad = |field: &str, problem: String| Err(Error::invalid("vm", field, problem));
    let positive = |field: &str, x: f64| -> Result<()> {
        if x.is_finite() && x > 0.0 {
            Ok(())
        } else {
            bad(field, format!("{x} must be finite and > 0"))
        }
    };
    positive("max_ms", p.max_ms)?;
    positive("per_vm", p.per_vm)?;
    if p.demand.is_empty() || p.demand.len() > MAX_PROFILE {
        return bad(
            "demand",
            format!("{} rates; give 1 to {MAX_PROFILE}", p.demand.len()),
        );
    }
    if let Some((i, r)) = p
        .demand
        .iter()
        .enumerate()
        .find(|(_, r)| !(r.is_finite() && (0.0..=MAX_RATE).contains(*r)))
    {
        return bad(
            &format!("demand[{i}]"),
            format!("{r} requests per period; use 0 to {MAX_RATE}"),
        );
    }
    match &p.response {
        ResponseModel::Queue {
            base_ms,
            saturation_ms,
            sigma,
        } => {
            positive("base_ms", *base_ms)?;
            positive("saturation_ms", *saturation_ms)?;
            if saturation_ms < base_ms {
                return bad(
                    "saturation_ms",
                    format!("{saturation_ms} is below base_ms = {base_ms}"),
                );
            }
            if !(sigma.is_finite() && *sigma >= 0.0) {
                return bad("noise_sigma", format!("{sigma} must be finite and ≥ 0"));
            }
        }
        ResponseModel::Empirical(levels) => {
            if levels.is_empty() {
                return bad("response_times", "no load levels".into());
            }
        }
    }
    Ok(())
}

/// Rewards, the SLA, the start and the baselines' thresholds.
fn check_costs(p: &VmParams) -> Result<()> {
    let bad = |field: &str, problem: String| Err(Error::invalid("vm", field, problem));
    for (field, x) in [("vm_cost", p.vm_cost), ("sla_penalty", p.sla_penalty)] {
        if !(x.is_finite() && (0.0..=MAX_REWARD).contains(&x)) {
            return bad(field, format!("{x} must be in [0, {MAX_REWARD:e}]"));
        }
    }
    // Checked after max_vms, so the product is meaningful.
    let worst = p.vm_cost * p.max_vms as f64 + p.sla_penalty;
    if worst > MAX_REWARD {
        return bad(
            "vm_cost",
            format!(
                "vm_cost × max_vms + sla_penalty = {worst:e}; a period may cost at most {MAX_REWARD:e}"
            ),
        );
    }
    let width = p.max_ms / p.bins as f64;
    let k = p.sla_ms / width;
    if !(p.sla_ms.is_finite()
        && p.sla_ms > 0.0
        && p.sla_ms <= p.max_ms
        && (k - k.round()).abs() < 1e-9)
    {
        return bad(
            "sla_ms",
            format!(
                "{} must be a bin edge: a multiple of the bin width {width} ms in (0, {}]",
                p.sla_ms, p.max_ms
            ),
        );
    }
    if !(1..=p.max_vms).contains(&p.start_vms) {
        return bad(
            "start_vms",
            format!("{} is outside 1 to max_vms = {}", p.start_vms, p.max_vms),
        );
    }
    for (field, x) in [
        ("threshold_upper_ms", p.threshold_upper_ms),
        ("threshold_lower_ms", p.threshold_lower_ms),
    ] {
        if !(x.is_finite() && x >= 0.0) {
            return bad(field, format!("{x} must be finite and ≥ 0"));
        }
    }
    if p.threshold_lower_ms > p.threshold_upper_ms {
        return bad("threshold_lower_ms", "is above threshold_upper_ms".into());
    }
    if let Err(problem) = crate::model::check_gamma(p.gamma) {
        return bad("gamma", problem);
    }
    Ok(())
}

/// The mean response time at load ρ.
#[inline]
fn mean_response(base_ms: f64, saturation_ms: f64, load: f64) -> f64 {
    if load < 1.0 {
        (base_ms / (1.0 - load)).min(saturation_ms)
    } else {
        saturation_ms
    }
}

fn nearest_level(levels: &[LoadLevel], load: f64) -> usize {
    let mut best = 0;
    for (i, l) in levels.iter().enumerate() {
        if (l.load - load).abs() < (levels[best].load - load).abs() {
            best = i;
        }
    }
    best
}

/// `P(bin | λ, v)`: the Poisson demand summed over every request count that
/// carries mass above 1e-17, each count's response-time bin distribution
/// exact (normal CDF of the log-normal noise, or the empirical level's
/// frequencies).
fn bin_distribution(p: &VmParams, rate: f64, v: usize) -> Vec<f64> {
    let mut out = vec![0.0; p.bins];
    let width = p.max_ms / p.bins as f64;
    let capacity = v as f64 * p.per_vm;
    let spread = 10.0 * rate.sqrt() + 10.0;
    let (lo, hi) = ((rate - spread).max(0.0) as u64, (rate + spread) as u64);
    let mut saturated = 0.0;
    for n in lo..=hi {
        let pmf = if rate > 0.0 {
            (n as f64 * rate.ln() - rate - ln_gamma(n as f64 + 1.0)).exp()
        } else {
            f64::from(n == 0)
        };
        if pmf < 1e-17 {
            continue;
        }
        let load = n as f64 / capacity;
        if load >= 1.0 {
            saturated += pmf;
        } else {
            add_bins(p, width, load, pmf, &mut out);
        }
    }
    if saturated > 0.0 {
        add_bins(p, width, 1.0, saturated, &mut out);
    }
    // The mass outside the summed range is below 1e-15; renormalise it away.
    let total: f64 = out.iter().sum();
    for x in &mut out {
        *x /= total;
    }
    out
}

/// Adds `mass ×` the bin distribution of one load to `out`.
fn add_bins(p: &VmParams, width: f64, load: f64, mass: f64, out: &mut [f64]) {
    match &p.response {
        ResponseModel::Queue {
            base_ms,
            saturation_ms,
            sigma,
        } => {
            let m = mean_response(*base_ms, *saturation_ms, load);
            if *sigma == 0.0 {
                out[((m / width) as usize).min(p.bins - 1)] += mass;
                return;
            }
            // P(m · e^{σZ} < edge) = Φ((ln edge − ln m) / σ).
            let cdf = |edge: f64| 0.5 * erfc(-((edge / m).ln() / sigma) / std::f64::consts::SQRT_2);
            let mut below = 0.0;
            for (k, slot) in out.iter_mut().enumerate() {
                let upto = if k + 1 == p.bins {
                    1.0
                } else {
                    cdf((k + 1) as f64 * width)
                };
                *slot += mass * (upto - below);
                below = upto;
            }
        }
        ResponseModel::Empirical(levels) => {
            let level = &levels[nearest_level(levels, load)];
            let each = mass / level.response_ms.len() as f64;
            for &ms in &level.response_ms {
                out[((ms / width) as usize).min(p.bins - 1)] += each;
            }
        }
    }
}

/// The exact kernel `P(q' | q, v, a)`. The demand's phase is hidden from the
/// state, so the bin q of the last period is evidence about it: with the
/// phases equally likely a priori, `P(l | q, v) ∝ P(q | λ_l, v)`, and the
/// next period is phase l + 1. With one rate the kernel is just `P(q' | λ, v')`.
fn true_model(p: &VmParams, per_phase: &[Vec<Vec<f64>>], sla_bin: usize) -> Mdp {
    let shape = shape(p);
    let phases = per_phase.len();
    let mut rows = Vec::with_capacity(shape.rows());
    let mut weights = vec![0.0; phases];
    let mut mix = vec![0.0; p.bins];
    for v in 1..=p.max_vms {
        for q in 0..p.bins {
            for (w, phase) in weights.iter_mut().zip(per_phase) {
                *w = phase[v - 1][q];
            }
            let total: f64 = weights.iter().sum();
            if total > 0.0 {
                weights.iter_mut().for_each(|w| *w /= total);
            } else {
                // A state no phase produces: any phase.
                weights.fill(1.0 / phases as f64);
            }
            for action in 0..3 {
                let v_next = (v + action).saturating_sub(1).clamp(1, p.max_vms);
                mix.fill(0.0);
                for (phase, w) in weights.iter().enumerate() {
                    if *w == 0.0 {
                        continue;
                    }
                    let next = &per_phase[(phase + 1) % phases][v_next - 1];
                    for (m, x) in mix.iter_mut().zip(next) {
                        *m += w * x;
                    }
                }
                let cost = p.vm_cost * v_next as f64;
                rows.push(
                    mix.iter()
                        .enumerate()
                        .filter(|(_, x)| **x > 0.0)
                        .map(|(o, x)| Transition {
                            outcome: o,
                            next: (v_next - 1) * p.bins + o,
                            prob: *x,
                            reward: -(cost + if o >= sla_bin { p.sla_penalty } else { 0.0 }),
                            terminal: false,
                        })
                        .collect(),
                );
            }
        }
    }
    // Every trial starts with `start_vms` VMs in the bin the profile's last
    // phase leaves behind.
    let mut start = vec![0.0; shape.states];
    let last = &per_phase[phases - 1][p.start_vms - 1];
    for (q, x) in last.iter().enumerate() {
        start[(p.start_vms - 1) * p.bins + q] = *x;
    }
    Mdp::new(shape, start, &rows).expect("rows are mixtures of distributions")
}
