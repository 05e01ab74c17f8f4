"""Holm-Bonferroni adjustment across an experiment's treatment-vs-control comparisons."""


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in the input's order; None stays None and is not counted.

    Sorted ascending, the j-th smallest (from 0) of m becomes max over i <= j of min(1, (m - i) p_(i)).
    """
    defined = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    count = len(defined)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(defined):
        running = max(running, min(1.0, (count - rank) * p))
        adjusted[index] = running
    return adjusted
