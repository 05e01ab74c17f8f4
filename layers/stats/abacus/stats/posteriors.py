"""Posterior distributions of each variant's mean, vectorised over variants.

Conversion metrics: Beta(1 + conversions, 1 + exposures - conversions), the posterior under a
uniform Beta(1, 1) prior. Mean metrics: Normal(sample mean, standard error^2), the large-sample
posterior under a flat prior. Both give the same interface, so the Bayesian integrals below
treat them alike.
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import betainc, betaincinv, betaln, ndtr, ndtri, xlog1py, xlogy

# Quantile levels whose points split the integration range into panels no wider than about two
# standard deviations of any posterior they cross (and reach 1e-13 into every tail).
_LEVELS = np.array(
    [
        1e-13,
        1e-9,
        1e-6,
        1e-4,
        2e-3,
        0.02,
        0.1,
        0.3,
        0.5,
        0.7,
        0.9,
        0.98,
        1 - 2e-3,
        1 - 1e-4,
        1 - 1e-6,
        1 - 1e-9,
        1 - 1e-13,
    ]
)
_SQRT_2PI = np.sqrt(2 * np.pi)


@dataclass(frozen=True)
class BetaPosteriors:
    a: np.ndarray
    b: np.ndarray

    @property
    def means(self) -> np.ndarray:
        return self.a / (self.a + self.b)

    def ppf(self, q: np.ndarray) -> np.ndarray:
        """Quantiles: one row per variant, one column per level in q."""
        return betaincinv(self.a[:, None], self.b[:, None], np.asarray(q)[None, :])

    def pdf(self, x: np.ndarray) -> np.ndarray:
        a, b = self.a[:, None], self.b[:, None]
        return np.exp(xlogy(a - 1, x) + xlog1py(b - 1, -x) - betaln(a, b))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return betainc(self.a[:, None], self.b[:, None], x)

    def breakpoints(self) -> np.ndarray:
        return np.unique(np.clip(self.ppf(_LEVELS).ravel(), 0.0, 1.0))


@dataclass(frozen=True)
class NormalPosteriors:
    mean: np.ndarray
    sd: np.ndarray

    @property
    def means(self) -> np.ndarray:
        return self.mean

    def ppf(self, q: np.ndarray) -> np.ndarray:
        return self.mean[:, None] + self.sd[:, None] * ndtri(np.asarray(q))[None, :]

    def pdf(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean[:, None]) / self.sd[:, None]
        return np.exp(-0.5 * z * z) / (_SQRT_2PI * self.sd[:, None])

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return ndtr((x - self.mean[:, None]) / self.sd[:, None])

    def breakpoints(self) -> np.ndarray:
        return np.unique(self.ppf(_LEVELS).ravel())


def credible_interval(posteriors: BetaPosteriors | NormalPosteriors, level: float = 0.95) -> np.ndarray:
    """Equal-tailed credible intervals, one [low, high] row per variant."""
    tail = (1 - level) / 2
    return posteriors.ppf(np.array([tail, 1 - tail]))
