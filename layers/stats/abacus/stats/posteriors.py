"""Posterior distributions of each variant's mean, vectorised over variants.

Conversion metrics: Beta(1 + conversions, 1 + exposures - conversions), the posterior under a
uniform Beta(1, 1) prior. Mean metrics: Normal(sample mean, standard error^2), the large-sample
posterior under a flat prior. Both give the same interface, so the Bayesian integrals below
treat them alike.
"""

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import betainc, betaincinv, ndtr, ndtri, xlog1py

# Quantile levels whose points split the integration range into panels no wider than about two
# standard deviations of any posterior they cross (and reach 1e-13 into every tail).
_TAILS = [1e-13, 1e-8, 1e-5, 1e-3, 0.02, 0.16]
_LEVELS = np.array([*_TAILS, 0.5, *(1 - t for t in reversed(_TAILS))])
_SQRT_2PI = math.sqrt(2 * math.pi)
# Every array here holds float64s: per variant, per quantile level, or both.
type Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BetaPosteriors:
    a: Floats
    b: Floats

    @property
    def means(self) -> Floats:
        return self.a / (self.a + self.b)

    def ppf(self, q: Floats) -> Floats:
        """Quantiles: one row per variant, one column per level in q."""
        return betaincinv(self.a[:, None], self.b[:, None], np.asarray(q)[None, :])

    def density(self, start: Floats, offset: Floats) -> Floats:
        """Proportional to the pdf at x = start + offset; bayesian.py normalises it. Formed about
        the mean m, as (a - 1) log(x / m) + (b - 1) log((1 - x) / (1 - m)), each term about
        sqrt(a + b): (a - 1) log x, (b - 1) log(1 - x) and betaln(a, b) are each about a + b, and
        their sum would lose (a + b) * 1e-16 to rounding (P(best) 7e-6 off at 10^10 exposures)."""
        x = start + offset  # rounded by 1e-16: under 1e-6 of any Beta's sd up to 10^10 exposures
        a, b, mean = self.a[:, None], self.b[:, None], self.means[:, None]
        return np.exp(xlog1py(a - 1, (x - mean) / mean) + xlog1py(b - 1, (mean - x) / (1 - mean)))

    def cdf(self, start: Floats, offset: Floats) -> Floats:
        return betainc(self.a[:, None], self.b[:, None], start + offset)

    @property
    def sds(self) -> Floats:
        total = self.a + self.b
        return np.sqrt(self.a * self.b / (total**2 * (total + 1)))

    def breakpoints(self) -> Floats:
        return _thin(np.clip(self.ppf(_LEVELS).ravel(), 0.0, 1.0), self.sds.min())


@dataclass(frozen=True)
class NormalPosteriors:
    mean: Floats
    sd: Floats

    @property
    def means(self) -> Floats:
        return self.mean

    def ppf(self, q: Floats) -> Floats:
        return self.mean[:, None] + self.sd[:, None] * ndtri(np.asarray(q))[None, :]

    def _z(self, start: Floats, offset: Floats) -> Floats:
        # start - mean is exact near the mean: a posterior only a few thousand float64 steps wide
        # (describe.py's floor for a point mass) is evaluated where the nodes really are.
        return (start - self.mean[:, None] + offset) / self.sd[:, None]

    def density(self, start: Floats, offset: Floats) -> Floats:
        """The pdf at start + offset."""
        z = self._z(start, offset)
        return np.exp(-0.5 * z * z) / (_SQRT_2PI * self.sd[:, None])

    def cdf(self, start: Floats, offset: Floats) -> Floats:
        return ndtr(self._z(start, offset))

    def breakpoints(self) -> Floats:
        return _thin(self.ppf(_LEVELS).ravel(), self.sd.min())


def _thin(points: Floats, narrowest_sd: float) -> Floats:
    """Sorted breakpoints, dropping any closer than a quarter of the narrowest posterior's standard
    deviation to the one kept before it: similar variants would otherwise multiply the panels for
    nothing, as a panel that narrow is smooth for every posterior."""
    points = np.unique(points)
    kept = [points[0]]
    for point in points[1:-1]:
        if point - kept[-1] >= narrowest_sd / 4:
            kept.append(point)
    kept.append(points[-1])
    return np.array(kept)


def credible_interval(posteriors: BetaPosteriors | NormalPosteriors, level: float = 0.95) -> Floats:
    """Equal-tailed credible intervals, one [low, high] row per variant."""
    tail = (1 - level) / 2
    return posteriors.ppf(np.array([tail, 1 - tail]))
