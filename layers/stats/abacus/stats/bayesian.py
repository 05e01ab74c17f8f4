"""Probability to be best and expected loss, by deterministic numerical integration.

For independent posteriors with densities f_i and distribution functions F_i:
  P(i is best) = integral of f_i(x) * prod_{j != i} F_j(x) dx
  E[max_j X_j] = lower + integral from lower to upper of (1 - prod_j F_j(x)) dx
  expected loss of choosing i = E[max_j X_j] - E[X_i]
(the second since E[Y] = lower + integral of P(Y > x) for Y >= lower). The integrals use composite
Gauss-Legendre quadrature on panels cut at every posterior's quantiles (posteriors.py), so each
panel is smooth and narrow against every density it crosses: the same input gives the same
output bit for bit, with no sampling, and errors far below 1e-6 (tests compare with
scipy.integrate.quad at tight tolerances).
"""

import numpy as np

from abacus.stats.posteriors import BetaPosteriors, Floats, NormalPosteriors

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(8)


def _quadrature(breakpoints: Floats) -> tuple[Floats, Floats]:
    """Nodes and weights of 8-point Gauss-Legendre rules on each panel between breakpoints."""
    low, high = breakpoints[:-1], breakpoints[1:]
    half = (high - low) / 2
    nodes = ((low + high) / 2)[:, None] + half[:, None] * _NODES[None, :]
    weights = half[:, None] * _WEIGHTS[None, :]
    return nodes.ravel(), weights.ravel()


def best_and_loss(posteriors: BetaPosteriors | NormalPosteriors) -> tuple[Floats, Floats]:
    """(probability that each variant is the best, expected loss of choosing each), per variant."""
    breakpoints = posteriors.breakpoints()
    x, w = _quadrature(breakpoints)
    pdf, cdf = posteriors.pdf(x), posteriors.cdf(x)
    count = cdf.shape[0]
    best = np.empty(count)
    for i in range(count):
        others = np.prod(cdf[np.arange(count) != i], axis=0)
        best[i] = np.dot(w, pdf[i] * others)
    expected_max = breakpoints[0] + np.dot(w, 1 - np.prod(cdf, axis=0))
    # Normalising removes the quadrature's last 1e-10 or so, so the probabilities sum to 1.
    best = np.clip(best, 0, None)
    best /= best.sum()
    loss = np.clip(expected_max - posteriors.means, 0, None)
    return best, loss
