"""Sample ratio mismatch: do the exposures fit the configured weights?

Pearson's chi-squared goodness-of-fit test (scipy.stats.chisquare's statistic), flagged when
p < 0.001: at that threshold a healthy experiment is flagged about once in a thousand checks,
while a broken split (a bug in assignment or in exposure logging) is caught within days.
"""

from scipy.special import chdtrc

from abacus.documents import SampleRatioCheck

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
