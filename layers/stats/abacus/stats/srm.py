"""Sample ratio mismatch: do the exposures fit the configured weights?

Pearson's chi-squared goodness-of-fit test (scipy.stats.chisquare's statistic), flagged when
p < 0.001: at that threshold a healthy experiment is flagged about once in a thousand checks,
while a broken split (a bug in assignment or in exposure logging) is caught within days.
"""

from scipy.special import chdtrc

from abacus.core.documents import DailySampleRatio, DayOfExposures, SampleRatioCheck

THRESHOLD = 0.001


def sample_ratio_mismatch(exposures: list[int], weights: list[float]) -> SampleRatioCheck:
    """{"p_value", "mismatch"}. No exposures: p 1. Exposures in a variant of weight 0: p 0."""
    total = sum(exposures)
    weight_sum = sum(weights)
    if total == 0 or weight_sum <= 0:
        return {"p_value": 1.0, "mismatch": False}
    if any(count > 0 and weight == 0 for count, weight in zip(exposures, weights, strict=True)):
        return {"p_value": 0.0, "mismatch": True}
    cells = [
        (count, total * weight / weight_sum) for count, weight in zip(exposures, weights, strict=True) if weight > 0
    ]
    if len(cells) < 2:
        return {"p_value": 1.0, "mismatch": False}
    statistic = sum((observed - expected) ** 2 / expected for observed, expected in cells)
    p_value = float(chdtrc(len(cells) - 1, statistic))
    return {"p_value": p_value, "mismatch": p_value < THRESHOLD}


def by_day(days: list[tuple[str, list[int]]], weights: list[float]) -> DailySampleRatio:
    """The check run on each day's first exposures, to locate a mismatch in time: the first day
    whose p-value is below THRESHOLD / days (Bonferroni over the days, so that a healthy
    experiment running many days is still flagged about once in a thousand)."""
    threshold = THRESHOLD / max(1, len(days))
    checked: list[DayOfExposures] = []
    first: str | None = None
    for date, exposures in days:
        check = sample_ratio_mismatch(exposures, weights)
        mismatch = check["p_value"] < threshold
        checked.append({"date": date, "exposures": exposures, "p_value": check["p_value"], "mismatch": mismatch})
        if mismatch and first is None:
            first = date
    return {"days": checked, "first_mismatch": first, "threshold": threshold}
