use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::metrics::TrialRecord;

/// Regret per agent for bandits, or policy loss for MDPs (left), and model
/// error (right, log scale; thick: learners' mean, thin: the aggregator's
/// global estimate) against trials, one line per agent count, each the mean
/// over repetitions.
pub fn write_curves_svg(path: &Path, title: &str, records: &[TrialRecord]) -> Result<()> {
    let mdp = records.iter().any(|r| r.policy_loss.is_some());
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (1100, 460)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, ("sans-serif", 20))?;
        let (left, right) = root.split_horizontally(550);
        let series = mean_curves(records, mdp);
        let max_trial = records.iter().map(|r| r.trial).max().unwrap_or(1) as f64;

        let max_regret = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            .max(1e-9);
        let (caption, y_desc) = if mdp {
            (
                "policy loss V*(s₀) − V^π(s₀), π greedy on the mean",
                "value",
            )
        } else {
            ("regret per agent", "cumulative pseudo-regret")
        };
        let mut chart = ChartBuilder::on(&left)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .caption(caption, ("sans-serif", 16))
            .build_cartesian_2d(0.0..max_trial, 0.0..max_regret * 1.05)?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc("trial")
            .y_desc(y_desc)
            .draw()?;
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            if mdp {
                // Policy loss is evaluated sparsely: mark each evaluation.
                chart.draw_series(
                    s.points
                        .iter()
                        .filter(|p| p.1.is_finite())
                        .map(|p| Circle::new((p.0, p.1), 3, color.filled())),
                )?;
            }
            chart
                .draw_series(LineSeries::new(
                    s.points
                        .iter()
                        .filter(|p| p.1.is_finite())
                        .map(|p| (p.0, p.1)),
                    color.stroke_width(2),
                ))?
                .label(format!("N = {}", s.agents))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;

        let kls = series
            .iter()
            .flat_map(|s| s.points.iter().flat_map(|p| [p.2, p.3]))
            .filter(|v| *v > 0.0 && v.is_finite());
        let (lo, hi) = kls.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (lo, hi) = if lo.is_finite() {
            (lo * 0.8, hi * 1.25)
        } else {
            (1e-3, 1.0)
        };
        // plotters labels a log axis from its first power of ten, so the
        // range must hold one.
        let decade = 10f64.powf(lo.log10().floor());
        let lo = if decade * 10.0 > hi { decade } else { lo };
        let mut chart = ChartBuilder::on(&right)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .caption(
                "model error Σ KL(θ ‖ θ̂): learners' mean (thick), global (thin)",
                ("sans-serif", 16),
            )
            .build_cartesian_2d(0.0..max_trial, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc("trial")
            .y_desc("nats")
            // A log axis gets a fine grid per decade; it drowns the curves.
            .light_line_style(WHITE)
            .draw()?;
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart.draw_series(LineSeries::new(
                s.points.iter().filter(|p| p.3 > 0.0).map(|p| (p.0, p.3)),
                color.stroke_width(1),
            ))?;
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().filter(|p| p.2 > 0.0).map(|p| (p.0, p.2)),
                    color.stroke_width(2),
                ))?
                .label(format!("N = {}", s.agents))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| Error::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

struct Curve {
    agents: u32,
    /// (trial, regret per agent or policy loss, model error, global model
    /// error), means over repetitions; NaN where nothing was measured.
    points: Vec<(f64, f64, f64, f64)>,
}

fn mean_curves(records: &[TrialRecord], mdp: bool) -> Vec<Curve> {
    // (agents, trial) → sums and counts, one pass.
    #[derive(Default)]
    struct Sums {
        left: f64,
        left_n: f64,
        kl: f64,
        global: f64,
        n: f64,
    }
    let mut sums: std::collections::BTreeMap<(u32, u64), Sums> = Default::default();
    for r in records {
        let e = sums.entry((r.agents, r.trial)).or_default();
        let left = if mdp {
            r.policy_loss
        } else {
            r.regret_per_agent
        };
        if let Some(x) = left {
            e.left += x;
            e.left_n += 1.0;
        }
        e.kl += r.model_kl.unwrap_or(f64::NAN);
        e.global += r.global_model_kl.unwrap_or(f64::NAN);
        e.n += 1.0;
    }
    let mut curves: Vec<Curve> = Vec::new();
    for ((agents, trial), s) in sums {
        if curves.last().is_none_or(|c| c.agents != agents) {
            curves.push(Curve {
                agents,
                points: Vec::new(),
            });
        }
        if let Some(c) = curves.last_mut() {
            let left = if s.left_n > 0.0 {
                s.left / s.left_n
            } else {
                f64::NAN
            };
            c.points
                .push((trial as f64, left, s.kl / s.n, s.global / s.n));
        }
    }
    curves
}
