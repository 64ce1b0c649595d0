use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::metrics::TrialRecord;
use crate::observe::Observe;

/// A results folder. `trials.csv` is written row by row and flushed at every
/// record, so an interrupted run keeps everything it measured; other files
/// are written whole, through a temporary file and a rename.
pub struct ResultsDir {
    path: PathBuf,
    trials: csv::Writer<BufWriter<File>>,
}

impl ResultsDir {
    /// Creates the folder; refuses one that exists and is not empty.
    pub fn create(path: &Path) -> Result<Self> {
        // Failing here is about where the user pointed --out, not the run.
        let write_err = |source| Error::Unwritable {
            path: path.to_path_buf(),
            source,
        };
        if path.exists() {
            let mut entries = fs::read_dir(path).map_err(write_err)?;
            if entries.next().is_some() {
                return Err(Error::OutputExists {
                    path: path.to_path_buf(),
                });
            }
        }
        fs::create_dir_all(path).map_err(write_err)?;
        Self::reopen(path)
    }

    /// Reopens a folder of ours to continue an interrupted run: `trials.csv`
    /// starts over, since the resumed run writes every record again from its
    /// checkpoints.
    pub fn reopen(path: &Path) -> Result<Self> {
        let csv_path = path.join("trials.csv");
        let file = File::create(&csv_path).map_err(|source| Error::Unwritable {
            path: csv_path,
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            trials: csv::Writer::from_writer(BufWriter::new(file)),
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` atomically: temporary file, fsync, rename.
    pub fn write_file(&self, name: &str, contents: &[u8]) -> Result<PathBuf> {
        let target = self.path.join(name);
        let tmp = self.path.join(format!(".{name}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(contents)?;
            f.sync_all()?;
            fs::rename(&tmp, &target)
        };
        write().map_err(|source| Error::Write {
            path: target.clone(),
            source,
        })?;
        Ok(target)
    }

    /// Flushes `trials.csv` to the operating system.
    pub fn finish(&mut self) -> Result<()> {
        self.trials.flush().map_err(|source| Error::Write {
            path: self.path.join("trials.csv"),
            source,
        })
    }
}

impl Observe for ResultsDir {
    fn on_record(&mut self, record: &TrialRecord) -> Result<()> {
        let path = || self.path.join("trials.csv");
        self.trials.serialize(record).map_err(|e| Error::Write {
            path: path(),
            source: std::io::Error::other(e),
        })?;
        self.trials.flush().map_err(|source| Error::Write {
            path: path(),
            source,
        })
    }

    fn on_finish(&mut self) -> Result<()> {
        self.finish()
    }
}
