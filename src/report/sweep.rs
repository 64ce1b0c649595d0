use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};
use crate::sweep::Sweep;

/// The sweep as an aligned text table, one line per (rule, agent count).
pub fn sweep_table(sweep: &Sweep) -> String {
    let mut out = String::new();
    let error = if sweep.error == "regret_per_agent" {
        "regret/agent"
    } else {
        "model KL"
    };
    let _ = writeln!(
        out,
        "{:>6}  {:<16} {:>12} {:>9} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "agents",
        "share",
        error,
        "gain",
        "msgs up",
        "msgs down",
        "rows up",
        "rows down",
        "kB up+down"
    );
    let mut rows: Vec<_> = sweep.rows.iter().collect();
    rows.sort_by_key(|r| r.agents);
    for r in rows {
        let gain = r
            .accuracy_gain
            .map_or("-".to_string(), |g| format!("{:.1}%", 100.0 * g));
        let _ = writeln!(
            out,
            "{:>6}  {:<16} {:>12.5} {:>9} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>12.1}",
            r.agents,
            r.share,
            r.error(),
            gain,
            r.messages_up,
            r.messages_down,
            r.rows_up,
            r.rows_down,
            (r.bytes_up + r.bytes_down) / 1000.0
        );
    }
    out
}

/// Communication against accuracy: bytes (up + down, log scale) against the
/// error the gain compares, a point per rule, a series per agent count.
/// Rules that send nothing sit on the left edge.
pub fn write_pareto_svg(path: &Path, title: &str, sweep: &Sweep) -> Result<()> {
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let kb = |r: &crate::sweep::SweepRow| (r.bytes_up + r.bytes_down) / 1000.0;
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
        let mut agents: Vec<u32> = sweep.rows.iter().map(|r| r.agents).collect();
        agents.sort_unstable();
        agents.dedup();
        let error_name = if sweep.error == "regret_per_agent" {
            "regret per agent"
        } else {
            "model error Σ KL(θ ‖ θ̂), learners' mean"
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d((lo..hi).log_scale(), (e_lo - pad)..(e_hi + pad))?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("kB sent, up + down (rules that send nothing at the left edge)")
            .y_desc(error_name)
            .draw()?;
        let mut labels = Labels::default();
        for (i, n) in agents.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let mut points: Vec<(f64, f64, String)> = sweep
                .rows
                .iter()
                .filter(|r| r.agents == *n)
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
            chart
                .draw_series(LineSeries::new(frontier, color.stroke_width(1)))?
                .label(format!("N = {n}"))
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
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
                if let Some((x0, y0)) = labels.place(at, &p.2, (900, 560)) {
                    // Left of the point, the text ends next to it whatever
                    // its true width.
                    let (anchor, h) = if x0 > at.0 {
                        ((x0, y0), HPos::Left)
                    } else {
                        ((at.0 - 6, y0), HPos::Right)
                    };
                    let style = ("sans-serif", 11)
                        .into_font()
                        .into_text_style(&root)
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

/// Label boxes placed so far, in pixels, so no label covers another or a
/// point.
#[derive(Default)]
struct Labels {
    taken: Vec<(i32, i32, i32, i32)>,
}

impl Labels {
    /// Width and height of a label in 11 px sans-serif, generously.
    fn size(text: &str) -> (i32, i32) {
        (text.chars().count() as i32 * 6 + 2, 13)
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
            (6, -14),
            (6, 2),
            (-tw - 6, -14),
            (-tw - 6, 2),
            (6, -28),
            (6, 16),
            (-tw - 6, -28),
            (-tw - 6, 16),
            (6, -42),
            (6, 30),
            (-tw - 6, -42),
            (-tw - 6, 30),
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
