"""50-digit references for tests/linear.rs: KL divergences between two
Bayesian linear regression posteriors, from the textbook formulas with
explicit inverses and determinants (no Cholesky), in mpmath.

Run: python3 tests/reference/linear_kl.py  (needs mpmath)
"""
from mpmath import mp, mpf, matrix, log, digamma, loggamma, eye

mp.dps = 50

RIDGE = mpf("0.5")
VARIANCE = mpf("0.25")
SHAPE, RATE = mpf(2), mpf("1.5")

# (x, r) observations; the Rust test adds the same ones.
P_OBS = [([1, 0.5, -1], 0.7), ([0.25, 1, 2], -0.3), ([-1, 1, 0], 1.1), ([2, -0.5, 0.5], 0.4)]
Q_OBS = [([1, 0.5, -1], 0.6), ([0.5, 0.5, 0.5], 0.2)]


def posterior(obs):
    d = 3
    lam = eye(d) * RIDGE
    b = matrix(d, 1)
    n, squares = mpf(0), mpf(0)
    for x, r in obs:
        x = matrix([mpf(v) for v in x])
        r = mpf(r)
        lam += x * x.T
        b += r * x
        n += 1
        squares += r * r
    mean = lam ** -1 * b
    return lam, mean, n, squares


def gaussian_part(p, q, precision_mean):
    lam_p, mu_p, _, _ = p
    lam_q, mu_q, _, _ = q
    d = lam_p.rows
    delta = mu_q - mu_p
    trace = sum((lam_q * lam_p ** -1)[i, i] for i in range(d))
    maha = (delta.T * lam_q * delta)[0, 0]
    return (trace + precision_mean * maha - d + log(mp.det(lam_p)) - log(mp.det(lam_q))) / 2


def gamma_post(post):
    lam, mu, n, squares = post
    fit = (mu.T * lam * mu)[0, 0]
    return SHAPE + n / 2, RATE + (squares - fit) / 2


def kl_gamma(a1, b1, a2, b2):
    return (a1 - a2) * digamma(a1) - loggamma(a1) + loggamma(a2) + a2 * (log(b1) - log(b2)) + a1 * (b2 - b1) / b1


p, q = posterior(P_OBS), posterior(Q_OBS)
print("known", mp.nstr(gaussian_part(p, q, 1 / VARIANCE), 50))
(ap, bp), (aq, bq) = gamma_post(p), gamma_post(q)
print("unknown", mp.nstr(kl_gamma(ap, bp, aq, bq) + gaussian_part(p, q, ap / bp), 50))
print("gamma", mp.nstr(kl_gamma(mpf(3), mpf(2), mpf("1.5"), mpf("0.7")), 50))
