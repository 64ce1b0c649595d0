//! Checkpoints of lockstep experiments: everything needed to continue one
//! exactly, written atomically (temporary file, fsync, rename), one file per
//! (agent count, repetition), beside an append-only file of its records.

use std::fs::{self, File};
use std::io::{BufWriter, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::learner::LearnerState;
use crate::record::{TrialRecord, Window};
use crate::share::{Aggregator, OthersUpdate, Schedule};
use crate::share::{Dirichlet, Family};

/// One experiment after `trial` trials.
/// Generic over what a learner saves (`S`) and the posterior family of its
/// aggregator (`F`); a tabular run's by default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "S: Serialize, F: Family",
    deserialize = "S: serde::de::DeserializeOwned, F: Family"
))]
pub struct ExperimentSnapshot<S = LearnerState, F: Family = Dirichlet> {
    /// The experiment's agent count.
    pub agents: u32,
    /// Its repetition.
    pub rep: u32,
    /// Trials completed.
    pub trial: u64,
    /// Every learner, in id order; empty once the experiment has finished.
    pub learners: Vec<S>,
    /// The aggregator; `None` once the experiment has finished.
    pub aggregator: Option<Aggregator<F>>,
    /// Answers to deliver at the start of the next trial, in learner order.
    pub pending: Vec<OthersUpdate>,
    /// Where the protocol's schedule stands.
    pub schedule: Schedule,
    /// Where the reward window began.
    pub window: Window,
    /// Every record so far. Kept in a records file of its own, appended at
    /// each checkpoint, so a checkpoint's cost does not grow with the run.
    #[serde(skip)]
    pub records: Vec<TrialRecord>,
    /// How many records the records file holds for this checkpoint ...
    pub records_count: u64,
    /// ... in its first this many bytes (more are an append cut short).
    pub records_bytes: u64,
    /// Whether every trial has run.
    pub finished: bool,
    /// Wall-clock seconds spent so far.
    pub seconds: f64,
}

/// Where checkpoints go and how often.
#[derive(Debug, Clone, Default)]
pub struct Checkpoints {
    /// `None`: no checkpoints.
    pub dir: Option<PathBuf>,
    /// Every this many trials (and when stopped); `None`: only when stopped.
    pub every: Option<u64>,
    /// Continue from the snapshots in `dir`.
    pub resume: bool,
    /// What run the checkpoints belong to (see
    /// [`fingerprint`](crate::report::fingerprint)): written into each, and a
    /// checkpoint of another run is refused when read.
    pub run: String,
}

/// A full disk is an I/O error, not an encoding one.
fn io_error(e: rmp_serde::encode::Error) -> std::io::Error {
    match e {
        rmp_serde::encode::Error::InvalidValueWrite(
            rmp::encode::ValueWriteError::InvalidMarkerWrite(io)
            | rmp::encode::ValueWriteError::InvalidDataWrite(io),
        ) => io,
        other => std::io::Error::other(other),
    }
}

/// A checkpoint file: the run it belongs to, then the snapshot.
#[derive(Serialize)]
#[serde(bound = "S: Serialize, F: Family")]
struct Stamped<'a, S, F: Family> {
    run: &'a str,
    snapshot: &'a ExperimentSnapshot<S, F>,
}

#[derive(Deserialize)]
#[serde(bound = "S: serde::de::DeserializeOwned, F: Family")]
struct StampedOwned<S, F: Family> {
    run: String,
    snapshot: ExperimentSnapshot<S, F>,
}

impl Checkpoints {
    fn file(dir: &Path, agents: u32, rep: u32) -> PathBuf {
        dir.join(format!("agents-{agents}-rep-{rep}.msgpack"))
    }

    fn records_file(dir: &Path, agents: u32, rep: u32) -> PathBuf {
        dir.join(format!("agents-{agents}-rep-{rep}.records"))
    }

    /// Appends `records` to the experiment's records file, whose first
    /// `on_disk.1` bytes hold the `on_disk.0` records written so far
    /// (anything after them is the remains of an append cut short, and is
    /// dropped); returns the new count and length. Does nothing without a
    /// directory.
    pub fn append_records(
        &self,
        agents: u32,
        rep: u32,
        on_disk: (u64, u64),
        records: &[TrialRecord],
    ) -> Result<(u64, u64)> {
        let Some(dir) = &self.dir else {
            return Ok(on_disk);
        };
        let path = Self::records_file(dir, agents, rep);
        let append = || -> std::io::Result<u64> {
            fs::create_dir_all(dir)?;
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            file.set_len(on_disk.1)?;
            let mut out = BufWriter::new(file);
            out.seek(SeekFrom::End(0))?;
            for record in records {
                rmp_serde::encode::write_named(&mut out, record).map_err(io_error)?;
            }
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok(file.metadata()?.len())
        };
        let bytes = append().map_err(|source| Error::Write { path, source })?;
        Ok((on_disk.0 + records.len() as u64, bytes))
    }

    /// The first `count` records of the experiment's records file, from its
    /// first `bytes` bytes.
    fn read_records(
        &self,
        dir: &Path,
        agents: u32,
        rep: u32,
        count: u64,
        bytes: u64,
    ) -> Result<Vec<TrialRecord>> {
        let path = Self::records_file(dir, agents, rep);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && count == 0 => Vec::new(),
            Err(source) => return Err(Error::Read { path, source }),
        };
        let damaged = |problem: String| {
            Error::invalid(
                path.display().to_string(),
                "(records)",
                format!("{problem}; the checkpoint's records are damaged"),
            )
        };
        let held = data
            .get(..bytes as usize)
            .ok_or_else(|| damaged(format!("{} bytes, not {bytes}", data.len())))?;
        let mut reader = held;
        let mut records = Vec::with_capacity(count as usize);
        for _ in 0..count {
            records.push(rmp_serde::from_read(&mut reader).map_err(|e| damaged(e.to_string()))?);
        }
        Ok(records)
    }

    /// Writes `snapshot` atomically; does nothing without a directory.
    pub fn write<S: Serialize, F: Family>(
        &self,
        snapshot: &ExperimentSnapshot<S, F>,
    ) -> Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let target = Self::file(dir, snapshot.agents, snapshot.rep);
        let tmp = target.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            fs::create_dir_all(dir)?;
            let mut out = BufWriter::new(File::create(&tmp)?);
            let stamped = Stamped {
                run: &self.run,
                snapshot,
            };
            rmp_serde::encode::write_named(&mut out, &stamped).map_err(io_error)?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            fs::rename(&tmp, &target)?;
            Ok(())
        };
        write().map_err(|source| Error::Write {
            path: target.clone(),
            source,
        })
    }

    /// The snapshot of one tabular experiment, if resuming and there is
    /// one (see [`read_as`](Self::read_as)).
    pub fn read(&self, agents: u32, rep: u32) -> Result<Option<ExperimentSnapshot>> {
        self.read_as(agents, rep)
    }

    /// The snapshot of one experiment whose learners save `S` and share
    /// evidence of family `F`, if resuming and there is one.
    pub fn read_as<S: serde::de::DeserializeOwned, F: Family>(
        &self,
        agents: u32,
        rep: u32,
    ) -> Result<Option<ExperimentSnapshot<S, F>>> {
        let Some(dir) = self.dir.as_ref().filter(|_| self.resume) else {
            return Ok(None);
        };
        let path = Self::file(dir, agents, rep);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Read { path, source }),
        };
        let bad =
            |problem: String| Error::invalid(path.display().to_string(), "(checkpoint)", problem);
        let stamped: StampedOwned<S, F> = rmp_serde::from_slice(&bytes).map_err(|e| {
            bad(format!(
                "{e}; the checkpoint is damaged or from another version"
            ))
        })?;
        let mut s = stamped.snapshot;
        if stamped.run != self.run {
            return Err(bad(
                "belongs to another run (the scenario or its settings differ); resume continues \
                 only the run that was started"
                    .into(),
            ));
        }
        let learners = if s.finished { 0 } else { agents as usize };
        if (s.agents, s.rep, s.learners.len()) != (agents, rep, learners)
            || s.finished == s.aggregator.is_some()
        {
            return Err(bad(format!(
                "holds {} learners of experiment (agents {}, rep {}), not experiment (agents \
                 {agents}, rep {rep}); the checkpoint is damaged",
                s.learners.len(),
                s.agents,
                s.rep
            )));
        }
        s.records = self.read_records(dir, agents, rep, s.records_count, s.records_bytes)?;
        Ok(Some(s))
    }
}
