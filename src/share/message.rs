use serde::{Deserialize, Serialize};

use super::family::{Dirichlet, Family};
use crate::model::Shape;

/// Full counts of some rows, flat: row `rows[k]` has counts
/// `counts[k·outcomes .. (k+1)·outcomes]`. Two allocations per message, not
/// one per row.
///
/// On the wire a whole count is a MessagePack integer (1 byte below 128, 3
/// below 65 536) instead of a 9-byte float; see [`compact_counts`]. Decoding
/// gives back the same `f64`s bit for bit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowBatch {
    /// Outcomes per row.
    pub outcomes: u32,
    /// The rows, in the order their counts follow.
    pub rows: Vec<u32>,
    /// `outcomes` counts per row, row after row.
    #[serde(with = "compact_counts")]
    pub counts: Vec<f64>,
}

impl RowBatch {
    /// An empty batch of rows of `outcomes` outcomes.
    pub fn new(outcomes: usize) -> Self {
        Self {
            outcomes: outcomes as u32,
            rows: Vec::new(),
            counts: Vec::new(),
        }
    }

    /// Appends `row` with its counts.
    pub fn push(&mut self, row: usize, counts: &[f64]) {
        debug_assert_eq!(counts.len(), self.outcomes as usize);
        self.rows.push(row as u32);
        self.counts.extend_from_slice(counts);
    }

    /// How many rows it holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether the counts array fits the rows (a message from outside may lie).
    pub fn is_well_formed(&self) -> bool {
        self.outcomes > 0 && self.counts.len() == self.rows.len() * self.outcomes as usize
    }

    /// Checks that the batch fits a task of `shape`: its outcome count, rows
    /// that exist, counts that are finite and ≥ 0.
    pub fn check(&self, shape: Shape) -> Result<(), String> {
        self.check_with(shape, &Dirichlet::default())
    }

    /// Checks that the batch fits `shape.rows()` keys of `shape.outcomes`
    /// statistics of `family`, each key valid for the family.
    pub fn check_with<F: Family>(&self, shape: Shape, family: &F) -> Result<(), String> {
        if self.outcomes as usize != shape.outcomes {
            return Err(format!(
                "{} outcomes per row; the task has {}",
                self.outcomes, shape.outcomes
            ));
        }
        if !self.is_well_formed() {
            return Err(format!(
                "{} counts for {} rows of {} outcomes",
                self.counts.len(),
                self.rows.len(),
                self.outcomes
            ));
        }
        if let Some(r) = self.rows.iter().find(|r| **r as usize >= shape.rows()) {
            return Err(format!(
                "row {r} does not exist; the task has {}",
                shape.rows()
            ));
        }
        self.iter()
            .try_for_each(|(_, stats)| family.check_stats(stats))
    }

    /// The rows and their counts, in order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[f64])> {
        self.rows
            .iter()
            .zip(self.counts.chunks_exact(self.outcomes.max(1) as usize))
            .map(|(r, c)| (*r as usize, c))
    }
}

/// Learner → aggregator: the learner's full own counts of the chosen rows.
/// `seq` grows with every message a learner sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareMessage {
    /// The sender.
    pub learner: u32,
    /// Grows with every message the learner sends.
    pub seq: u64,
    /// The chosen rows' full own counts.
    pub rows: RowBatch,
}

/// Aggregator → a rebuilt learner, after a crash: its last evidence the
/// aggregator acknowledged (`own`), everyone else's (`others`), the
/// aggregator's clock, and the highest sequence number it has seen from it,
/// so the learner's next messages are not taken for stale ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// The learner to rebuild.
    pub learner: u32,
    /// The aggregator's clock when the record was made.
    pub stamp: u64,
    /// The highest sequence number seen from the learner.
    pub seq: u64,
    /// Its evidence as the aggregator last acknowledged it.
    pub own: RowBatch,
    /// Everyone else's counts.
    pub others: RowBatch,
}

/// Aggregator → learner: `others[r] = global[r] − contrib[learner][r]` for the
/// rows that changed since the learner last heard. `stamp` is the
/// aggregator's clock when it was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OthersUpdate {
    /// The learner it is for.
    pub learner: u32,
    /// The aggregator's clock when it was sent; newer wins.
    pub stamp: u64,
    /// `global − contrib[learner]` of the rows that changed.
    pub rows: RowBatch,
}

/// Counts in their shortest lossless form. A run of k zero counts is the
/// integer −k (one byte up to 32 zeros); a whole, positive count below 2⁵³
/// is an unsigned integer (one byte below 128, three below 65 536); any
/// other value is an `f32` when that is exact (binary formats only), else an
/// `f64`. Counts are whole unless learners forget, small, and mostly zero in
/// a row of many outcomes, so a GridWorld row of 25 outcomes (four of them
/// reachable) travels in about 8 bytes instead of 225.
pub mod compact_counts {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserializer, Serializer};
    use std::fmt;

    use crate::model::MAX_STRUCTURE_ENTRIES;

    /// Below this every whole `f64` is exact as an integer.
    const EXACT: f64 = 9_007_199_254_740_992.0;

    /// Writes `counts` as a sequence of zero runs, integers and floats.
    pub fn serialize<S: Serializer>(counts: &[f64], s: S) -> Result<S::Ok, S::Error> {
        // Text formats print an f32 in its own shortest form, which reads
        // back as a different f64: they get the f64.
        let binary = !s.is_human_readable();
        // The length goes first; MessagePack would buffer the whole
        // sequence to learn it.
        let starts_run =
            |k: usize| counts[k].to_bits() == 0 && (k == 0 || counts[k - 1].to_bits() != 0);
        let tokens = (0..counts.len())
            .filter(|&k| counts[k].to_bits() != 0 || starts_run(k))
            .count();
        let mut seq = s.serialize_seq(Some(tokens))?;
        let mut zeros = 0i64;
        for &c in counts {
            if c.to_bits() == 0 {
                zeros += 1;
                continue;
            }
            if zeros > 0 {
                seq.serialize_element(&-zeros)?;
                zeros = 0;
            }
            if c.fract() == 0.0 && c.is_sign_positive() && c < EXACT {
                seq.serialize_element(&(c as u64))?;
            } else if binary && f64::from(c as f32) == c {
                seq.serialize_element(&(c as f32))?;
            } else {
                seq.serialize_element(&c)?;
            }
        }
        if zeros > 0 {
            seq.serialize_element(&-zeros)?;
        }
        seq.end()
    }

    /// Reads a sequence written by [`serialize`], in MessagePack or JSON.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        d.deserialize_seq(Counts)
    }

    struct Counts;

    /// One element: a count, or a run of zeros.
    enum Token {
        Count(f64),
        Zeros(u64),
    }

    impl<'de> Visitor<'de> for Counts {
        type Value = Vec<f64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a sequence of counts")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f64>, A::Error> {
            // Lengths come from the peer: bound what they can make us hold.
            let cap = MAX_STRUCTURE_ENTRIES as usize;
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(token) = seq.next_element()? {
                let room = cap - out.len();
                match token {
                    Token::Count(_) | Token::Zeros(_) if room == 0 => {}
                    Token::Count(c) => {
                        out.push(c);
                        continue;
                    }
                    Token::Zeros(k) if k <= room as u64 => {
                        out.resize(out.len() + k as usize, 0.0);
                        continue;
                    }
                    Token::Zeros(_) => {}
                }
                return Err(A::Error::custom(format!("more than {cap} counts")));
            }
            Ok(out)
        }
    }

    impl<'de> serde::Deserialize<'de> for Token {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Number;
            impl Visitor<'_> for Number {
                type Value = Token;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a count or a negative run of zeros")
                }
                fn visit_u64<E>(self, v: u64) -> Result<Token, E> {
                    Ok(Token::Count(v as f64))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Token, E> {
                    Ok(if v < 0 {
                        Token::Zeros(v.unsigned_abs())
                    } else {
                        Token::Count(v as f64)
                    })
                }
                fn visit_f64<E>(self, v: f64) -> Result<Token, E> {
                    Ok(Token::Count(v))
                }
            }
            d.deserialize_any(Number)
        }
    }
}

/// The size of `msg` in MessagePack (rmp-serde, the encoding kameo's remote
/// messages use), counted without building the buffer.
pub fn encoded_len<T: Serialize>(msg: &T) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Writing into a counter cannot fail for these plain structs.
    let _ = rmp_serde::encode::write(&mut c, msg);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_len_is_the_real_encoding_length() {
        let mut rows = RowBatch::new(2);
        rows.push(3, &[10.0, 2.0]);
        rows.push(17, &[0.5, 1e6]);
        let msg = ShareMessage {
            learner: 7,
            seq: 300,
            rows,
        };
        let bytes = rmp_serde::to_vec(&msg).unwrap();
        assert_eq!(encoded_len(&msg), bytes.len() as u64);
        let back: ShareMessage = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn counts_travel_in_their_shortest_lossless_form() {
        let counts = [
            0.0,
            1.0,
            127.0,
            128.0,
            70_000.0,
            0.5,
            0.1,
            1e300,
            2f64.powi(53),
            -0.0,
            -3.0,
            f64::MIN_POSITIVE,
        ];
        let mut rows = RowBatch::new(counts.len());
        rows.push(0, &counts);
        let bytes = rmp_serde::to_vec(&rows).unwrap();
        let back: RowBatch = rmp_serde::from_slice(&bytes).unwrap();
        for (a, b) in back.counts.iter().zip(&counts) {
            assert_eq!(a.to_bits(), b.to_bits(), "{b} came back as {a}");
        }
        let json: RowBatch = serde_json::from_str(&serde_json::to_string(&rows).unwrap()).unwrap();
        assert_eq!(json, rows);
        // A GridWorld row: 25 outcomes, 4 reachable. Zero runs are one
        // byte each (−6 is 0xfa), small counts one byte.
        let mut row = [0.0; 25];
        (row[6], row[11], row[12], row[13]) = (3.0, 1.0, 14.0, 2.0);
        let mut grid = RowBatch::new(25);
        grid.push(99, &row);
        let expected = [0x93, 25, 0x91, 99, 0x97, 0xfa, 3, 0xfc, 1, 14, 2, 0xf5];
        assert_eq!(rmp_serde::to_vec(&grid).unwrap(), expected);
        let back: RowBatch = rmp_serde::from_slice(&expected).unwrap();
        assert_eq!(back, grid);
        // A peer cannot make us allocate without bound.
        let huge = [0x93, 1, 0x90, 0x91, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0];
        let e = rmp_serde::from_slice::<RowBatch>(&huge).unwrap_err();
        assert!(e.to_string().contains("counts"), "{e}");
    }
}
