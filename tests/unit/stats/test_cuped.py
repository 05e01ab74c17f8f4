"""CUPED against an independent reference: the ordinary least squares fit of the outcome on the
variants' indicators and the centred pre-exposure covariate (statsmodels)."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from abacus.stats.analysis import Settings, VariantData, analyse

FIXED = Settings(sequential=False)


def users(rng, n, lift=0.0, rho=0.5, binary=False):
    """(pre-exposure value, outcome) per user, correlated about rho."""
    x = rng.normal(size=n)
    y = rho * x + math.sqrt(1 - rho * rho) * rng.normal(size=n)
    if binary:
        # Users above a threshold convert; the pre-period "converted" likewise.
        return (x > 1.0).astype(float), (y > 1.28 - lift).astype(float)
    return 10 + x, 20 + y + lift


def variant(key, x, y, binary=False):
    pre_sum, pre_squares, cross = float(x.sum()), float((x * x).sum()), float((x * y).sum())
    if binary:
        return VariantData(key, len(y), int(y.sum()), 0.0, 0.0, pre_sum, pre_squares, cross)
    return VariantData(key, len(y), 0, float(y.sum()), float((y * y).sum()), pre_sum, pre_squares, cross)


def ols(groups):
    """statsmodels' fit of y on treatment indicators and the centred covariate."""
    xs = np.concatenate([x for x, _ in groups])
    ys = np.concatenate([y for _, y in groups])
    indicators = [
        np.concatenate([np.full(len(y), float(i == j)) for j, (_, y) in enumerate(groups)])
        for i in range(1, len(groups))
    ]
    design = sm.add_constant(np.column_stack([*indicators, xs - xs.mean()]))
    return sm.OLS(ys, design)


@pytest.mark.parametrize("binary", [False, True])
def test_the_adjusted_effect_is_the_least_squares_fit(binary):
    rng = np.random.default_rng(7)
    groups = [
        users(rng, 20_000, binary=binary),
        users(rng, 20_000, 0.05, binary=binary),
        users(rng, 20_000, 0.1, binary=binary),
    ]
    variants = [variant(key, x, y, binary) for key, (x, y) in zip(["control", "b", "c"], groups, strict=True)]
    analysis = analyse("conversion" if binary else "mean", variants, FIXED)
    fit = ols(groups).fit()
    robust = ols(groups).fit(cov_type="HC2")
    assert analysis["cuped"] is not None
    for index, row in enumerate(analysis["variants"][1:], start=1):
        # The same absolute effect, to rounding.
        assert row["lift"]["absolute"] == pytest.approx(fit.params[index], abs=1e-10)
        control = analysis["variants"][0]
        standard_error = math.hypot(row["adjusted_standard_error"], control["adjusted_standard_error"])
        # Asymptotically the same standard error as the homoscedastic and the robust fits.
        assert standard_error == pytest.approx(fit.bse[index], rel=0.02)
        assert standard_error == pytest.approx(robust.bse[index], rel=0.01)


def test_variance_falls_by_the_squared_correlation():
    rng = np.random.default_rng(3)
    groups = [users(rng, 50_000, rho=0.5), users(rng, 50_000, 0.02, rho=0.5)]
    variants = [variant(key, x, y) for key, (x, y) in zip(["control", "b"], groups, strict=True)]
    analysis = analyse("mean", variants, FIXED)
    assert analysis["cuped"] is not None
    # Var(y - theta x) / Var(y) = 1 - rho^2 at the best theta: 25% less.
    assert analysis["cuped"]["variance_reduction"] == pytest.approx(0.25, abs=0.015)
    assert analysis["variants"][1]["variance_reduction"] == pytest.approx(0.25, abs=0.015)
    assert analysis["cuped"]["theta"] == pytest.approx(0.5, abs=0.02)
    plain = analyse(
        "mean", [VariantData(v.key, v.exposures, sum=v.sum, sum_squares=v.sum_squares) for v in variants], FIXED
    )
    adjusted_ci = analysis["variants"][1]["lift"]["relative_ci"]
    plain_ci = plain["variants"][1]["lift"]["relative_ci"]
    assert adjusted_ci is not None and plain_ci is not None
    width = (adjusted_ci[1] - adjusted_ci[0]) / (plain_ci[1] - plain_ci[0])
    assert width == pytest.approx(math.sqrt(0.75), abs=0.02)


def test_bayesian_numbers_come_from_the_adjusted_estimates():
    rng = np.random.default_rng(5)
    groups = [users(rng, 5_000), users(rng, 5_000, 0.03)]
    variants = [variant(key, x, y) for key, (x, y) in zip(["control", "b"], groups, strict=True)]
    control, treatment = analyse("mean", variants, FIXED)["variants"]
    difference = treatment["adjusted_mean"] - control["adjusted_mean"]
    spread = math.hypot(treatment["adjusted_standard_error"], control["adjusted_standard_error"])
    assert treatment["probability_to_be_best"] == pytest.approx(stats.norm.cdf(difference / spread), abs=1e-7)
    assert treatment["credible_interval"] is not None
    low, high = treatment["credible_interval"]
    assert low == pytest.approx(stats.norm.ppf(0.025, treatment["adjusted_mean"], treatment["adjusted_standard_error"]))
    assert high == pytest.approx(
        stats.norm.ppf(0.975, treatment["adjusted_mean"], treatment["adjusted_standard_error"])
    )


def test_a_covariate_without_variation_or_cuped_off_leaves_the_analysis_as_it_was():
    rng = np.random.default_rng(9)
    groups = [users(rng, 1_000), users(rng, 1_000, 0.1)]
    with_covariate = [variant(key, x, y) for key, (x, y) in zip(["control", "b"], groups, strict=True)]
    no_covariate = [VariantData(v.key, v.exposures, sum=v.sum, sum_squares=v.sum_squares) for v in with_covariate]
    # Nobody had events before their exposure: every pre-exposure value is 0.
    zeros = [
        VariantData(
            v.key, v.exposures, sum=v.sum, sum_squares=v.sum_squares, pre_sum=0.0, pre_sum_squares=0.0, cross_sum=0.0
        )
        for v in with_covariate
    ]
    plain = analyse("mean", no_covariate, FIXED)
    for analysis in (
        analyse("mean", zeros, FIXED),
        analyse("mean", with_covariate, Settings(sequential=False, cuped=False)),
    ):
        assert analysis["cuped"] is None
        assert analysis["variants"][1]["lift"] == plain["variants"][1]["lift"]
        assert "adjusted_mean" not in analysis["variants"][1]


def test_the_command_line_takes_the_covariate_whole():
    problem = {
        "metric": {"kind": "conversion"},
        "sequential": False,
        "variants": [
            {"key": "control", "exposures": 100, "conversions": 10, "pre_sum": 5, "pre_sum_squares": 5},
            {"key": "b", "exposures": 100, "conversions": 12},
        ],
    }
    answer = subprocess.run(
        [sys.executable, "-m", "abacus.stats"], input=json.dumps(problem), capture_output=True, text=True, check=False
    )
    assert answer.returncode == 2
    assert "variants.0" in answer.stderr and "cross_sum" in answer.stderr


@pytest.mark.parametrize("kind", ["conversion", "mean"])
def test_every_look_is_adjusted_on_its_own(kind):
    # The group-sequential test estimates all its looks in one call: each look's theta, grand mean
    # and adjusted estimates must be what that look alone gives, whatever order its variants are in.
    from abacus.stats.estimates import estimate

    rng = np.random.default_rng(11)
    binary = kind == "conversion"
    looks = []
    for size in (300, 1_000, 4_000):
        groups = [users(rng, size, binary=binary), users(rng, size + 17, 0.1, rho=0.3, binary=binary)]
        look = [variant(key, x, y, binary) for key, (x, y) in zip(["control", "b"], groups, strict=True)]
        looks.append(look)
    looks.append([VariantData("control", 40, 4, 50.0, 90.0), VariantData("b", 40, 6, 60.0, 120.0)])  # no covariate
    looks[1].reverse()
    together = estimate(kind, looks, ["control", "b"], adjust=True)
    assert together.adjusted.tolist() == [True, True, True, False]
    assert len(set(together.theta[:3].round(6))) == 3
    for index, look in enumerate(looks):
        alone = estimate(kind, [look], ["control", "b"], adjust=True)
        for field in ("mean", "variance", "raw_mean", "raw_variance", "theta", "unadjusted_variance"):
            np.testing.assert_array_equal(getattr(together, field)[index], getattr(alone, field)[0], err_msg=field)
