//! Learning curves against trials: regret or policy loss on the left, model
//! error on a log axis on the right, each a mean over repetitions with a
//! band of ± one standard error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::figure::{
    AXIS_PX, CAPTION_PX, Drawn, Entry, Figure, Mark, TICK_PX, TITLE_PX, color, draw_legend,
    legend_height, log_ticks, tick, write_figure,
};
use super::words;
use crate::error::Result;
use crate::record::TrialRecord;

/// Writes `<stem>.svg` and `<stem>.png`: one curve per agent count, each
/// the mean over repetitions with a ± one standard error band. Regret per
/// agent for bandits, or policy loss for MDPs (left), and model error (right,
/// log scale; solid: learners' mean, dashed: the aggregator's global
/// estimate).
/// A dashed vertical line marks each trial in `changes` (where the task
/// drifts; fractional when a change falls inside a trial).
pub fn write_curves(
    stem: &Path,
    title: &str,
    records: &[TrialRecord],
    changes: &[f64],
) -> Result<[PathBuf; 2]> {
    let mut curves = Curves::group(title, records, |r| (r.agents, format!("N = {}", r.agents)));
    curves.changes = changes.to_vec();
    write_figure(stem, &curves)
}

/// Writes `<stem>.svg` and `<stem>.png` comparing strategies, as the paper's
/// Figs. 3a and 4e do: at the largest agent count in `records`, one curve
/// per (policy, share rule) in the order they first appear, labelled by
/// policy alone when every curve has the same rule.
pub fn write_policy_curves(
    stem: &Path,
    title: &str,
    records: &[TrialRecord],
) -> Result<[PathBuf; 2]> {
    let n = records.iter().map(|r| r.agents).max().unwrap_or(0);
    let at_n: Vec<TrialRecord> = records.iter().filter(|r| r.agents == n).cloned().collect();
    let one_rule = at_n
        .iter()
        .all(|r| at_n.first().is_some_and(|f| f.share == r.share));
    let mut order: Vec<(String, String)> = Vec::new();
    let curves = Curves::group(&format!("{title}, N = {n}"), &at_n, |r| {
        let key = (r.policy.clone(), r.share.clone());
        let i = order.iter().position(|k| *k == key).unwrap_or_else(|| {
            order.push(key);
            order.len() - 1
        });
        let label = if one_rule {
            words::policy_str(&r.policy)
        } else {
            format!(
                "{}; {}",
                words::policy_str(&r.policy),
                words::sharing_str(&r.share)
            )
        };
        (i as u32, label)
    });
    write_figure(stem, &curves)
}

/// A mean over repetitions and its standard error (NaN with fewer than two).
#[derive(Debug, Clone, Copy)]
struct Stat {
    mean: f64,
    se: f64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Acc {
    n: f64,
    sum: f64,
    squares: f64,
}

impl Acc {
    fn add(&mut self, x: Option<f64>) {
        if let Some(x) = x.filter(|x| x.is_finite()) {
            self.n += 1.0;
            self.sum += x;
            self.squares += x * x;
        }
    }

    fn stat(&self) -> Stat {
        if self.n == 0.0 {
            return Stat {
                mean: f64::NAN,
                se: f64::NAN,
            };
        }
        let mean = self.sum / self.n;
        let se = if self.n > 1.0 {
            let var = ((self.squares - self.n * mean * mean) / (self.n - 1.0)).max(0.0);
            (var / self.n).sqrt()
        } else {
            f64::NAN
        };
        Stat { mean, se }
    }
}

struct Point {
    trial: f64,
    left: Stat,
    kl: Stat,
    global: Stat,
}

struct Curve {
    label: String,
    points: Vec<Point>,
}

struct Curves {
    title: String,
    mdp: bool,
    curves: Vec<Curve>,
    /// Trials at which the task changes.
    changes: Vec<f64>,
}

impl Curves {
    /// Groups `records` into curves by `key` (ordered by its number), one
    /// point per trial.
    fn group(
        title: &str,
        records: &[TrialRecord],
        mut key: impl FnMut(&TrialRecord) -> (u32, String),
    ) -> Self {
        let mdp = records.iter().any(|r| r.policy_loss.is_some());
        let mut sums: BTreeMap<u32, (String, BTreeMap<u64, [Acc; 3]>)> = BTreeMap::new();
        for r in records {
            let (k, label) = key(r);
            let acc = sums
                .entry(k)
                .or_insert_with(|| (label, BTreeMap::new()))
                .1
                .entry(r.trial)
                .or_default();
            acc[0].add(if mdp {
                r.policy_loss
            } else {
                r.regret_per_agent
            });
            acc[1].add(r.model_kl);
            acc[2].add(r.global_model_kl);
        }
        let curves = sums
            .into_values()
            .map(|(label, trials)| Curve {
                label,
                points: trials
                    .into_iter()
                    .map(|(trial, [left, kl, global])| Point {
                        trial: trial as f64,
                        left: left.stat(),
                        kl: kl.stat(),
                        global: global.stat(),
                    })
                    .collect(),
            })
            .collect();
        Self {
            title: title.to_string(),
            mdp,
            curves,
            changes: Vec::new(),
        }
    }
}

/// The band's polygon: the upper edge forward, the lower edge back, lower
/// edges clamped to `floor` (a log axis has no zero).
fn band(points: &[(f64, Stat)], floor: f64) -> Vec<(f64, f64)> {
    let with_se: Vec<&(f64, Stat)> = points.iter().filter(|p| p.1.se.is_finite()).collect();
    let upper = with_se.iter().map(|p| (p.0, p.1.mean + p.1.se));
    let lower = with_se
        .iter()
        .rev()
        .map(|p| (p.0, (p.1.mean - p.1.se).max(floor)));
    upper.chain(lower).collect()
}

impl Figure for Curves {
    fn size(&self) -> (u32, u32) {
        (1400, 640)
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one figure's layout reads best as one function"
    )]
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn
    where
        DB::ErrorType: 'static,
    {
        let root = root.titled(&self.title, ("sans-serif", TITLE_PX))?;
        let mut entries: Vec<Entry> = self
            .curves
            .iter()
            .enumerate()
            .map(|(i, c)| Entry {
                label: c.label.clone(),
                color: color(i),
                mark: Mark::Line(2),
            })
            .collect();
        let gray = RGBColor(90, 90, 90).to_rgba();
        entries.push(Entry {
            label: "model error: learners' mean".into(),
            color: gray,
            mark: Mark::Line(2),
        });
        entries.push(Entry {
            label: "global estimate".into(),
            color: gray,
            mark: Mark::Dashed,
        });
        entries.push(Entry {
            label: "shade: ± 1 standard error".into(),
            color: gray.mix(0.25),
            mark: Mark::Line(10),
        });
        if !self.changes.is_empty() {
            entries.push(Entry {
                label: "the task changes".into(),
                color: gray,
                mark: Mark::Dotted,
            });
        }
        let (w, h) = root.dim_in_pixel();
        let (body, legend) = root.split_vertically(h - legend_height(&root, &entries));
        draw_legend(&legend, &entries)?;
        let (left, right) = body.split_horizontally(w / 2);
        let max_trial = self
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.trial))
            .fold(1.0, f64::max);

        // Left: regret or policy loss, linear.
        let series = |pick: fn(&Point) -> Stat, c: &Curve| -> Vec<(f64, Stat)> {
            c.points
                .iter()
                .map(|p| (p.trial, pick(p)))
                .filter(|p| p.1.mean.is_finite())
                .collect()
        };
        let max_left = self
            .curves
            .iter()
            .flat_map(|c| series(|p| p.left, c))
            .map(|p| p.1.mean + p.1.se.max(0.0))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            .max(1e-9);
        let (caption, y_desc) = if self.mdp {
            (
                "policy loss: V* − V of the policy greedy on the mean, from s₀",
                "value",
            )
        } else {
            ("regret per agent", "cumulative pseudo-regret")
        };
        let mut chart = ChartBuilder::on(&left)
            .margin(14)
            .margin_right(28)
            .x_label_area_size(52)
            .y_label_area_size(76)
            .caption(caption, ("sans-serif", CAPTION_PX))
            .build_cartesian_2d(0.0..max_trial, 0.0..max_left * 1.05)?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| tick(*x))
            .y_label_formatter(&|y| tick(*y))
            .light_line_style(WHITE)
            .label_style(("sans-serif", TICK_PX))
            .axis_desc_style(("sans-serif", AXIS_PX))
            .x_desc("trial")
            .y_desc(y_desc)
            .draw()?;
        let change_color = RGBColor(90, 90, 90).stroke_width(2);
        for &x in &self.changes {
            chart.draw_series(DashedLineSeries::new(
                [(x, 0.0), (x, max_left * 1.05)],
                2,
                4,
                change_color,
            ))?;
        }
        for (i, c) in self.curves.iter().enumerate() {
            let color = color(i);
            let points = series(|p| p.left, c);
            chart.draw_series(std::iter::once(Polygon::new(
                band(&points, 0.0),
                color.mix(0.18).filled(),
            )))?;
            if self.mdp {
                // Policy loss is evaluated sparsely: mark each evaluation.
                chart.draw_series(
                    points
                        .iter()
                        .map(|p| Circle::new((p.0, p.1.mean), 3, color.filled())),
                )?;
            }
            chart.draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1.mean)),
                color.stroke_width(2),
            ))?;
        }

        // Right: model error, log scale.
        let positive = |pick: fn(&Point) -> Stat, c: &Curve| -> Vec<(f64, Stat)> {
            series(pick, c)
                .into_iter()
                .filter(|p| p.1.mean > 0.0)
                .collect()
        };
        let values = self.curves.iter().flat_map(|c| {
            let kl = positive(|p| p.kl, c);
            let global = positive(|p| p.global, c);
            kl.into_iter()
                .chain(global)
                .flat_map(|p| [p.1.mean, p.1.mean + p.1.se.max(0.0)])
        });
        let (lo, hi) = values
            .filter(|v| v.is_finite() && *v > 0.0)
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if !lo.is_finite() {
            // A dataset or clicks: no known truth to measure a model by.
            let (rw, rh) = right.dim_in_pixel();
            let style = ("sans-serif", AXIS_PX).into_text_style(&right).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                ),
            );
            right.draw(&Text::new(
                "no model error: the task's true parameters are unknown",
                (rw as i32 / 2, rh as i32 / 2),
                style,
            ))?;
            return Ok(());
        }
        // Pad by a fraction of the range's own width in log terms, so a
        // narrow range still fills the panel.
        let pad = (hi / lo).powf(0.06).max(1.01);
        let (lo, hi) = (lo / pad, hi * pad);
        let mut chart = ChartBuilder::on(&right)
            .margin(14)
            .margin_right(28)
            .x_label_area_size(52)
            .y_label_area_size(76)
            .caption(
                "model error Σ KL(true ‖ estimate), log scale",
                ("sans-serif", CAPTION_PX),
            )
            .build_cartesian_2d(
                0.0..max_trial,
                (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)),
            )?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| tick(*x))
            .y_label_formatter(&|y| tick(*y))
            .light_line_style(WHITE)
            .label_style(("sans-serif", TICK_PX))
            .axis_desc_style(("sans-serif", AXIS_PX))
            .x_desc("trial")
            .y_desc("nats")
            .draw()?;
        for &x in &self.changes {
            chart.draw_series(DashedLineSeries::new(
                [(x, lo), (x, hi)],
                2,
                4,
                change_color,
            ))?;
        }
        for (i, c) in self.curves.iter().enumerate() {
            let color = color(i);
            let kl = positive(|p| p.kl, c);
            chart.draw_series(std::iter::once(Polygon::new(
                band(&kl, lo),
                color.mix(0.18).filled(),
            )))?;
            chart.draw_series(LineSeries::new(
                kl.iter().map(|p| (p.0, p.1.mean)),
                color.stroke_width(2),
            ))?;
            let global = positive(|p| p.global, c);
            chart.draw_series(DashedLineSeries::new(
                global.iter().map(|p| (p.0, p.1.mean)),
                5,
                4,
                color.stroke_width(2),
            ))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_is_one_standard_error_of_the_mean() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let mut acc = Acc::default();
        for x in xs {
            acc.add(Some(x));
        }
        acc.add(None);
        acc.add(Some(f64::NAN));
        let s = acc.stat();
        // Mean 5; sample variance 32 / 7.
        assert!((s.mean - 5.0).abs() < 1e-12);
        assert!((s.se - (32.0f64 / 7.0 / 8.0).sqrt()).abs() < 1e-12);
        let mut one = Acc::default();
        one.add(Some(3.0));
        assert_eq!(one.stat().mean, 3.0);
        assert!(one.stat().se.is_nan(), "no band from one repetition");
    }

    #[test]
    fn a_band_goes_out_along_the_top_and_back_along_the_bottom() {
        let stat = |mean, se| Stat { mean, se };
        let points = [
            (1.0, stat(10.0, 1.0)),
            (2.0, stat(5.0, f64::NAN)),
            (3.0, stat(2.0, 3.0)),
        ];
        assert_eq!(
            band(&points, 0.5),
            vec![(1.0, 11.0), (3.0, 5.0), (3.0, 0.5), (1.0, 9.0)]
        );
    }
}
