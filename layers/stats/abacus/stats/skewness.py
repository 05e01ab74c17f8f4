"""The skewness correction of the difference of two means (Hall 1992), and the third moments it
needs, from each variant's sums of cubes.

Welch's statistic T = (m_t - m_c) / sqrt(v_t / n_t + v_c / n_c) is normal in the limit, but a
skewed metric (revenue: most users at 0, a few buyers far out) makes the small arm's mean and its
variance move together: an arm whose few big spenders have not come yet is low, and looks
precise. To first order (the Edgeworth expansion of the studentized difference, as of a
studentized mean)

    P(T <= x) = Phi(x) + a (2 x^2 + 1) phi(x) / 6,   a = (mu3_t / n_t^2 - mu3_c / n_c^2) / V^(3/2),

a being the skewness of the difference of the means (mu3 each arm's third central moment per
user, V the variance of the difference). Equal arms of one distribution cancel (a = 0): only an
unequal split leaves it. Hall's monotone cubic transformation g(T) = T + a T^2 / 3 + a^2 T^3 / 27
+ a / 6 removes that term; every design then tests g(T) as it tested T (and its intervals invert
g). a is estimated under the null, as the false-positive rate it protects is: one distribution
for both arms, its third moment and variance pooled within the arms, which gives

    a = skewness (n_c - n_t) / sqrt(n_t n_c (n_t + n_c)).

The small arm's own third moment is far too noisy for it: a separate estimate broke even equal
splits (7.8% A/A at 50/50, bench/skewness_simulation.py). Kohavi's rule of thumb, n > 355 skewness^2 per
arm, is the one-sample |a| < 1 / sqrt(355); the explanation cites it.

References: Hall (1992), "On the removal of skewness by transformation", JRSS B 54:221-228; Zhou
and Dinh (2005), "Nonparametric confidence intervals for the one- and two-sample problems",
Biostatistics (the transformation for two samples of skewed costs); Kohavi, Deng, Longbotham and
Xu (2014), "Seven rules of thumb for web site experimenters", KDD (rule 7).
"""

import math

import numpy as np
import numpy.typing as npt

type Floats = npt.NDArray[np.float64]
type FloatsLike = npt.ArrayLike

# Kohavi's rule of thumb: the normal approximation holds for a mean of n > 355 skewness^2 users.
KOHAVI_FACTOR = 355.0
# A third moment computed from sums is trusted to this relative size of its largest term (about
# 4,500 machine epsilons, the rounding of sums over millions of users); beyond a 1% error in the
# skewness it is unknown, and the statistic is not corrected.
_SUM_PRECISION = 1e-12
_SKEWNESS_PRECISION = 0.01


def third_moment(
    n: FloatsLike, total: FloatsLike, squares: FloatsLike, cubes: FloatsLike, cubes_size: FloatsLike | None = None
) -> Floats:
    """The third central moment per user, sum((y - mean)^3) / n, from the sums of y, y^2 and y^3
    of n users; NaN where it is unknown: no cubes (NaN), fewer than 3 users, no variance, or
    rounding beyond the precision above (values far from 0 with little spread). `cubes_size`:
    the size of the terms `cubes` was added up from, when it is itself a sum of terms."""
    n, total, squares, cubes = (np.asarray(x, dtype=np.float64) for x in (n, total, squares, cubes))
    count = np.where(n >= 3, n, np.nan)
    mean = total / count
    variance = np.maximum(squares / count - mean * mean, 0.0)
    third = cubes / count - 3 * mean * squares / count + 2 * mean**3
    size = np.abs(cubes if cubes_size is None else np.asarray(cubes_size, dtype=np.float64))
    error = _SUM_PRECISION * (size / count + 3 * np.abs(mean) * squares / count + 2 * np.abs(mean) ** 3)
    # No sample's skewness exceeds (n - 2) / sqrt(n - 1) in size: beyond it, rounding made it.
    possible = (count - 2) / np.sqrt(count - 1) * variance**1.5
    with np.errstate(invalid="ignore"):
        trusted = (variance > 0) & (error <= _SKEWNESS_PRECISION * variance**1.5) & (np.abs(third) <= possible)
    result: Floats = np.where(trusted, third, np.nan)
    return result


def pooled_skewness(
    n_t: FloatsLike, n_c: FloatsLike, var_t: FloatsLike, var_c: FloatsLike, third_t: FloatsLike, third_c: FloatsLike
) -> Floats:
    """The skewness of one distribution for both arms (the null's): third moments and variances
    per user pooled within the arms. NaN where either arm's third moment is unknown."""
    n_t, n_c = np.asarray(n_t, dtype=np.float64), np.asarray(n_c, dtype=np.float64)
    users = np.maximum(n_t + n_c, 1.0)
    third = (n_t * np.asarray(third_t) + n_c * np.asarray(third_c)) / users
    variance = (n_t * np.asarray(var_t) + n_c * np.asarray(var_c)) / users
    with np.errstate(invalid="ignore", divide="ignore"):
        result: Floats = np.where(variance > 0, third / variance**1.5, np.nan)
    return result


def difference_skewness(n_t: FloatsLike, n_c: FloatsLike, skewness: FloatsLike) -> Floats:
    """a, the skewness of m_t - m_c, for arms of n_t and n_c users of one distribution of this
    skewness; 0 where the skewness is unknown (the statistic is then not corrected)."""
    n_t, n_c = np.asarray(n_t, dtype=np.float64), np.asarray(n_c, dtype=np.float64)
    known = np.isfinite(skewness) & (n_t > 0) & (n_c > 0)
    spread = np.sqrt(np.maximum(n_t * n_c * (n_t + n_c), 1.0))
    result: Floats = np.where(known, np.where(known, skewness, 0.0) * (n_c - n_t) / spread, 0.0)
    return result


def comparison_skewness(n_t: int, n_c: int, var_t: float, var_c: float, third_t: float, third_c: float) -> float:
    """pooled_skewness then difference_skewness for one comparison, in plain floats (a comparison
    is made for every look of every analysis: numpy's overhead on single numbers is 20 times the
    comparison's own cost)."""
    variance = (n_t * var_t + n_c * var_c) / max(n_t + n_c, 1)
    third = (n_t * third_t + n_c * third_c) / max(n_t + n_c, 1)
    if n_t == n_c or not math.isfinite(third) or not variance > 0 or n_t <= 0 or n_c <= 0:
        return 0.0
    return float(third / variance**1.5 * (n_c - n_t) / math.sqrt(n_t * n_c * (n_t + n_c)))


def _hall[T: (float, Floats)](z: T, a: T) -> T:
    u = a * z / 3
    return z * (1 + u + u * u / 3) + a / 6


def corrected(z: FloatsLike, a: FloatsLike) -> Floats:
    """Hall's transformation g(z) = z + a z^2 / 3 + a^2 z^3 / 27 + a / 6, increasing in z; as
    z (1 + u + u^2 / 3) + a / 6 with u = a z / 3, whose factor is positive, so a z too large for
    a double gives an infinity of its sign (never NaN), as an infinite z stays itself."""
    z, a = np.asarray(z, dtype=np.float64), np.asarray(a, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        result: Floats = np.where(np.isfinite(z), _hall(z, a), z)
    return result


def corrected_value(z: float, a: float) -> float:
    """corrected() of one number."""
    if a == 0 or not math.isfinite(z):
        return z
    try:
        return _hall(z, a)
    except OverflowError:
        return math.copysign(math.inf, z)


def uncorrected(y: FloatsLike, a: FloatsLike) -> Floats:
    """The z whose corrected value is y: g(z) = ((1 + a z / 3)^3 - 1) / a + a / 6, inverted."""
    y, a = np.asarray(y, dtype=np.float64), np.asarray(a, dtype=np.float64)
    w = a * (y - a / 6)
    with np.errstate(invalid="ignore", divide="ignore"):
        # cbrt(1 + w) - 1, without the cancellation of a tiny w (expm1 and log1p hold it exactly).
        root = np.where(np.abs(w) < 0.5, np.expm1(np.log1p(np.maximum(w, -0.5)) / 3), np.cbrt(1 + w) - 1)
        result: Floats = np.where(a != 0, 3 * root / np.where(a != 0, a, 1.0), y)
    return result


def uncorrected_value(y: float, a: float) -> float:
    """uncorrected() of one number."""
    if a == 0:
        return y
    w = a * (y - a / 6)
    root = math.expm1(math.log1p(w) / 3) if abs(w) < 0.5 else math.cbrt(1 + w) - 1
    return 3 * root / a


def kohavi_users(skewness: float) -> float:
    """The users per arm Kohavi's rule of thumb asks before a mean of this skewness is normal."""
    return KOHAVI_FACTOR * skewness * skewness
