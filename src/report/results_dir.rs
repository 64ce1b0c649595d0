use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::observe::Observe;
use crate::record::TrialRecord;

/// A results folder. `trials.csv` is written row by row and flushed at every
/// record, so an interrupted run keeps everything it measured; other files
/// are written whole, through a temporary file and a rename. One writer at a
/// time: the folder is locked (an OS file lock on `.lock`) for as long as
/// this value lives, and a second writer is refused.
pub struct ResultsDir {
    path: PathBuf,
    trials: csv::Writer<BufWriter<File>>,
    _lock: FolderLock,
}

/// The exclusive lock on a results folder; released when dropped, and by
/// the operating system when the process dies.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

impl FolderLock {
    /// Locks the results folder `path`, or refuses if another process (or
    /// another value here) holds it.
    pub fn acquire(path: &Path) -> Result<Self> {
        let lock_path = path.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| Error::Unwritable {
                path: path.to_path_buf(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
                path: path.to_path_buf(),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(Error::Unwritable {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

impl ResultsDir {
    /// Creates the folder; refuses one that exists and is not empty.
    pub fn create(path: &Path) -> Result<Self> {
        // Failing here is about where the user pointed --out, not the run.
        let write_err = |source| Error::Unwritable {
            path: path.to_path_buf(),
            source,
        };
        // Anything but a lock file (which may belong to a run under way).
        let holds_files = || -> Result<bool> {
            Ok(fs::read_dir(path)
                .map_err(write_err)?
                .filter_map(|e| e.ok())
                .any(|e| e.file_name() != ".lock"))
        };
        if path.exists() && holds_files()? {
            return Err(Error::OutputExists {
                path: path.to_path_buf(),
            });
        }
        fs::create_dir_all(path).map_err(write_err)?;
        let lock = FolderLock::acquire(path)?;
        // Another writer may have filled it between the look and the lock.
        if holds_files()? {
            return Err(Error::OutputExists {
                path: path.to_path_buf(),
            });
        }
        Self::reopen_locked(path, lock)
    }

    /// Reopens a folder of ours to continue an interrupted run: `trials.csv`
    /// starts over, since the resumed run writes every record again from its
    /// checkpoints.
    pub fn reopen(path: &Path) -> Result<Self> {
        Self::reopen_locked(path, FolderLock::acquire(path)?)
    }

    /// [`reopen`](Self::reopen) a folder already locked, after checking what
    /// it holds.
    pub fn reopen_locked(path: &Path, lock: FolderLock) -> Result<Self> {
        let csv_path = path.join("trials.csv");
        let file = File::create(&csv_path).map_err(|source| Error::Unwritable {
            path: csv_path,
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            trials: csv::Writer::from_writer(BufWriter::new(file)),
            _lock: lock,
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
