"""Always-valid inference: the mixture sequential probability ratio test (mSPRT), for experiments
without a plan (or when asked for). See abacus.mixture for the mixture over scales.

For an estimate theta_hat with variance V, Lambda(theta_hat) is a test martingale under theta = 0,
so by Ville's inequality P(Lambda ever reaches 1/alpha) <= alpha: p = min(1, 1 / Lambda) may be
looked at every day, for as long as the experiment runs, and keeps the false-positive rate at
alpha. Inverting the test gives the confidence sequence theta_hat +/- z sqrt(V), where z is the
distance at which Lambda reaches 1/alpha.

Abacus applies it to the relative lift (with its delta-method variance); the mixture's smallest
scale is the experiment's minimum detectable effect (default 0.05, a 5% relative lift).
"""

import math

from abacus import mixture


def always_valid_p_value(estimate: float, variance: float, mde: float) -> float | None:
    """None when the variance is 0: no test is defined without variation."""
    if variance <= 0:
        return None
    log_lambda = mixture.log_likelihood_ratio(estimate * estimate / variance, variance, mixture.scales(mde))
    return 1.0 if log_lambda <= 0 else math.exp(-log_lambda)


def confidence_sequence(estimate: float, variance: float, mde: float, alpha: float) -> list[float] | None:
    """None when the variance is 0, or so large that no lift is ruled out (no finite interval)."""
    if variance <= 0:
        return None
    half = mixture.half_width_in_standard_errors(variance, alpha, mixture.scales(mde)) * math.sqrt(variance)
    return [estimate - half, estimate + half] if math.isfinite(half) else None
