//! What a run leaves behind: `trials.csv`, `summary.json`, a summary table
//! and SVG plots.

mod plot;
mod results_dir;
mod summary;
mod table;

pub use plot::write_curves_svg;
pub use results_dir::ResultsDir;
pub use summary::{Final, LaiRobbins, ResultRow, Summary, TimingRow};
pub use table::summary_table;
