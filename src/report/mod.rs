//! What a run leaves behind: `trials.csv`, `summary.json`, a summary table
//! and figures as SVG and PNG; for a sweep, its table, its Pareto plot and,
//! over several policies, their curves side by side. [`run_in_folder`],
//! [`sweep_in_folder`] and [`resume`] run and write a whole results folder.

mod figure;
mod folder;
mod plot;
mod results_dir;
mod summary;
mod sweep;
mod table;

pub use folder::{
    MANIFEST, Manifest, fingerprint, resume, run_in_folder, run_in_folder_async, sweep_in_folder,
};
pub use plot::{write_curves, write_policy_curves};
pub use results_dir::{FolderLock, ResultsDir};
pub use summary::{Baselines, Final, LaiRobbins, ResultRow, Summary, TimingRow};
pub use sweep::{sweep_table, write_pareto};
pub use table::summary_table;
