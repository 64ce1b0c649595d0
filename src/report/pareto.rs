use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::figure::{
    AXIS_PX, Drawn, Entry, Figure, Mark, TICK_PX, TITLE_PX, color, draw_legend, legend_height,
    log_ticks, tick, write_figure,
};

/// A point's label.
const LABEL_PX: u32 = 14;
use crate::error::Result;
use crate::sweep::{Sweep, SweepRow};

/// Writes `<stem>.svg` and `<stem>.png`, communication against accuracy:
/// bytes (up + down, log scale) against the error the gain compares, a
/// point per rule and a series per agent count (and policy, where several
/// were swept), with a line along each series' non-dominated frontier.
/// Rules that send nothing sit on the left edge.
pub fn write_pareto(stem: &Path, title: &str, sweep: &Sweep) -> Result<[PathBuf; 2]> {
    write_figure(stem, &Pareto { title, sweep })
}

struct Pareto<'a> {
    title: &'a str,
    sweep: &'a Sweep,
}

fn kb(r: &SweepRow) -> f64 {
    (r.bytes_up + r.bytes_down) / 1000.0
}

impl Figure for Pareto<'_> {
    fn size(&self) -> (u32, u32) {
        (1200, 780)
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one figure's layout reads best as one function"
    )]
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn
    where
        DB::ErrorType: 'static,
    {
        let sweep = self.sweep;
        let positive = sweep.rows.iter().map(kb).filter(|x| *x > 0.0);
        let (lo, hi) = positive.fold((f64::INFINITY, 0.0f64), |(l, h), x| (l.min(x), h.max(x)));
        let (lo, hi) = if lo.is_finite() {
            (10f64.powf((lo / 2.0).log10().floor()), hi * 2.0)
        } else {
            (0.1, 10.0)
        };
        let errors = sweep.rows.iter().map(|r| r.error());
        let (e_lo, e_hi) = errors.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
            (l.min(x), h.max(x))
        });
        let pad = (e_hi - e_lo).abs().max(1e-9) * 0.08;
        // A series per (policy, agent count), in the sweep's order.
        let mut series: Vec<(&str, u32)> = Vec::new();
        for r in &sweep.rows {
            if !series.contains(&(r.policy.as_str(), r.agents)) {
                series.push((r.policy.as_str(), r.agents));
            }
        }
        series.sort_by_key(|s| s.1);
        let policies = series.iter().any(|s| s.0 != series[0].0);
        let entries: Vec<Entry> = series
            .iter()
            .enumerate()
            .map(|(i, (policy, n))| Entry {
                label: if policies {
                    format!("{policy}, N = {n}")
                } else {
                    format!("N = {n}")
                },
                color: color(i),
                mark: Mark::Dot,
            })
            .collect();
        let (w, h) = root.dim_in_pixel();
        let (body, legend) = root.split_vertically(h - legend_height(root, &entries));
        draw_legend(&legend, &entries)?;
        let error_name = if sweep.error == "regret_per_agent" {
            "regret per agent"
        } else {
            "model error Σ KL(true ‖ estimate), learners' mean"
        };
        let mut chart = ChartBuilder::on(&body)
            .caption(self.title, ("sans-serif", TITLE_PX))
            .margin(16)
            .margin_right(28)
            .x_label_area_size(56)
            .y_label_area_size(86)
            .build_cartesian_2d(
                (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)),
                (e_lo - pad)..(e_hi + pad),
            )?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .label_style(("sans-serif", TICK_PX))
            .axis_desc_style(("sans-serif", AXIS_PX))
            .x_label_formatter(&|x| tick(*x))
            .y_label_formatter(&|y| tick(*y))
            .x_desc("kB sent, up + down (rules that send nothing at the left edge)")
            .y_desc(error_name)
            .draw()?;
        let mut labels = Labels::default();
        for (i, (policy, n)) in series.iter().enumerate() {
            let color = color(i);
            let mut points: Vec<(f64, f64, String)> = sweep
                .rows
                .iter()
                .filter(|r| r.agents == *n && r.policy == *policy)
                .map(|r| (kb(r).max(lo), r.error(), r.share.clone()))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
            // The line joins the rules no cheaper rule beats: the frontier.
            let mut best = f64::INFINITY;
            let frontier: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| {
                    let on = p.1 < best;
                    best = best.min(p.1);
                    on
                })
                .map(|p| (p.0, p.1))
                .collect();
            chart.draw_series(LineSeries::new(frontier, color.stroke_width(1)))?;
            chart.draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), 4, color.filled())),
            )?;
            for p in &points {
                labels.reserve(chart.backend_coord(&(p.0, p.1)), (4, 4));
            }
            for p in &points {
                let at = chart.backend_coord(&(p.0, p.1));
                if let Some((x0, y0)) = labels.place(at, &p.2, (w as i32, h as i32)) {
                    // Left of the point, the text ends next to it whatever
                    // its true width.
                    let (anchor, h) = if x0 > at.0 {
                        ((x0, y0), HPos::Left)
                    } else {
                        ((at.0 - 6, y0), HPos::Right)
                    };
                    let style = ("sans-serif", LABEL_PX)
                        .into_font()
                        .into_text_style(root)
                        .pos(Pos::new(h, VPos::Top));
                    root.draw(&Text::new(p.2.clone(), anchor, style))?;
                    // A label away from its point gets a leader line to it.
                    let (_, th) = Labels::size(&p.2);
                    let near_x = if x0 > at.0 { x0 } else { at.0 - 6 };
                    let near_y = (at.1).clamp(y0, y0 + th);
                    if (x0, y0) != (at.0 + 6, at.1 - 14) {
                        root.draw(&PathElement::new(
                            vec![at, (near_x, near_y)],
                            color.mix(0.6).stroke_width(1),
                        ))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Label boxes placed so far, in pixels, so no label covers another or a
/// point.
#[derive(Default)]
struct Labels {
    taken: Vec<(i32, i32, i32, i32)>,
}

impl Labels {
    /// Width and height of a label in `LABEL_PX` sans-serif, generously.
    fn size(text: &str) -> (i32, i32) {
        (text.chars().count() as i32 * 8 + 2, LABEL_PX as i32 + 3)
    }

    fn reserve(&mut self, (x, y): (i32, i32), (hw, hh): (i32, i32)) {
        self.taken.push((x - hw, y - hh, x + hw, y + hh));
    }

    /// The top-left corner of the first free spot next to point `at`, or
    /// `None` if every spot collides (the label is left out rather than
    /// drawn over another).
    fn place(&mut self, (x, y): (i32, i32), text: &str, (w, h): (i32, i32)) -> Option<(i32, i32)> {
        let (tw, th) = Self::size(text);
        let spots = [
            (6, -th - 1),
            (6, 2),
            (-tw - 6, -th - 1),
            (-tw - 6, 2),
            (6, -2 * th - 1),
            (6, th + 2),
            (-tw - 6, -2 * th - 1),
            (-tw - 6, th + 2),
            (6, -3 * th - 1),
            (6, 2 * th + 2),
            (-tw - 6, -3 * th - 1),
            (-tw - 6, 2 * th + 2),
        ];
        for (dx, dy) in spots {
            let (x0, y0) = (x + dx, y + dy);
            let (x1, y1) = (x0 + tw, y0 + th);
            let inside = x0 >= 0 && y0 >= 0 && x1 <= w && y1 <= h;
            let free = self
                .taken
                .iter()
                .all(|&(a0, b0, a1, b1)| x1 <= a0 || a1 <= x0 || y1 <= b0 || b1 <= y0);
            if inside && free {
                self.taken.push((x0, y0, x1, y1));
                return Some((x0, y0));
            }
        }
        None
    }
}
