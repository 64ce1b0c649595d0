//! What a run leaves behind: `trials.csv`, `summary.json`, a summary table
//! and SVG plots; for a sweep, its table and Pareto plot. [`run_in_folder`],
//! [`sweep_in_folder`] and [`resume`] run and write a whole results folder.

mod folder;
mod plot;
mod results_dir;
mod summary;
mod sweep;
mod table;

pub use folder::{MANIFEST, Manifest, resume, run_in_folder, run_in_folder_async, sweep_in_folder};
pub use plot::write_curves_svg;
pub use results_dir::{FolderLock, ResultsDir};
pub use summary::{Baselines, Final, LaiRobbins, ResultRow, Summary, TimingRow};
pub use sweep::{sweep_table, write_pareto_svg};
pub use table::summary_table;
