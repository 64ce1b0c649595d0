//! What every figure shares: one drawing written as SVG and as PNG, axis
//! ticks without pointless decimals, log axes labelled at 1-2-5 steps, and
//! legends in a strip of their own so they cover no curve.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};

/// The font every figure is drawn in, shipped so that PNGs render the same
/// on a machine with no fonts installed (DejaVu Sans; its licence is beside
/// it).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Font sizes in pixels, for figures read at print size (a figure about
/// 1400 px wide on a page, or half that on a slide).
pub(crate) const TITLE_PX: u32 = 26;
/// A panel's caption.
pub(crate) const CAPTION_PX: u32 = 20;
/// Axis descriptions.
pub(crate) const AXIS_PX: u32 = 18;
/// Tick labels.
pub(crate) const TICK_PX: u32 = 16;
/// Legend entries.
pub(crate) const LEGEND_PX: u32 = 17;

/// What drawing can fail with, whatever the backend.
pub(crate) type Drawn = std::result::Result<(), Box<dyn std::error::Error>>;

/// A figure that can draw itself on any plotters backend.
pub(crate) trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws on `root`, which is already white.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn
    where
        DB::ErrorType: 'static;
}

/// Writes `figure` to `<stem>.svg` and `<stem>.png`; returns both paths.
pub(crate) fn write_figure(stem: &Path, figure: &impl Figure) -> Result<[PathBuf; 2]> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The bytes are a valid font, checked by every test that draws.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |e: Box<dyn std::error::Error>| Error::Write {
            path,
            source: std::io::Error::other(e.to_string()),
        }
    };
    let size = figure.size();
    // Drawn beside the target and renamed over it, so an interrupted run
    // leaves the old figure or the new one, never half of one. The
    // bitmap backend picks its format from the extension, which stays last.
    let svg_part = stem.with_extension("part.svg");
    let png_part = stem.with_extension("part.png");
    render(SVGBackend::new(&svg_part, size).into_drawing_area(), figure).map_err(failed(&svg))?;
    render(
        BitMapBackend::new(&png_part, size).into_drawing_area(),
        figure,
    )
    .map_err(failed(&png))?;
    for (part, path) in [(&svg_part, &svg), (&png_part, &png)] {
        std::fs::rename(part, path).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok([svg, png])
}

/// The `i`-th series colour: Tableau's ten, which stay apart on screen and
/// in print (plotters' palette starts with a yellow that vanishes on white).
pub(crate) fn color(i: usize) -> RGBAColor {
    const TAB10: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = TAB10[i % TAB10.len()];
    RGBColor(r, g, b).to_rgba()
}

/// Draws `figure` on a white `root` and writes it out.
fn render<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, figure: &impl Figure) -> Drawn
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    figure.draw(&root)?;
    root.present()?;
    Ok(())
}

/// A tick label with as many decimals as the value needs: `140`, `12.5`,
/// `0.25`, `0.00002`.
pub(crate) fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}").replace("-0", "0");
    }
    let a = v.abs();
    let decimals = if a >= 100.0 {
        0
    } else if a >= 1.0 {
        2
    } else {
        (-a.log10().floor()) as usize + 2
    };
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Ticks for a log axis over `[lo, hi]`: powers of ten, or 1-2-5 steps, or
/// every digit: the coarsest that gives at least 4 labels, at most 10. A
/// range too narrow for that (within a decade or so) gets evenly spaced
/// round ticks instead.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let steps: [&[f64]; 4] = [
        &[1.0],
        &[1.0, 2.0, 5.0],
        &[1.0, 2.0, 3.0, 5.0],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    ];
    let ticks = |mantissas: &[f64]| -> Vec<f64> {
        let first = lo.log10().floor() as i32;
        let last = hi.log10().ceil() as i32;
        (first..=last)
            .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|t| (lo..=hi).contains(t))
            .collect()
    };
    for mantissas in steps {
        let chosen = ticks(mantissas);
        if chosen.len() > 10 {
            // Many decades: every other power of ten.
            return chosen.into_iter().step_by(2).collect();
        }
        if chosen.len() >= 4 {
            return chosen;
        }
    }
    linear_ticks(lo, hi)
}

/// 4 to 10 evenly spaced ticks in `[lo, hi]` at a round step (1, 2, 2.5 or
/// 5 times a power of ten).
pub(crate) fn linear_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) {
        return vec![lo];
    }
    let decade = 10f64.powf((span / 4.0).log10().floor());
    let at = |step: f64| -> Vec<f64> {
        let first = (lo / step).ceil() as i64;
        let last = (hi / step).floor() as i64;
        (first..=last).map(|k| k as f64 * step).collect()
    };
    [5.0, 2.5, 2.0, 1.0]
        .iter()
        .map(|m| at(m * decade))
        .find(|ticks| ticks.len() >= 4)
        .unwrap_or_else(|| at(decade / 2.0))
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mark {
    /// A line of this width.
    Line(u32),
    /// A dashed line.
    Dashed,
    /// A dotted line.
    Dotted,
    /// A filled dot.
    Dot,
}

/// One legend entry.
pub(crate) struct Entry {
    pub label: String,
    pub color: RGBAColor,
    pub mark: Mark,
}

/// The legend's entries laid out in rows that fit `area`'s width.
fn layout<'a, DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &'a [Entry],
) -> Vec<Vec<(i32, &'a Entry)>> {
    let (width, _) = area.dim_in_pixel();
    let font = ("sans-serif", LEGEND_PX).into_font().into_text_style(area);
    let mut rows: Vec<Vec<(i32, &Entry)>> = vec![Vec::new()];
    let mut used = 0;
    for e in entries {
        let (text, _) = area
            .estimate_text_size(&e.label, &font)
            .unwrap_or((e.label.chars().count() as u32 * 10, LEGEND_PX));
        // The mark, a gap, the text and the space before the next entry.
        let w = 26 + text as i32 + 18;
        if used + w > width as i32 - 16 && !rows.last().is_some_and(Vec::is_empty) {
            rows.push(Vec::new());
            used = 0;
        }
        used += w;
        rows.last_mut().expect("one row at least").push((w, e));
    }
    rows
}

/// One legend row's height.
const ROW_PX: u32 = 26;

/// The height in pixels of the strip [`draw_legend`] needs on `area`.
pub(crate) fn legend_height<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
) -> u32 {
    layout(area, entries).len() as u32 * ROW_PX + 10
}

/// Draws `entries` left to right across `area`, centred, wrapping onto as
/// many rows as it needs.
pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let (width, _) = area.dim_in_pixel();
    let style = ("sans-serif", LEGEND_PX)
        .into_font()
        .into_text_style(area)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, row) in layout(area, entries).iter().enumerate() {
        let total: i32 = row.iter().map(|(w, _)| w).sum();
        let mut x = (width as i32 - total) / 2;
        let y = 16 + ROW_PX as i32 * i as i32;
        for (w, e) in row {
            match e.mark {
                Mark::Line(px) => area.draw(&PathElement::new(
                    vec![(x, y), (x + 22, y)],
                    e.color.stroke_width(px),
                ))?,
                Mark::Dashed => {
                    for x0 in [x, x + 8, x + 16] {
                        area.draw(&PathElement::new(
                            vec![(x0, y), (x0 + 5, y)],
                            e.color.stroke_width(2),
                        ))?;
                    }
                }
                Mark::Dotted => {
                    for x0 in [x, x + 6, x + 12, x + 18] {
                        area.draw(&PathElement::new(
                            vec![(x0, y), (x0 + 2, y)],
                            e.color.stroke_width(2),
                        ))?;
                    }
                }
                Mark::Dot => area.draw(&Circle::new((x + 11, y), 4, e.color.filled()))?,
            }
            area.draw(&Text::new(e.label.clone(), (x + 26, y), style.clone()))?;
            x += w;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_carry_no_pointless_decimals() {
        assert_eq!(tick(140.0), "140");
        assert_eq!(tick(20.0), "20");
        assert_eq!(tick(12.5), "12.5");
        assert_eq!(tick(2.25), "2.25");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(0.001), "0.001");
        assert_eq!(tick(2e-5), "0.00002");
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(-3.0), "-3");
    }

    #[test]
    fn log_axes_get_four_to_ten_labels() {
        assert_eq!(log_ticks(0.05, 300.0), vec![0.1, 1.0, 10.0, 100.0]);
        assert_eq!(
            log_ticks(0.5, 300.0),
            vec![0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0]
        );
        assert_eq!(log_ticks(3.0, 40.0), vec![3.0, 5.0, 10.0, 20.0, 30.0]);
        assert_eq!(log_ticks(22.0, 60.0), vec![30.0, 40.0, 50.0, 60.0]);
        assert_eq!(
            log_ticks(1700.0, 3500.0),
            vec![2000.0, 2500.0, 3000.0, 3500.0]
        );
        assert_eq!(linear_ticks(0.0, 1.0), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let wide = log_ticks(1e-6, 1e6);
        assert!((4..=10).contains(&wide.len()), "{wide:?}");
    }
}
