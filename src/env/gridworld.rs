use super::truth::Truth;
use crate::error::{Error, Result};
use crate::model::{Mdp, Shape, Transition};

/// Largest side a grid may have: 30 × 30 cells is 3,600 rows of 900
/// outcomes, 3.2 million entries in a learner's planning model.
pub const MAX_GRID_SIZE: usize = 30;

/// Up, down, left, right, as (row, column) steps.
const MOVES: [(isize, isize); 4] = [(-1, 0), (1, 0), (0, -1), (0, 1)];
/// The arrows of `MOVES`, for printed policies.
pub const ARROWS: [char; 4] = ['↑', '↓', '←', '→'];

/// The stochastic GridWorld of Barrett et al. (after Sutton & Barto,
/// Example 3.5): n × n cells, actions up, down, left, right. A move goes the
/// chosen way with probability `intended` and at each right angle with half
/// the rest. Off the grid the learner stays put and earns −1. From A every
/// action leads to A' with +10, from B to B' with +5. The outcome a learner
/// sees is the next cell.
#[derive(Debug, Clone, PartialEq)]
pub struct GridWorld {
    layout: Layout,
    truth: Truth,
}

/// Where things are on the grid; cells are `(row, column)` from the top left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    /// Cells per side.
    pub size: usize,
    /// Cell A: every action from it pays 10 and moves to `a_to`.
    pub a: (usize, usize),
    /// Where A leads.
    pub a_to: (usize, usize),
    /// Cell B: every action from it pays 5 and moves to `b_to`.
    pub b: (usize, usize),
    /// Where B leads.
    pub b_to: (usize, usize),
    /// A fixed start cell, or `None` for a uniformly random one each episode.
    pub start: Option<(usize, usize)>,
}

impl Default for Layout {
    /// Sutton & Barto's 5 × 5 grid: A = (0, 1) → (4, 1), B = (0, 3) → (2, 3).
    fn default() -> Self {
        Self {
            size: 5,
            a: (0, 1),
            a_to: (4, 1),
            b: (0, 3),
            b_to: (2, 3),
            start: None,
        }
    }
}

/// From a step on, the probability that a move goes the chosen way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntendedChange {
    /// The 0-based step it holds from.
    pub step: u64,
    /// The new probability of moving the chosen way.
    pub intended: f64,
}

impl GridWorld {
    /// A grid whose moves go the chosen way with probability `intended`,
    /// changing on the schedule `changes`, planned with discount `gamma`.
    pub fn new(
        layout: Layout,
        intended: f64,
        mut changes: Vec<IntendedChange>,
        gamma: f64,
    ) -> Result<Self> {
        let bad = |field: &str, problem: String| Err(Error::invalid("gridworld", field, problem));
        if !(1..=MAX_GRID_SIZE).contains(&layout.size) {
            return bad(
                "size",
                format!("{} is out of range; use 1 to {MAX_GRID_SIZE}", layout.size),
            );
        }
        let cells = [
            ("a", layout.a),
            ("a_to", layout.a_to),
            ("b", layout.b),
            ("b_to", layout.b_to),
        ];
        for (field, (r, c)) in cells.into_iter().chain(layout.start.map(|s| ("start", s))) {
            if r >= layout.size || c >= layout.size {
                return bad(
                    field,
                    format!(
                        "({r}, {c}) is off the {0} × {0} grid; rows and columns are 0 to {1}",
                        layout.size,
                        layout.size - 1
                    ),
                );
            }
        }
        if layout.a == layout.b {
            return bad("b", "A and B are the same cell".into());
        }
        if !(0.0..=1.0).contains(&intended) {
            return bad(
                "intended",
                format!("{intended} is not a probability in [0, 1]"),
            );
        }
        if let Err(p) = crate::model::check_gamma(gamma) {
            return bad("gamma", p);
        }
        changes.sort_by_key(|c| c.step);
        let mut models = vec![(0, true_model(&layout, intended))];
        for (k, c) in changes.iter().enumerate() {
            if !(0.0..=1.0).contains(&c.intended) {
                return bad(
                    &format!("drift[{k}].intended"),
                    format!("{} is not a probability in [0, 1]", c.intended),
                );
            }
            models.push((c.step, true_model(&layout, c.intended)));
        }
        Ok(Self {
            layout,
            truth: Truth::new(models, gamma),
        })
    }

    /// Where things are.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The true model through its changes.
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    /// The true model, to advance.
    pub fn truth_mut(&mut self) -> &mut Truth {
        &mut self.truth
    }

    /// A state and an outcome per cell, four actions.
    pub fn shape(&self) -> Shape {
        shape(self.layout.size)
    }

    /// The known reward of landing in cell `next` from `cell`: A and B pay
    /// whatever happens; elsewhere staying put means the move hit a wall.
    #[inline]
    pub fn reward(&self, cell: usize, next: usize) -> f64 {
        reward(&self.layout, cell, next)
    }
}

fn shape(size: usize) -> Shape {
    let cells = size * size;
    Shape {
        states: cells,
        actions: 4,
        outcomes: cells,
    }
}

fn reward(layout: &Layout, cell: usize, next: usize) -> f64 {
    let n = layout.size;
    if cell == layout.a.0 * n + layout.a.1 {
        10.0
    } else if cell == layout.b.0 * n + layout.b.1 {
        5.0
    } else if cell == next {
        -1.0
    } else {
        0.0
    }
}

/// The exact transition model for one value of `intended`.
fn true_model(layout: &Layout, intended: f64) -> Mdp {
    let n = layout.size;
    let shape = shape(n);
    let index = |(r, c): (usize, usize)| r * n + c;
    let side = (1.0 - intended) / 2.0;
    let mut rows = Vec::with_capacity(shape.rows());
    for cell in 0..shape.states {
        let (r, c) = (cell / n, cell % n);
        for &(dr, dc) in &MOVES {
            let mut row: Vec<Transition> = Vec::with_capacity(3);
            let mut add = |next: usize, prob: f64| {
                if prob == 0.0 {
                    return;
                }
                let reward = reward(layout, cell, next);
                match row.iter_mut().find(|t| t.next == next) {
                    Some(t) => t.prob += prob,
                    None => row.push(Transition {
                        outcome: next,
                        next,
                        prob,
                        reward,
                        terminal: false,
                    }),
                }
            };
            if cell == index(layout.a) {
                add(index(layout.a_to), 1.0);
            } else if cell == index(layout.b) {
                add(index(layout.b_to), 1.0);
            } else {
                // The chosen direction, then the two at right angles to it.
                for ((mr, mc), prob) in [((dr, dc), intended), ((dc, dr), side), ((-dc, -dr), side)]
                {
                    let (nr, nc) = (r as isize + mr, c as isize + mc);
                    let inside = (0..n as isize).contains(&nr) && (0..n as isize).contains(&nc);
                    let next = if inside {
                        nr as usize * n + nc as usize
                    } else {
                        cell
                    };
                    add(next, prob);
                }
            }
            rows.push(row);
        }
    }
    let start = match layout.start {
        Some(cell) => {
            let mut p = vec![0.0; shape.states];
            p[index(cell)] = 1.0;
            p
        }
        None => vec![1.0 / shape.states as f64; shape.states],
    };
    Mdp::new(shape, start, &rows).expect("the grid's rows are distributions by construction")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::solve;

    #[test]
    fn moves_slip_at_right_angles_and_walls_cost_one() {
        let g = GridWorld::new(Layout::default(), 0.6, vec![], 0.9).unwrap();
        let m = g.truth().model();
        let shape = g.shape();
        // Cell (2, 2) = 12, action right: (2, 3) w.p. 0.6, (1, 2) and (3, 2) w.p. 0.2.
        let mut p = vec![0.0; 25];
        m.outcome_probs_into(shape.row(12, 3), &mut p);
        assert!(
            (p[13] - 0.6).abs() < 1e-15
                && (p[7] - 0.2).abs() < 1e-15
                && (p[17] - 0.2).abs() < 1e-15
        );
        // Corner (4, 0) = 20, action down: off the grid (0.6) or left (0.2) → stays, right → 21.
        m.outcome_probs_into(shape.row(20, 1), &mut p);
        assert!((p[20] - 0.8).abs() < 1e-15 && (p[21] - 0.2).abs() < 1e-15);
        for t in m.transitions(shape.row(20, 1)) {
            assert_eq!(t.reward, if t.next == 20 { -1.0 } else { 0.0 });
        }
        // A = (0, 1) = 1 → A' = (4, 1) = 21 with +10 whatever the action.
        for a in 0..4 {
            let t: Vec<_> = m.transitions(shape.row(1, a)).collect();
            assert_eq!((t.len(), t[0].next, t[0].reward), (1, 21, 10.0));
        }
    }

    #[test]
    fn deterministic_grid_matches_sutton_and_barto() {
        // Sutton & Barto (2018), Figure 3.5: V* of the deterministic grid at
        // γ = 0.9, printed to one decimal.
        let book = [
            22.0, 24.4, 22.0, 19.4, 17.5, 19.8, 22.0, 19.8, 17.8, 16.0, 17.8, 19.8, 17.8, 16.0,
            14.4, 16.0, 17.8, 16.0, 14.4, 13.0, 14.4, 16.0, 14.4, 13.0, 11.7,
        ];
        let g = GridWorld::new(Layout::default(), 1.0, vec![], 0.9).unwrap();
        let s = solve(g.truth().model(), 0.9);
        for (v, b) in s.values.iter().zip(book) {
            assert!((v - b).abs() <= 0.05 + 1e-9, "{v} vs {b}");
        }
    }

    #[test]
    fn rejects_bad_layouts() {
        let off = Layout {
            a_to: (5, 1),
            ..Layout::default()
        };
        assert!(GridWorld::new(off, 0.6, vec![], 0.9).is_err());
        assert!(GridWorld::new(Layout::default(), 1.2, vec![], 0.9).is_err());
        assert!(GridWorld::new(Layout::default(), 0.6, vec![], 1.0).is_err());
        let zero = Layout {
            size: 0,
            ..Layout::default()
        };
        assert!(GridWorld::new(zero, 0.6, vec![], 0.9).is_err());
    }
}
