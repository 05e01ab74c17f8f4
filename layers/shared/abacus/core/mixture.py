"""The always-valid test's mixture, standard library only: the stats engine tests with it, and
planning (in every function) sizes samples for it.

The mixture sequential probability ratio test (Johari, Koomen, Pekelis and Walsh 2017) with one
normal mixing distribution N(0, tau^2) over the effect has, for an estimate with variance V,

  Lambda_tau = sqrt(V / (V + tau^2)) * exp(tau^2 estimate^2 / (2 V (V + tau^2))),

a test martingale under no effect. It is most sensitive to effects near tau and nearly blind to
much larger ones: with tau = 5% an estimate of +200% five standard errors from zero gives
Lambda = 1.3 (p = 0.75). A weighted average of test martingales is a test martingale, so Abacus
mixes over scales tau_j = mde * 2^j (j = 0, 1, ... until tau passes LARGEST_SCALE), half the
weight on tau = mde (so effects near the minimum detectable effect keep nearly all their power)
and the other half spread evenly over the larger scales: an overwhelming difference is then
significant at the first look where it is, at the cost of log 2 in the evidence needed near the
mde. Ville's inequality still bounds the chance that Lambda ever reaches 1/alpha by alpha.
"""

import math
from collections.abc import Sequence

# Relative lifts beyond +1,600% are not what an A/B test is sized for; the grid stops there.
LARGEST_SCALE = 16.0
MDE_WEIGHT = 0.5


def scales(mde: float) -> list[tuple[float, float]]:
    """(tau, weight) pairs of the mixture for a minimum detectable effect `mde` (> 0)."""
    taus = [mde]
    while taus[-1] < LARGEST_SCALE:
        taus.append(taus[-1] * 2)
    if len(taus) == 1:
        return [(mde, 1.0)]
    rest = (1 - MDE_WEIGHT) / (len(taus) - 1)
    return [(tau, MDE_WEIGHT if index == 0 else rest) for index, tau in enumerate(taus)]


def log_likelihood_ratio(squared_z: float, variance: float, mixture: Sequence[tuple[float, float]]) -> float:
    """log Lambda for an estimate `squared_z` squared standard errors from the tested value."""
    if math.isinf(squared_z):
        return math.inf  # an estimate infinitely many standard errors away (a variance that underflows)
    terms = []
    for tau, weight in mixture:
        shrink = variance / (variance + tau * tau)  # V / (V + tau^2)
        # log V - log(V + tau^2), not log(shrink): a subnormal V would make shrink 0.
        log_shrink = math.log(variance) - math.log(variance + tau * tau)
        terms.append(math.log(weight) + 0.5 * log_shrink + (1 - shrink) * squared_z / 2)
    top = max(terms)
    return top + math.log(sum(math.exp(term - top) for term in terms))


def half_width_in_standard_errors(variance: float, alpha: float, mixture: Sequence[tuple[float, float]]) -> float:
    """z such that the confidence sequence is estimate +/- z sqrt(V): where log Lambda reaches
    log(1/alpha). Lambda grows with the squared distance, so bisection finds it."""
    target = math.log(1 / alpha)
    # One scale alone reaching 1/alpha bounds the distance from above.
    bounds = [
        2 * (target - math.log(weight) - 0.5 * (math.log(variance) - math.log(variance + tau * tau))) / (1 - shrink)
        for tau, weight in mixture
        if (shrink := variance / (variance + tau * tau)) < 1
    ]
    if not bounds:
        return math.inf  # a variance so large that no scale can tell any effect from none
    high = min(bounds)
    low = 0.0
    for _ in range(100):
        middle = (low + high) / 2
        if log_likelihood_ratio(middle, variance, mixture) >= target:
            high = middle
        else:
            low = middle
        if high - low <= 1e-12 * high:
            break
    return math.sqrt(high)
