//! Helpers shared by the integration tests; each test crate uses some.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parbayes::Observe;
use parbayes::record::TrialRecord;

/// Runs the `parbayes` binary in `cwd`.
pub fn parbayes(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parbayes"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// What a finished command printed on stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Raises the stop flag once a record at or after `at` is seen.
pub struct StopAt {
    pub at: u64,
    pub flag: Arc<AtomicBool>,
}

impl Observe for StopAt {
    fn on_record(&mut self, record: &TrialRecord) -> parbayes::Result<()> {
        if record.trial >= self.at {
            self.flag.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
pub fn linear_solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap();
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (upper, lower) = a.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for (offset, row) in lower.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[col + 1 + offset] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x
}
