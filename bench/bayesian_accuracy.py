"""Accuracy and cost of the Bayesian integrals (abacus.stats.bayesian, issue 13).

Accuracy: the largest error of the probability to be best and of the expected loss (over the
posteriors' scale for normals) in random problems of 2 to 10 variants, one of them narrow: a
normal 1e-13 to 1e-1 of the others' sd wide, but at least 1e-12 of its mean (analysis.py's floor)
and the means up to 1000 sds from 0, or a Beta of 10^3 to 10^10 exposures among Betas of 10^2 to
10^4. The reference: 20-point Gauss-Legendre rules on panels 0.05 sd wide in every posterior's
quantiles, with scipy.stats' densities; the normals shifted so that the narrow one is centred on
0, where float64 resolves it (a shift changes no answer). Then the cases of
tests/unit/stats/test_bayesian.py against their scipy.integrate.quad references. Cost:
best_and_loss for 10 posteriors, in CPU time (the machine is shared).

Run: .venv/bin/python bench/bayesian_accuracy.py [random problems]
"""

import math
import statistics
import sys
import time

import numpy as np
from scipy import special, stats

from abacus.stats import bayesian
from abacus.stats.posteriors import BetaPosteriors, NormalPosteriors
from tests.unit.stats import test_bayesian as cases

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(20)


def fine(dists: list) -> tuple[np.ndarray, np.ndarray]:
    """P(best) and expected loss on panels 0.05 sd wide in every posterior's quantiles."""
    levels = special.ndtr(np.arange(-8.5, 8.5, 0.05))
    edges = np.unique(np.concatenate([d.ppf(levels[levels < 1]) for d in dists]))
    half = np.diff(edges) / 2
    x = ((edges[:-1] + half)[:, None] + half[:, None] * _NODES).ravel()
    w = (half[:, None] * _WEIGHTS).ravel()
    pdf, cdf = np.array([d.pdf(x) for d in dists]), np.array([d.cdf(x) for d in dists])
    best = [w @ (pdf[i] * np.prod(np.delete(cdf, i, axis=0), axis=0)) for i in range(len(dists))]
    expected_max = edges[0] + w @ (1 - np.prod(cdf, axis=0))
    return np.array(best), expected_max - np.array([d.mean() for d in dists])


def normal_problem(rng: np.random.Generator) -> tuple[NormalPosteriors, list, float]:
    count, scale = rng.integers(2, 11), 10 ** rng.uniform(-3, 3)
    means, sds = rng.uniform(-1, 1, count) * scale, rng.uniform(0.3, 2, count) * scale
    means += rng.uniform(-1e3, 1e3) * scale  # away from 0: the narrow one may be few float64 steps wide
    means[0] = means[1:].mean() + rng.uniform(-1, 2.5) * scale
    sds[0] = max(10 ** rng.uniform(-13, -1) * scale, 1e-12 * abs(means[0]))  # analysis.py's floor
    dists = [stats.norm(m - means[0], s) for m, s in zip(means, sds, strict=True)]
    return NormalPosteriors(means, sds), dists, scale


def beta_problem(rng: np.random.Generator) -> tuple[BetaPosteriors, list, float]:
    count, rate = rng.integers(2, 11), rng.uniform(0.001, 0.6)
    exposures = np.round(10 ** rng.uniform(2, 4, count))
    exposures[0] = np.round(10 ** rng.uniform(3, 10))
    conversions = np.round(exposures * rate * rng.uniform(0.8, 1.2, count))
    a, b = 1 + conversions, 1 + exposures - conversions
    return BetaPosteriors(a, b), [stats.beta(ai, bi) for ai, bi in zip(a, b, strict=True)], 1.0


def random_errors(problems: int) -> None:
    rng = np.random.default_rng(13)
    for name, problem in (("normal", normal_problem), ("Beta", beta_problem)):
        worst_best = worst_loss = 0.0
        for _ in range(problems):
            posteriors, dists, scale = problem(rng)
            best, loss = bayesian.best_and_loss(posteriors)
            reference_best, reference_loss = fine(dists)
            worst_best = max(worst_best, float(np.max(np.abs(best - reference_best))))
            worst_loss = max(worst_loss, float(np.max(np.abs(loss - reference_loss))) / scale)
        print(f"{problems} random {name} problems: worst error {worst_best:.1e} P(best), {worst_loss:.1e} loss / scale")


# The tests' eight-variant cases: seven wide Betas around one of 10^9 or 10^10 exposures.
WIDE = [(1_000 + 50 * i, 100 + 8 * i) for i in range(7)]
HUGE = [[*WIDE[:2], (n, 12 * n // 100), *WIDE[2:]] for n in (10**9, 10**10)]


def worst(rows: list, reference: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    best = np.array([r["probability_to_be_best"] for r in rows], dtype=float)
    loss = np.array([r["expected_loss"] for r in rows], dtype=float)
    return np.array([np.max(np.abs(best - reference[0])), np.max(np.abs(loss - reference[1]))])


def test_case_errors() -> None:
    errors = [worst(cases.conversion(c)["variants"], cases.reference_beta(c)) for c in cases.CASES + HUGE]
    for mass, middle, step, sd in cases.POINT_MASSES:
        specs = [(4_000 + 100 * i, middle + step * (i - 3), sd * (1 + 0.05 * i)) for i in range(7)]
        rows = cases.mean_metric([*specs[:3], (5_000, mass, 0.0), *specs[3:]])["variants"]
        errors.append(worst(rows, cases.reference_point_mass(mass, 3, [(m, s / math.sqrt(n)) for n, m, s in specs])))
    best, loss = np.max(errors, axis=0)
    print(f"the conversion and point-mass cases of the tests: worst error {best:.1e} P(best), {loss:.1e} loss")


def cost(runs: int = 300) -> None:
    n = np.arange(10.0)
    for name, posteriors in (
        ("Beta", BetaPosteriors(5_001 + 37 * n, 45_001 - 37 * n)),
        ("normal", NormalPosteriors(12 + 0.01 * n, 0.13 + 0.001 * n)),
    ):
        times = []
        for _ in range(runs):
            started = time.process_time()
            bayesian.best_and_loss(posteriors)
            times.append((time.process_time() - started) * 1000)
        print(f"best_and_loss, 10 {name} posteriors: median {statistics.median(times):.2f} ms, min {min(times):.2f}")


def main() -> int:
    random_errors(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
    test_case_errors()
    cost()
    return 0


if __name__ == "__main__":
    sys.exit(main())
