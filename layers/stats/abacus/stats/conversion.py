"""Conversion-rate analysis: per-variant rates, and each treatment against the control.

Fixed-horizon (Wald, unpooled) tests; the sequential, Bayesian and multiple-comparison layers
build on these numbers.
"""

import math
from dataclasses import dataclass

from scipy.special import betaincinv, ndtr, ndtri


@dataclass(frozen=True)
class VariantCounts:
    key: str
    exposures: int
    conversions: int


def analyse_conversion(variants: list[VariantCounts], control: str, alpha: float = 0.05) -> dict:
    """The analysis of one conversion metric.

    Returns {"variants": [per variant: key, exposures, conversions, mean, standard_error,
    credible_interval, and for treatments lift, p_value, significant], "verdict": {...}}.
    Zero exposures give a rate of 0; a lift or p-value that the data cannot define is None, never NaN.
    """
    by_key = {v.key: v for v in variants}
    if control not in by_key:
        raise ValueError(f"control: no variant keyed '{control}'")
    z = float(ndtri(1 - alpha / 2))
    base = by_key[control]
    rows = []
    for counts in variants:
        row = _describe(counts)
        if counts.key != control:
            row.update(_compare(counts, base, z))
            row["significant"] = row["p_value"] is not None and row["p_value"] < alpha
        rows.append(row)
    return {"alpha": alpha, "control": control, "variants": rows, "verdict": _verdict(rows, control)}


def _rate_and_se(counts: VariantCounts) -> tuple[float, float]:
    if counts.exposures == 0:
        return 0.0, 0.0
    rate = counts.conversions / counts.exposures
    return rate, math.sqrt(rate * (1 - rate) / counts.exposures)


def _describe(counts: VariantCounts) -> dict:
    if not 0 <= counts.conversions <= counts.exposures:
        raise ValueError(f"variants.{counts.key}: conversions must be between 0 and exposures")
    rate, se = _rate_and_se(counts)
    # Posterior of the rate under a uniform Beta(1, 1) prior.
    a, b = 1 + counts.conversions, 1 + counts.exposures - counts.conversions
    return {
        "key": counts.key,
        "exposures": counts.exposures,
        "conversions": counts.conversions,
        "mean": rate,
        "standard_error": se,
        "credible_interval": [float(betaincinv(a, b, 0.025)), float(betaincinv(a, b, 0.975))],
    }


def _compare(treatment: VariantCounts, control: VariantCounts, z: float) -> dict:
    p_t, se_t = _rate_and_se(treatment)
    p_c, se_c = _rate_and_se(control)
    absolute = p_t - p_c
    se_diff = math.hypot(se_t, se_c)
    # No test without data in both arms, nor when neither varies (0% or 100% everywhere).
    testable = treatment.exposures > 0 and control.exposures > 0 and se_diff > 0
    p_value = float(2 * ndtr(-abs(absolute) / se_diff)) if testable else None
    if p_c > 0:
        relative = p_t / p_c - 1
        # Delta method: Var(p_t / p_c) ~ se_t^2 / p_c^2 + p_t^2 se_c^2 / p_c^4.
        se_relative = math.sqrt(se_t**2 / p_c**2 + p_t**2 * se_c**2 / p_c**4)
        relative_ci = [relative - z * se_relative, relative + z * se_relative]
    else:
        relative, relative_ci = None, None
    return {
        "lift": {"absolute": absolute, "relative": relative, "relative_ci": relative_ci},
        "p_value": p_value,
    }


def _verdict(rows: list[dict], control: str) -> dict:
    """ship: the treatment with the largest significant positive lift; else keep_running."""
    winners = [r for r in rows if r["key"] != control and r["significant"] and r["lift"]["absolute"] > 0]
    if winners:
        best = max(winners, key=lambda r: r["mean"])
        return {
            "decision": "ship",
            "variant": best["key"],
            "reason": f"'{best['key']}' converts significantly better than '{control}'",
        }
    return {"decision": "keep_running", "variant": None, "reason": "no variant beats the control significantly yet"}
