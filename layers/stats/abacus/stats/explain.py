"""The analysis's numbers in sentences a product manager reads: what the test is and how far it
has come, what the CUPED adjustment did, and when skewness with unequal arms corrected the test."""

from typing import NamedTuple

from abacus.core.documents import CupedSummary, VariantAnalysis
from abacus.stats.frequentist import FEWEST_EXPOSURES
from abacus.stats.skewness import kohavi_users


class Skewed(NamedTuple):
    """A comparison whose test was corrected for skewness: its smaller and larger arm (key, users)
    and the metric's skewness (pooled over the two arms)."""

    smaller: tuple[str, int]
    larger: tuple[str, int]
    skewness: float


def sentences(
    design: str,
    alpha: float,
    rows: list[VariantAnalysis],
    cuped: CupedSummary | None,
    planned: int | None,
    skewed: Skewed | None = None,
) -> list[str]:
    said = [_design(design, alpha, [row for row in rows if "lift" in row], planned)]
    few = [f"'{row['key']}'" for row in rows if row["exposures"] < FEWEST_EXPOSURES]
    if few:
        said.append(
            f"Fewer than 2 users in {', '.join(few)}: a variance needs two, so the comparisons with "
            f"{'it' if len(few) == 1 else 'them'} have no p-value or interval, and no verdict comes from them yet."
        )
    if cuped is not None:
        said.append(_cuped(cuped))
    if skewed is not None:
        said.append(_skewness(skewed))
    return said


def _skewness(skewed: Skewed) -> str:
    (small, small_users), (large, large_users) = skewed.smaller, skewed.larger
    return (
        f"Skewness: the metric's values are skewed (skewness {skewed.skewness:.1f}) and '{small}' has "
        f"{small_users:,} users against {large_users:,} in '{large}'. Kohavi's rule of thumb asks "
        f"355 × skewness² = {kohavi_users(skewed.skewness):,.0f} users per arm before a mean is near normal, so the "
        "test is corrected for the skewness (Hall's transformation): uncorrected, an unequal split calls too many "
        "differences that are not there."
    )


def _design(design: str, alpha: float, treatments: list[VariantAnalysis], planned: int | None) -> str:
    budget = f"{alpha:.0%}"
    if design == "fixed":
        return (
            f"A fixed-horizon test: its {budget} false-positive rate holds only if the results are read once, "
            "at the planned sample."
        )
    if design == "msprt":
        return (
            f"An always-valid test: the results may be read every day, for as long as the experiment runs, and "
            f"the chance of ever calling a winner that is not one stays under {budget}. The interval is the "
            "range of lifts the data have not ruled out."
        )
    fractions = [row.get("information_fraction") for row in treatments]
    reached = min((f for f in fractions if f is not None), default=None)
    boundaries = [row.get("boundary") for row in treatments]
    bar = max((b for b in boundaries if b is not None), default=None)
    progress = "" if reached is None else f" {min(reached, 1.0):.0%} of the planned {planned} users per variant are in"
    if reached is not None and reached >= 1:
        return (
            f"A group-sequential test, now complete:{progress}. Its {budget} false-positive budget is spent, "
            "so its answer stands however long the experiment keeps running."
        )
    strength = "" if bar is None else f"; to be called tonight a lift must be {bar:.1f} standard errors from zero"
    return (
        f"A group-sequential test, read every night: it spends its {budget} false-positive budget by plan, "
        f"little at first and most at the planned sample, so a large lift is called early and no peek can "
        f"add false winners.{progress}{strength}. The interval is the range of lifts still consistent with "
        "the data at tonight's bar."
    )


def _cuped(cuped: CupedSummary) -> str:
    reduction = cuped["variance_reduction"]
    if reduction <= 0.005:
        return (
            "CUPED: what users did before their first exposure does not predict the metric here, "
            "so the adjustment cannot narrow the interval."
        )
    worth = "many times the users" if reduction >= 0.9 else f"about {1 / (1 - reduction) - 1:.0%} more users"
    return (
        f"CUPED: adjusted for what each user did before their first exposure, the lift's variance is "
        f"{reduction:.0%} smaller, worth {worth}; the means marked * are "
        "adjusted, comparing variants as if their users had behaved alike beforehand."
    )
