"""Always-valid inference: the mixture sequential probability ratio test (mSPRT).

Johari, Koomen, Pekelis and Walsh (2017), "Peeking at A/B tests", with a normal mixing
distribution N(0, tau^2) over the effect. For an estimate theta_hat with variance V:

  Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 theta_hat^2 / (2 V (V + tau^2)))

is (asymptotically) a martingale under theta = 0, so by Ville's inequality P(Lambda ever
reaches 1/alpha) <= alpha: p = min(1, 1 / Lambda) may be looked at every day, for as long as the
experiment runs, and keeps the false-positive rate at alpha. Inverting the test gives the
confidence sequence theta_hat +/- sqrt(V (V + tau^2) / tau^2 * (2 log(1/alpha) + log((V + tau^2) / V))).

Abacus applies it to the relative lift (with its delta-method variance), and tau, the tuning
parameter, is the effect size the test is most sensitive to: the experiment's minimum
detectable effect unless given (default 0.05, a 5% relative lift).
"""

import math


def always_valid_p_value(estimate: float, variance: float, tau: float) -> float | None:
    """None when the variance is 0: no test is defined without variation."""
    if variance <= 0:
        return None
    total = variance + tau**2
    log_lambda = 0.5 * math.log(variance / total) + tau**2 * estimate**2 / (2 * variance * total)
    return 1.0 if log_lambda <= 0 else math.exp(-log_lambda)


def confidence_sequence(estimate: float, variance: float, tau: float, alpha: float) -> list[float] | None:
    if variance <= 0:
        return None
    total = variance + tau**2
    half = math.sqrt(variance * total / tau**2 * (2 * math.log(1 / alpha) + math.log(total / variance)))
    return [estimate - half, estimate + half]
