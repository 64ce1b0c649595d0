//! A labelled dataset as a contextual bandit, the way the contextual-bandit
//! bake-off builds one (Bietti, Agarwal & Langford 2021): one arm per
//! class, reward 1 when the arm is the row's label, and 0 otherwise.

use std::path::Path;
use std::sync::Arc;

use rand::Rng;

use super::contextual::ContextualTask;
use super::stream::RowStream;
use crate::error::{Error, Result};
use crate::model::{MAX_FEATURES, linear_width as width};

/// The largest dataset file read, in bytes.
pub const MAX_DATASET_BYTES: u64 = 512 << 20;

/// Labelled rows of numeric features, checked once: every feature finite,
/// every label a whole number, two classes or more. Features are
/// standardised (mean 0, standard deviation 1 over the rows; a constant
/// feature becomes 0) unless told not to, and every row gains a constant
/// 1 as its last feature, so a linear model has an intercept.
///
/// ```
/// use parbayes::env::Dataset;
///
/// let data = Dataset::new(vec!["x".into()], vec![vec![1.0], vec![3.0]], vec![7, 2], true)?;
/// assert_eq!((data.rows(), data.dim(), data.arms()), (2, 2, 2));
/// assert_eq!(data.row(0), [-1.0, 1.0]);
/// // Arms are the classes in increasing order: label 2 is arm 0.
/// assert_eq!((data.label(0), data.class(0)), (1, 2));
/// # Ok::<(), parbayes::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    features: Vec<String>,
    dim: usize,
    x: Vec<f64>,
    /// Each row's arm.
    labels: Vec<u32>,
    /// The label value of each arm, increasing.
    classes: Vec<i64>,
}

impl Dataset {
    /// Rows of `features` (named by `names`) with their labels.
    pub fn new(
        names: Vec<String>,
        rows: Vec<Vec<f64>>,
        labels: Vec<i64>,
        standardize: bool,
    ) -> Result<Self> {
        let source = "dataset";
        check_dim(source, names.len())?;
        if rows.len() != labels.len() {
            return Err(Error::invalid(
                source,
                "labels",
                format!("{} labels for {} rows", labels.len(), rows.len()),
            ));
        }
        let mut x = Vec::with_capacity(rows.len() * names.len());
        for (i, row) in rows.iter().enumerate() {
            if row.len() != names.len() {
                return Err(Error::invalid(
                    source,
                    format!("row {i}"),
                    format!("{} features; there are {} names", row.len(), names.len()),
                ));
            }
            if let Some(k) = row.iter().position(|v| !v.is_finite()) {
                return Err(Error::invalid(
                    source,
                    format!("row {i}, column `{}`", names[k]),
                    format!("{}; features are finite", row[k]),
                ));
            }
            x.extend_from_slice(row);
        }
        Self::checked(source, names, x, labels, standardize)
    }

    /// Reads a CSV file with a header: the column `label` holds each row's
    /// class (a whole number), every other column a numeric feature. Every
    /// malformed row is refused, naming the file, the row (as numbered in
    /// the file, the header being row 1) and the column.
    pub fn from_csv(path: &Path, label: &str, standardize: bool) -> Result<Self> {
        let text = crate::error::read_text(path, MAX_DATASET_BYTES, "a dataset is CSV text")?;
        Self::from_csv_text(&text, &path.display().to_string(), label, standardize)
    }

    /// [`from_csv`](Self::from_csv) of CSV text; `source` names it in
    /// errors.
    pub fn from_csv_text(text: &str, source: &str, label: &str, standardize: bool) -> Result<Self> {
        let (names, x, labels) = read_csv(text, source, Some(label))?;
        Self::checked(source, names, x, labels, standardize)
    }

    fn checked(
        source: &str,
        features: Vec<String>,
        mut x: Vec<f64>,
        labels: Vec<i64>,
        standardize: bool,
    ) -> Result<Self> {
        let rows = labels.len();
        if rows == 0 {
            return Err(Error::invalid(source, "rows", "none; a dataset needs rows"));
        }
        let mut classes = labels.clone();
        classes.sort_unstable();
        classes.dedup();
        if classes.len() < 2 {
            return Err(Error::invalid(
                source,
                "label",
                format!(
                    "every one of the {rows} rows has class {}; a bandit needs two classes or more",
                    classes[0]
                ),
            ));
        }
        let n = features.len();
        if standardize {
            for k in 0..n {
                let column = || x.iter().skip(k).step_by(n);
                let mean = column().sum::<f64>() / rows as f64;
                let var = column().map(|v| (v - mean).powi(2)).sum::<f64>() / rows as f64;
                let sd = var.sqrt();
                for v in x.iter_mut().skip(k).step_by(n) {
                    *v = if sd > 0.0 { (*v - mean) / sd } else { 0.0 };
                }
            }
        }
        // Each row gains the constant 1.
        let dim = n + 1;
        let mut with_bias = Vec::with_capacity(rows * dim);
        for row in x.chunks_exact(n) {
            with_bias.extend_from_slice(row);
            with_bias.push(1.0);
        }
        let labels = labels
            .iter()
            .map(|l| classes.binary_search(l).expect("a class of its own") as u32)
            .collect();
        Ok(Self {
            features,
            dim,
            x: with_bias,
            labels,
            classes,
        })
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Numbers per row: the features and the constant 1.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The feature columns' names.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// Arms: one per class.
    pub fn arms(&self) -> usize {
        self.classes.len()
    }

    /// Row `i`'s features (standardised, if asked) and the constant 1.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }

    /// Row `i`'s arm.
    pub fn label(&self, i: usize) -> usize {
        self.labels[i] as usize
    }

    /// The label value arm `arm` stands for.
    pub fn class(&self, arm: usize) -> i64 {
        self.classes[arm]
    }
}

/// A whole number, written as an integer or as a float with nothing after
/// the point (`3`, `3.0`).
/// The rows of CSV text with a header: every column a finite number but
/// the `label` column, if named, which holds whole numbers. Returns the
/// feature names, the features row after row and the labels.
pub(crate) fn read_csv(
    text: &str,
    source: &str,
    label: Option<&str>,
) -> Result<(Vec<String>, Vec<f64>, Vec<i64>)> {
    let source = source.to_string();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| Error::invalid(&source, "row 1", format!("{e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let at = match label {
        None => None,
        Some(label) => Some(header.iter().position(|h| h == label).ok_or_else(|| {
            Error::invalid(
                &source,
                "row 1",
                format!(
                    "no column `{label}`; the columns are {}",
                    clip_list(&header)
                ),
            )
        })?),
    };
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|(k, _)| Some(*k) != at)
        .map(|(_, h)| h.clone())
        .collect();
    // Refused before a row is read: the statistics of one key alone
    // would not fit.
    check_dim(&source, names.len())?;
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record =
            record.map_err(|e| Error::invalid(&source, format!("row {line}"), e.to_string()))?;
        if record.len() != header.len() {
            return Err(Error::invalid(
                &source,
                format!("row {line}"),
                format!("{} fields; the header has {}", record.len(), header.len()),
            ));
        }
        for (k, cell) in record.iter().enumerate() {
            let cell = cell.trim();
            let at_cell = || format!("row {line}, column `{}`", header[k]);
            if Some(k) == at {
                labels.push(parse_label(cell).ok_or_else(|| {
                    Error::invalid(
                        &source,
                        at_cell(),
                        format!("`{cell}` is not a class; labels are whole numbers"),
                    )
                })?);
                continue;
            }
            match cell.parse::<f64>() {
                Ok(v) if v.is_finite() => x.push(v),
                _ if cell.is_empty() => {
                    return Err(Error::invalid(
                        &source,
                        at_cell(),
                        "empty; every feature needs a number",
                    ));
                }
                _ => {
                    return Err(Error::invalid(
                        &source,
                        at_cell(),
                        format!("`{cell}` is not a finite number"),
                    ));
                }
            }
        }
    }
    Ok((names, x, labels))
}

fn parse_label(cell: &str) -> Option<i64> {
    if let Ok(v) = cell.parse::<i64>() {
        return Some(v);
    }
    let v: f64 = cell.parse().ok()?;
    (v.is_finite() && v.fract() == 0.0 && v.abs() < 2f64.powi(53)).then_some(v as i64)
}

/// `dim` features are refused where one key's statistics, d(d+1)/2 + d + 2
/// numbers for d + 1 with the constant, pass what a learner may hold.
fn check_dim(source: &str, features: usize) -> Result<()> {
    if features == 0 {
        return Err(Error::invalid(
            source,
            "features",
            "none; a dataset needs a feature column besides the label",
        ));
    }
    if features + 1 > MAX_FEATURES {
        let bytes = width(features + 1) as f64 * 8.0;
        return Err(Error::invalid(
            source,
            "features",
            format!(
                "{features}: each arm's statistics would take {:.1} GB per learner; use at most {} features",
                bytes / 1e9,
                MAX_FEATURES - 1
            ),
        ));
    }
    Ok(())
}

fn clip_list(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(8).map(String::as_str).collect();
    let more = names.len().saturating_sub(8);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// One learner's stream through a [`Dataset`]: its rows in an order of its
/// own, shuffled afresh for every pass.
///
/// ```
/// use std::sync::Arc;
/// use parbayes::env::{Classification, ContextualTask, Dataset};
/// use rand::SeedableRng;
///
/// let data = Dataset::new(vec!["x".into()], vec![vec![0.0], vec![1.0], vec![2.0]], vec![0, 1, 1], false)?;
/// let mut task = Classification::new(Arc::new(data));
/// let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
/// let mut x = [0.0; 2];
/// let mut seen = Vec::new();
/// for _ in 0..3 {
///     task.next_context(&mut rng, &mut x);
///     seen.push(x[0]);
///     // The label's arm pays 1, and it is the best arm.
///     let best = (0..2).find(|a| task.expected_reward(*a) == Some(1.0)).unwrap();
///     assert_eq!(task.reward(best, &mut rng), 1.0);
/// }
/// seen.sort_by(f64::total_cmp);
/// assert_eq!(seen, [0.0, 1.0, 2.0], "one pass sees every row once");
/// # Ok::<(), parbayes::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    data: Arc<Dataset>,
    stream: RowStream,
}

impl Classification {
    /// A stream through `data`; its first pass is shuffled at the first
    /// context.
    pub fn new(data: Arc<Dataset>) -> Self {
        let stream = RowStream::new(data.rows());
        Self { data, stream }
    }

    /// The dataset.
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// The row being decided on.
    pub fn current_row(&self) -> usize {
        self.stream.current()
    }
}

impl ContextualTask for Classification {
    fn kind(&self) -> &str {
        "classification"
    }

    fn copy_bytes(&self) -> u64 {
        self.stream.bytes()
    }

    fn arms(&self) -> usize {
        self.data.arms()
    }

    fn context_len(&self) -> usize {
        self.data.dim()
    }

    fn next_context<R: Rng + ?Sized>(&mut self, rng: &mut R, out: &mut [f64]) {
        let row = self.stream.advance(rng);
        out.copy_from_slice(self.data.row(row));
    }

    fn reward<R: Rng + ?Sized>(&mut self, arm: usize, _rng: &mut R) -> f64 {
        if arm == self.data.label(self.stream.current()) {
            1.0
        } else {
            0.0
        }
    }

    fn expected_reward(&self, arm: usize) -> Option<f64> {
        Some(if arm == self.data.label(self.stream.current()) {
            1.0
        } else {
            0.0
        })
    }

    fn best_expected_reward(&self) -> Option<f64> {
        Some(1.0)
    }

    fn stream_position(&self) -> Vec<u64> {
        self.stream.position()
    }

    fn resume_at(&mut self, position: &[u64]) -> Result<(), String> {
        self.stream.resume_at(position)
    }
}
