"""A bandit's primary metric in its snapshot (issue 34): each variant's mean stratified by the
phase of its users' assignment (abacus.stats.bandits), its probability to be best and expected
loss, the shares Thompson sampling asks for next, the regret so far, and the verdict a bandit ends
on: ship the best variant once its probability to be best reaches `decide_at` after
`minimum_days`, else keep running.

The pooled analysis beside it (the metric's `variants`) weights each variant's days by its own
traffic, biased when the outcome drifts while the shares move: a bandit's verdict rests on this.

Pure: no storage. Imports abacus.stats (the worker's)."""

from collections.abc import Mapping, Sequence

from abacus.core.documents import BanditReport, BanditVariant, Lift, Verdict
from abacus.experiments.spec import CONTROL, BanditAllocation
from abacus.stats import bandits, fieller

Z95 = 1.959963984540054

PhaseCells = Mapping[str, Mapping[str, Sequence[float]]]


def _phases(cells: PhaseCells, keys: Sequence[str]) -> list[list[bandits.Cell]]:
    """Each phase with users, in order, as one Cell per variant (none: an empty cell)."""
    empty = (0, 0.0, 0.0)
    return [
        [
            bandits.Cell(int(n), float(total), float(squares))
            for n, total, squares in (cells[p].get(k, empty) for k in keys)
        ]
        for p in sorted(cells, key=int)
    ]


def expected_shares(
    cells: PhaseCells, variant_keys: Sequence[str], phase_points: Mapping[int, Mapping[str, int]]
) -> dict[str, float]:
    """Each variant's expected share of all the users counted, from each phase's users and its
    shares then (basis points): what the sample ratio check compares the counts with."""
    expected = dict.fromkeys(variant_keys, 0.0)
    total = 0.0
    for phase, by_variant in cells.items():
        users = sum(cell[0] for cell in by_variant.values())
        shares = phase_points[int(phase)]
        whole = sum(shares.values())
        for key in variant_keys:
            expected[key] += users * shares[key] / whole
        total += users
    return {key: (value / total if total else 1 / len(variant_keys)) for key, value in expected.items()}


def _lift(estimate: bandits.Estimate, treatment: int, control: int, nonnegative: bool) -> Lift:
    """A treatment's stratified mean against the control's: the difference, relative to the
    control's, and Fieller's 95% interval of the relative one (None where the control's mean is
    too near 0 to bound it). The two means are independent: each phase's cells are of other users."""
    m_t, m_c = estimate.means[treatment], estimate.means[control]
    v_t, v_c = estimate.standard_errors[treatment] ** 2, estimate.standard_errors[control] ** 2
    ratio = fieller.Ratio.of(m_t, v_t, m_c, v_c, nonnegative)
    return {
        "absolute": m_t - m_c,
        "relative": (m_t - m_c) / m_c if m_c != 0 else None,
        "relative_ci": fieller.interval(ratio, Z95),
    }


def report(
    allocation: BanditAllocation,
    cells: PhaseCells,
    variant_keys: Sequence[str],
    phase_points: Mapping[int, Mapping[str, int]],
    nonnegative: bool = True,
) -> BanditReport:
    """The bandit's section of the snapshot (module docstring); `nonnegative`: whether the
    metric's mean cannot be negative (its lifts' intervals then stop at -100%)."""
    phases = _phases(cells, variant_keys)
    exposures = [sum(phase[i].exposures for phase in phases) for i in range(len(variant_keys))]
    shares = expected_shares(cells, variant_keys, phase_points)
    latest = phase_points[max(phase_points)] if phase_points else {key: 1 for key in variant_keys}
    now_shown = {key: latest[key] / sum(latest.values()) for key in variant_keys}
    try:
        estimate = bandits.stratified(phases)
    except ValueError:
        return {
            "variants": [],
            "best": None,
            "target": {},
            "regret": 0.0,
            "phases": len(phases),
            "expected_shares": shares,
            "shares": now_shown,
            "reason": f"every variant needs at least {bandits.MIN_CELL} exposed users for an estimate",
        }
    best, loss = bandits.probability_best(estimate)
    target = bandits.top_two(best) if allocation.top_two else best
    rows: list[BanditVariant] = [
        {
            "key": key,
            "exposures": exposures[i],
            "mean": estimate.means[i],
            "standard_error": estimate.standard_errors[i],
            "interval": list(estimate.interval(i)),
            "probability_best": best[i],
            "expected_loss": loss[i],
        }
        for i, key in enumerate(variant_keys)
    ]
    if CONTROL in variant_keys:
        control = variant_keys.index(CONTROL)
        for i, row in enumerate(rows):
            if i != control:
                row["lift"] = _lift(estimate, i, control, nonnegative)
    leader = max(range(len(variant_keys)), key=lambda i: best[i])
    top = max(estimate.means)
    regret = sum(n * (top - mean) for n, mean in zip(exposures, estimate.means, strict=True))
    return {
        "variants": rows,
        "best": variant_keys[leader],
        "target": dict(zip(variant_keys, target, strict=True)),
        "regret": regret,
        "phases": len(phases),
        "expected_shares": shares,
        "shares": now_shown,
        "reason": f"'{variant_keys[leader]}' leads with a {best[leader]:.1%} probability to be best",
    }


def verdict(allocation: BanditAllocation, bandit: BanditReport, days_running: float | None) -> Verdict:
    """A bandit's verdict: ship its best variant once that one's probability to be best reaches
    `decide_at` and it has run `minimum_days`; else keep running."""
    best = bandit["best"]
    if best is None:
        return {"decision": "keep_running", "variant": None, "reason": bandit["reason"]}
    probability = next(row["probability_best"] for row in bandit["variants"] if row["key"] == best)
    if probability < allocation.decide_at:
        reason = f"{bandit['reason']}, under the {allocation.decide_at:.0%} it ships at"
        return {"decision": "keep_running", "variant": None, "reason": reason}
    days = days_running or 0.0
    if days < allocation.minimum_days:
        reason = f"{bandit['reason']}, but it has run {days:.1f} of its {allocation.minimum_days} minimum days"
        return {"decision": "keep_running", "variant": None, "reason": reason}
    reason = f"'{best}' is best with a {probability:.1%} probability (at least {allocation.decide_at:.0%})"
    return {"decision": "ship", "variant": best, "reason": reason}
