"""The Python peer parbayes's speed is compared with: the bare Thompson
loop of examples/bare_thompson.rs, compiled by numba (`@njit`): 20 Beta
draws as ratios of two gammas, the argmax, a Bernoulli click, one count
update, on bandit-news's arms.

    pip install numba
    python3 benches/peers/numba_thompson.py 2000000

Prints steps per second after a warm-up run (compilation excluded).
"""
import sys
import time

import numpy as np
from numba import njit

ARMS = np.array([0.010, 0.012, 0.015, 0.018, 0.020, 0.022, 0.025, 0.027, 0.030, 0.050,
                 0.032, 0.035, 0.028, 0.024, 0.019, 0.016, 0.040, 0.045, 0.038, 0.033])


@njit(cache=False)
def thompson(arms, steps, seed):
    np.random.seed(seed)
    k = arms.shape[0]
    alpha = np.ones(k)
    beta = np.ones(k)
    clicks = 0
    for _ in range(steps):
        best, best_theta = 0, -1.0
        for a in range(k):
            x = np.random.gamma(alpha[a], 1.0)
            y = np.random.gamma(beta[a], 1.0)
            theta = x / (x + y)
            if theta > best_theta:
                best, best_theta = a, theta
        if np.random.random() < arms[best]:
            alpha[best] += 1.0
            clicks += 1
        else:
            beta[best] += 1.0
    return clicks


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    thompson(ARMS, 1000, 1)  # compile
    started = time.perf_counter()
    clicks = thompson(ARMS, steps, 42)
    seconds = time.perf_counter() - started
    print(f"numba Thompson loop: {steps} steps in {seconds:.3f} s = {steps / seconds:.0f} steps/s ({clicks} clicks)")


if __name__ == "__main__":
    main()
