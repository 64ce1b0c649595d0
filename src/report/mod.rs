//! What a run leaves behind: `trials.csv`, `summary.json`, a summary table
//! and figures as SVG and PNG; for a sweep, its table, its Pareto plot and,
//! over several policies, their curves side by side. [`run_in_folder`],
//! [`sweep_in_folder`] and [`resume`] run and write a whole results folder.

#[cfg(feature = "plot")]
mod figure;
mod folder;
#[cfg(feature = "plot")]
mod pareto;
#[cfg(feature = "plot")]
mod plot;
mod results_dir;
mod table;
#[cfg(feature = "plot")]
mod words;

pub use folder::{
    MANIFEST, Manifest, fingerprint, finish_in_folder, resume, run_in_folder, run_in_folder_async,
    sweep_in_folder,
};
#[cfg(feature = "plot")]
pub use pareto::write_pareto;
#[cfg(feature = "plot")]
pub use plot::{write_curves, write_policy_curves};
pub use results_dir::{FolderLock, ResultsDir};
pub use table::{summary_table, sweep_table};
