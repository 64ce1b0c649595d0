"""The independent reference for parbayes's LinTS and LinUCB: textbook
disjoint linear bandits in numpy, A⁻¹ kept by Sherman–Morrison, a Thompson
draw through the Cholesky factor of v²A⁻¹ (Agrawal & Goyal 2013), LinUCB's
xᵀμ + α√(xᵀA⁻¹x) (Li et al. 2010), on the synthetic task of
parbayes::env::LinearBandit: θ_k ~ N(0, I/d), x ~ N(0, I), r = xᵀθ_k + ε,
ε ~ N(0, σ²); regret against the best arm of each context.

    pip install numpy
    python3 benches/peers/linear_textbook.py > tests/reference/linear_peer.json

tests/linear_peer.rs runs parbayes's agents on the same task and compares
mean cumulative regret with what this prints.
"""
import json
import sys

import numpy as np

ARMS, DIM, SIGMA, RIDGE, STEPS, REPS, ALPHA = 10, 5, 0.5, 1.0, 1000, 200, 1.0


def run(policy, rng):
    theta = rng.standard_normal((ARMS, DIM)) / np.sqrt(DIM)
    a_inv = np.stack([np.eye(DIM) / RIDGE] * ARMS)
    b = np.zeros((ARMS, DIM))
    regret = 0.0
    for _ in range(STEPS):
        x = rng.standard_normal(DIM)
        values = np.empty(ARMS)
        for k in range(ARMS):
            mu = a_inv[k] @ b[k]
            if policy == "lints":
                cov = SIGMA ** 2 * a_inv[k]
                cov = (cov + cov.T) / 2
                draw = mu + np.linalg.cholesky(cov) @ rng.standard_normal(DIM)
                values[k] = x @ draw
            else:
                values[k] = x @ mu + ALPHA * np.sqrt(x @ a_inv[k] @ x)
        arm = int(np.argmax(values))
        means = theta @ x
        regret += means.max() - means[arm]
        r = means[arm] + SIGMA * rng.standard_normal()
        ax = a_inv[arm] @ x
        a_inv[arm] -= np.outer(ax, ax) / (1.0 + x @ ax)
        b[arm] += r * x
    return regret


def main():
    rng = np.random.default_rng(2013)
    out = {"arms": ARMS, "dim": DIM, "sigma": SIGMA, "ridge": RIDGE, "steps": STEPS,
           "reps": REPS, "alpha": ALPHA, "numpy": np.__version__}
    for policy in ["lints", "linucb"]:
        r = np.array([run(policy, rng) for _ in range(REPS)])
        out[policy] = {"mean": r.mean(), "se": r.std(ddof=1) / np.sqrt(REPS)}
        print(policy, out[policy], file=sys.stderr)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
