"""The decision card (results/decision_card.py) on hand-made analyses, one per decision: the
decision is the verdict's, the figures are the treatment's own numbers in the metric's units, the
interval is the design's (never the fixed-horizon one beside a sequential test's), and P(best) is
kept out of the headline and squared with the decision in words. Then the stats engine's own
analyses, and a simulation of why P(best) read nightly is no decision."""

import copy
from typing import Any, cast

import numpy as np
import pytest
from scipy.stats import norm

from abacus.core.documents import MetricJson, SnapshotAnalysis
from abacus.results import decision_card
from abacus.results.decision_card import card, lines
from abacus.stats.analysis import CONVERSION, Settings, VariantData, analyse
from tests.report_history import history

PURCHASE: MetricJson = {"event": "purchase", "kind": "conversion", "window_days": 14}


def row(key: str, exposures: int, mean: float, best: float, loss: float, **comparison: Any) -> dict[str, Any]:
    """A variant's row; a treatment's with `lift` and its tests (comparison's fields)."""
    return {
        "key": key,
        "exposures": exposures,
        "mean": mean,
        "standard_error": 0.01,
        "credible_interval": [mean - 0.02, mean + 0.02],
        "probability_to_be_best": best,
        "expected_loss": loss,
        **comparison,
    }


def treatment(
    key: str,
    exposures: int,
    mean: float,
    control_mean: float,
    interval: list[float] | None,
    p_adjusted: float,
    best: float,
    loss: float,
    alpha: float = 0.05,
    **more: Any,
) -> dict[str, Any]:
    absolute = mean - control_mean
    return row(
        key,
        exposures,
        mean,
        best,
        loss,
        lift={"absolute": absolute, "relative": mean / control_mean - 1, "relative_ci": interval},
        p_value=p_adjusted,
        p_value_adjusted=p_adjusted,
        significant=p_adjusted < alpha,
        **more,
    )


def analysis(
    verdict: dict[str, Any],
    variants: list[dict[str, Any]],
    design: str = "spending",
    metric: MetricJson = PURCHASE,
    **more: Any,
) -> SnapshotAnalysis:
    """A snapshot's analysis as stored: the primary metric's, with `verdict` as given."""
    return cast(
        SnapshotAnalysis,
        {
            "kind": "conversion" if metric["kind"] in ("conversion", "funnel") else "mean",
            "control": "control",
            "alpha": 0.05,
            "sequential": design != "fixed",
            "design": design,
            "method": "a test",
            "planned_exposures": 10_000 if design == "spending" else None,
            "cuped": None,
            "explanation": [],
            "variants": variants,
            "srm": {"p_value": 0.5, "mismatch": False},
            "verdict": {"variant": None, **verdict},
            "metric": metric,
            "secondary_metrics": [],
            **more,
        },
    )


def keep_running_at_high_p_best(days_left: int | None = 6) -> SnapshotAnalysis:
    """The issue's case: P(best) 99.92% beside a sequential p-value of 0.43, and keep running.
    The fixed-horizon interval beside the sequential one excludes 0; the design's does not."""
    return analysis(
        {
            "decision": "keep_running",
            "reason": "no variant differs significantly from the control yet; about 6 more day(s) to reach the "
            "planned sample",
            "days_left": days_left,
        },
        [
            row("control", 2000, 0.10, 0.0008, 0.013),
            treatment(
                "b",
                2000,
                0.113,
                0.10,
                [-0.021, 0.29],
                0.43,
                0.9992,
                0.00002,
                p_value_fixed=0.0016,
                relative_ci_fixed=[0.05, 0.21],
                boundary=4.12,
                information_fraction=0.2,
            ),
        ],
    )


def test_keep_running_with_p_best_above_99_percent_says_p_best_is_not_a_decision():
    shown = card(keep_running_at_high_p_best())
    assert shown["decision"] == "keep_running" and shown["variant"] is None and shown["treatment"] == "b"
    # The headline is the decision and the days left: no P(best), no number that reads as a win.
    assert shown["headline"] == (
        "Keep running: no variant has crossed the test's bar on purchase yet; about 6 more days to the planned sample."
    )
    assert "P(best)" not in shown["headline"] + shown["why"] and "99" not in shown["headline"]
    assert shown["days_left"] == 6
    best = shown["probability_to_be_best"]
    assert best is not None and best["value"] == 0.9992 and best["variant"] == "b"
    assert best["text"].startswith("P(best) 99.92% for 'b' is not a decision:")
    assert best["text"].endswith("the group-sequential test has not crossed its bar: keep running.")
    # Why, at tonight's bar: the boundary tonight's look needed.
    assert "tonight a lift must be 4.1 standard errors from zero to be called" in shown["why"]
    assert "(-2.1% to +29.0%) still includes no change" in shown["why"]


def test_a_sequential_designs_card_gives_its_own_interval_not_the_fixed_horizon_one():
    shown = card(keep_running_at_high_p_best())
    interval = shown["interval"]
    assert interval is not None
    assert (interval["low"], interval["high"]) == (-0.021, 0.29)  # relative_ci, not relative_ci_fixed
    assert interval["bar"] == "95% interval at tonight's boundary" and interval["level"] == pytest.approx(0.95)
    assert interval["text"] == "95% interval at tonight's boundary for 'b': -2.1% to +29.0%."


@pytest.mark.parametrize(
    "design, bar",
    [("msprt", "95% always-valid interval"), ("fixed", "95% fixed-horizon interval")],
)
def test_each_design_names_its_interval(design, bar):
    shown = card({**keep_running_at_high_p_best(), "design": design})
    assert shown["interval"] is not None and shown["interval"]["bar"] == bar
    assert shown["interval"]["text"].startswith(f"{bar} for 'b': ")


def test_without_an_interval_yet_the_card_says_there_is_none_rather_than_a_number():
    snapshot = keep_running_at_high_p_best()
    snapshot["variants"][1]["lift"]["relative_ci"] = None  # tonight's bar too high to bound the lift
    shown = card(snapshot)
    assert shown["interval"] is not None and (shown["interval"]["low"], shown["interval"]["high"]) == (None, None)
    assert shown["interval"]["text"] == (
        "No 95% interval at tonight's boundary for 'b' yet: too little data to bound its lift at this bar."
    )
    assert shown["why"].startswith("There is too little data yet to bound the lift at the test's bar")


def test_the_days_left_unknown_say_why_in_the_headline():
    snapshot = keep_running_at_high_p_best(days_left=None)
    snapshot["verdict"]["reason"] = (
        "no variant differs significantly from the control yet; the days left cannot be estimated before a "
        "full day of exposures (3 hours so far)"
    )
    shown = card(snapshot)
    assert shown["days_left"] is None
    assert shown["headline"].endswith(
        "; the days left cannot be estimated before a full day of exposures (3 hours so far)."
    )


def ship() -> SnapshotAnalysis:
    return analysis(
        {"decision": "ship", "variant": "b", "reason": "'b' beats 'control' by +20.0% (adjusted p = 0.0031)"},
        [
            row("control", 5000, 0.12, 0.0004, 0.024),
            treatment("b", 5000, 0.144, 0.12, [0.06, 0.35], 0.0031, 0.9996, 0.0000152, boundary=2.9),
        ],
    )


def test_ship_gives_the_lift_in_the_metrics_units_and_the_risk_of_shipping_now():
    shown = card(ship())
    assert shown["decision"] == "ship" and shown["variant"] == shown["treatment"] == "b"
    # 0.144 - 0.12 = 0.024: 2.4 more users in every 100 purchase.
    assert shown["headline"] == "Ship 'b': it lifts purchase by +20.0% (+2.4 purchase conversions per 100 users)."
    lift = shown["lift"]
    assert lift is not None and lift["relative"] == pytest.approx(0.2) and lift["absolute"] == pytest.approx(0.024)
    assert shown["why"] == (
        "'b' is past the test's bar (adjusted p = 0.0031, below 5%): the group-sequential test, read every night, "
        "keeps the chance of a false winner under 5%."
    )
    risk = shown["expected_loss"]
    assert risk is not None and risk["variant"] == "b" and risk["expected_loss"] == 0.0000152
    # 0.0000152 of a rate: 0.00152 purchase conversions per 100 users.
    assert risk["text"].startswith("Risk of shipping 'b' now: an expected loss of 0.0015 purchase conversions per 100")
    best = shown["probability_to_be_best"]
    assert best is not None and best["text"] == "P(best) 99.96% for 'b', in line with the decision."
    assert shown["days_left"] is None and shown["changes"] is None


def test_ship_on_an_earlier_crossing_says_why_tonights_interval_includes_zero():
    snapshot = ship()
    snapshot["variants"][1]["lift"]["relative_ci"] = [-0.01, 0.4]
    assert "the bar was crossed on an earlier night" in card(snapshot)["why"]
    assert "earlier night" not in card(ship())["why"]


def test_ship_the_control_speaks_of_the_closest_treatment_and_the_controls_risk():
    snapshot = analysis(
        {"decision": "ship", "variant": "control", "reason": "every variant is significantly worse than 'control'"},
        [
            row("control", 5000, 0.20, 0.97, 0.00001),
            treatment("b", 5000, 0.17, 0.20, [-0.24, -0.06], 0.001, 0.02, 0.03),
            treatment("c", 5000, 0.18, 0.20, [-0.17, -0.03], 0.004, 0.01, 0.02),
        ],
    )
    shown = card(snapshot)
    assert shown["variant"] == "control" and shown["treatment"] == "c"
    assert shown["headline"] == (
        "Keep 'control': every variant does worse on purchase, the closest ('c') by -10.0% "
        "(-2.0 purchase conversions per 100 users)."
    )
    risk, best = shown["expected_loss"], shown["probability_to_be_best"]
    assert risk is not None and risk["variant"] == "control" and risk["expected_loss"] == 0.00001
    assert best is not None and best["variant"] == "control" and best["value"] == 0.97


def test_no_effect_says_the_verdicts_reason():
    reason = "every variant's lift is within ±5% of 'control': an effect that large is ruled out"
    snapshot = analysis(
        {"decision": "no_effect", "reason": reason},
        [
            row("control", 90000, 0.10, 0.4, 0.001),
            treatment("b", 90000, 0.1005, 0.10, [-0.03, 0.04], 0.7, 0.6, 0.0008),
        ],
    )
    shown = card(snapshot)
    assert shown["headline"] == (
        "Stop: no effect worth shipping on purchase; 'b' +0.5% (+0.050 purchase conversions per 100 users)."
    )
    assert shown["why"] == "Every variant's lift is within ±5% of 'control': an effect that large is ruled out."
    best = shown["probability_to_be_best"]
    assert best is not None and best["text"].startswith("P(best) 60.0% for 'b' is not a decision: whichever is best")


def test_held_back_names_the_guardrail_and_keeps_the_harm_out_of_the_risk_figure():
    won = "'b' beats 'control' by +5.0% (adjusted p = 0.001)"
    harm = "'b' harms guardrail error (count) +12.0% [+5.0%, +19.0%], beyond its 2% margin"
    snapshot = analysis(
        {"decision": "held_back", "reason": f"{won}, but a guardrail holds it back: {harm}"},
        [
            row("control", 8000, 0.20, 0.01, 0.01),
            treatment("b", 8000, 0.21, 0.20, [0.02, 0.08], 0.001, 0.99, 0.0001),
        ],
    )
    shown = card(snapshot)
    assert shown["variant"] is None and shown["treatment"] == "b"
    assert shown["headline"] == f"Do not ship: {won}, but a guardrail holds it back."
    assert shown["why"] == f"{harm[0].upper()}{harm[1:]}: a treatment that harms a guardrail is never shipped."
    risk = shown["expected_loss"]
    assert risk is not None and "(on purchase alone: the guardrail's harm comes on top)" in risk["text"]


def test_invalid_gives_no_risk_and_trusts_no_number():
    reason = "sample ratio mismatch: the exposures do not fit the configured weights (p = 1.2e-08)"
    snapshot = ship()
    snapshot["verdict"] = {"decision": "invalid", "variant": None, "reason": reason}
    snapshot["srm"] = {"p_value": 1.2e-08, "mismatch": True}
    shown = card(snapshot)
    assert shown["decision"] == "invalid" and shown["expected_loss"] is None
    assert shown["headline"].startswith("Invalid: the exposures do not fit the configured weights")
    assert shown["why"] == f"{reason[0].upper()}{reason[1:]}: no comparison can be trusted until the split is fixed."
    best = shown["probability_to_be_best"]
    assert best is not None and best["text"].endswith("cannot be trusted either: the split is broken.")


def test_a_lift_past_the_interval_but_not_holm_says_so():
    snapshot = keep_running_at_high_p_best()
    snapshot["variants"][1]["lift"]["relative_ci"] = [0.01, 0.25]
    snapshot["variants"].append(cast(Any, treatment("c", 2000, 0.1, 0.10, [-0.1, 0.1], 0.9, 0.0, 0.013)))
    snapshot["variants"][1]["p_value_adjusted"] = 0.062
    shown = card(snapshot)
    assert shown["why"].startswith(
        "The 95% interval at tonight's boundary of 'b' rules out no change, but with 2 comparisons against "
        "'control' its Holm-adjusted p-value (0.062) is not below 5%"
    )


@pytest.mark.parametrize(
    "metric, control_mean, mean, counted, expected",
    [
        (PURCHASE, 0.10, 0.113, None, "+1.3 purchase conversions per 100 users"),
        (PURCHASE, 0.10, 0.113, "companies", "+1.3 purchase conversions per 100 companies"),
        (
            {"event": "purchase", "kind": "count", "window_days": 7},
            0.40,
            0.43,
            None,
            "+3.0 purchase events per 100 users",
        ),
        ({"event": "pageview", "kind": "count", "window_days": 7}, 12.0, 12.5, None, "+0.50 pageview events per user"),
        (
            {"event": "purchase", "kind": "sum", "property": "amount", "window_days": 7},
            30.0,
            30.42,
            None,
            "+0.42 purchase amount per user",
        ),
        (
            {"event": "purchase", "kind": "sum", "property": "amount", "window_days": 7},
            30.0,
            30.42,
            "companies",
            "+0.42 purchase amount per company",
        ),
        (
            {
                "kind": "ratio",
                "window_days": 7,
                "numerator": {"event": "purchase", "kind": "sum", "property": "amount", "window_days": 7},
                "denominator": {"event": "visit", "kind": "count", "window_days": 7},
            },
            2.0,
            2.05,
            None,
            "+0.050 purchase amount per visit",
        ),
        (
            {
                "kind": "funnel",
                "window_days": 7,
                "steps": [{"event": "view_cart"}, {"event": "purchase"}],
            },
            0.30,
            0.285,
            None,
            "-1.5 funnel completions per 100 users",
        ),
    ],
    ids=["conversion", "conversion-groups", "count-small", "count", "sum", "sum-groups", "ratio", "funnel"],
)
def test_the_lift_is_said_in_the_metrics_units(metric, control_mean, mean, counted, expected):
    extra = {"counted_unit": counted} if counted else {}
    snapshot = analysis(
        {"decision": "keep_running", "reason": "no variant differs significantly from the control yet"},
        [
            row("control", 1000, control_mean, 0.5, 0.01),
            treatment("b", 1000, mean, control_mean, [-0.1, 0.2], 0.5, 0.5, 0.01),
        ],
        metric=metric,
        **extra,
    )
    lift = card(snapshot)["lift"]
    assert lift is not None and lift["in_units"] == expected


def test_the_metric_is_named_in_the_headline_by_its_kind():
    ratio = {
        "kind": "ratio",
        "window_days": 7,
        "numerator": {"event": "click", "kind": "count", "window_days": 7},
        "denominator": {"event": "session", "kind": "sum", "property": "minutes", "window_days": 7},
    }
    funnel = {"kind": "funnel", "window_days": 7, "steps": [{"event": "view_cart"}, {"event": "purchase"}]}
    for metric, name in ((ratio, "click events per unit of session minutes"), (funnel, "the funnel to purchase")):
        snapshot = {**ship(), "metric": metric}
        assert card(cast(SnapshotAnalysis, snapshot))["headline"].startswith(f"Ship 'b': it lifts {name} by ")


@pytest.mark.parametrize(
    "value, signed, expected",
    [(1.3, True, "+1.3"), (0.042, False, "0.042"), (12.54, True, "+12.5"), (1234.5, False, "1,234"), (0, True, "0")],
)
def test_amounts_keep_two_significant_digits_or_one_decimal(value, signed, expected):
    assert decision_card._amount(value, signed) == expected


def test_the_changes_since_the_last_snapshot():
    before = keep_running_at_high_p_best(days_left=8)
    before["variants"][1]["lift"]["relative"] = 0.05
    for variant in before["variants"]:
        variant["exposures"] = 1700
    now = cast(SnapshotAnalysis, {**ship(), "date": "2026-09-08"})
    dated_before = cast(SnapshotAnalysis, {**before, "date": "2026-09-07"})
    changes = card(now, dated_before)["changes"]
    assert changes == {
        "since": "2026-09-07",
        "decision_before": "keep_running",
        "relative_lift_before": 0.05,
        "exposures_added": 10000 - 3400,
        "days_left_before": 8,
        "text": "Since 2026-09-07: the decision went from keep running to ship 'b'; the lift of 'b' moved from "
        "+5.0% to +20.0%; +6,600 users exposed.",
    }


def test_the_days_left_move_while_the_decision_stays():
    before, now = keep_running_at_high_p_best(days_left=8), keep_running_at_high_p_best(days_left=6)
    changes = card(now, before)["changes"]
    assert changes is not None and changes["days_left_before"] == 8 and changes["exposures_added"] == 0
    assert changes["text"] == (
        "Since the previous snapshot: the decision is still keep running; the lift of 'b' moved from +13.0% to "
        "+13.0%; +0 users exposed; the days left went from 8 to 6."
    )


def test_only_the_primary_metrics_missing_events_are_noted_and_lines_read_in_order():
    warnings = [
        {
            "field": "primary_metric.event",
            "event": "purchse",
            "message": "no `purchse` event received",
            "suggestions": [],
        },
        {"field": "secondary_metrics[0].event", "event": "x", "message": "no `x` event received", "suggestions": []},
    ]
    shown = card(cast(SnapshotAnalysis, {**ship(), "warnings": warnings}))
    assert shown["notes"] == [
        "No `purchse` event received: the primary metric counts nothing from `purchse`, whatever the decision says."
    ]
    said = lines(shown)
    assert said[:3] == [
        shown["headline"],
        shown["why"],
        "Lift of 'b': +20.0% (+2.4 purchase conversions per 100 users).",
    ]
    assert said[-1] == shown["notes"][0] and lines(shown, notes=False) == said[:-1]


def test_the_card_is_a_pure_function_of_the_json():
    snapshot, previous = ship(), keep_running_at_high_p_best()
    kept = copy.deepcopy((snapshot, previous))
    assert card(snapshot, previous) == card(snapshot, previous)
    assert (snapshot, previous) == kept


def test_on_the_engines_analyses_the_card_follows_the_verdict_and_the_designs_interval():
    """The group-sequential design, with a plan: its interval at tonight's boundary is wider than
    the fixed-horizon one, and the card gives the first."""
    variants = [VariantData("control", 3000, conversions=300), VariantData("b", 3000, conversions=345)]
    analysed = analyse(CONVERSION, variants, Settings(planned_exposures=30_000, days_running=3.0))
    snapshot = cast(SnapshotAnalysis, {**analysed, "metric": PURCHASE, "secondary_metrics": []})
    b = snapshot["variants"][1]
    assert b["lift"]["relative_ci"] != b.get("relative_ci_fixed")
    shown = card(snapshot)
    assert shown["decision"] == snapshot["verdict"]["decision"] and shown["variant"] == snapshot["verdict"]["variant"]
    assert shown["interval"] is not None
    assert [shown["interval"]["low"], shown["interval"]["high"]] == b["lift"]["relative_ci"]
    for day, previous in zip(history(6)[1:], history(6)[:-1], strict=True):
        daily = card(day, previous)
        assert (daily["decision"], daily["variant"]) == (day["verdict"]["decision"], day["verdict"]["variant"])


def test_p_best_read_every_night_passes_95_percent_far_more_often_than_5_percent_of_aa_tests():
    """What the card says of P(best): simulated A/A experiments (10% both arms, 300 users an arm a
    night, 14 nights), P(b best) of two Beta posteriors by their normal approximation (an
    independent reference, not our integration). One look passes 95% in about 5% of them; read
    every night, in about 20%."""
    rng = np.random.default_rng(7)
    experiments, nights, per_night = 4000, 14, 300
    a = rng.binomial(per_night, 0.1, size=(experiments, nights)).cumsum(axis=1)
    b = rng.binomial(per_night, 0.1, size=(experiments, nights)).cumsum(axis=1)
    n = per_night * np.arange(1, nights + 1)
    mean_a, mean_b = (1 + a) / (2 + n), (1 + b) / (2 + n)
    spread = np.sqrt(mean_a * (1 - mean_a) / (3 + n) + mean_b * (1 - mean_b) / (3 + n))
    best = norm.cdf((mean_b - mean_a) / spread)
    once, nightly = (best[:, -1] >= 0.95).mean(), (best >= 0.95).any(axis=1).mean()
    assert 0.04 < once < 0.065
    assert 0.15 < nightly < 0.25


def bandit_snapshot(decision: str) -> SnapshotAnalysis:
    """A bandit whose base rate doubled in phase 2, when 'b' got 90% of the traffic: pooled, 'b'
    looks 55% better; stratified by phase, it is 10% better. Its verdict is the bandit's own."""
    from abacus.experiments.spec import BanditAllocation
    from abacus.nightly import bandit_analysis

    cells = {
        "0": {"control": [10_000, 500, 500], "b": [10_000, 550, 550]},
        "1": {"control": [2000, 200, 200], "b": [18_000, 1980, 1980]},
    }
    allocation = BanditAllocation(kind="bandit", decide_at=0.95, minimum_days=7)
    report = bandit_analysis.report(
        allocation, cells, ["control", "b"], {0: {"control": 5000, "b": 5000}, 1: {"control": 1000, "b": 9000}}
    )
    verdict = bandit_analysis.verdict(allocation, report, 8.0 if decision == "ship" else 3.0)
    assert verdict["decision"] == decision
    pooled = [
        row("control", 12_000, 700 / 12_000, 0.0, 0.03),
        treatment("b", 28_000, 2530 / 28_000, 700 / 12_000, [0.3, 0.5], 1e-9, 1.0, 0.0),
    ]
    return analysis(dict(verdict), pooled, bandit=report)


def test_a_bandit_s_card_gives_the_stratified_lift_not_the_pooled_one():
    shown = card(bandit_snapshot("ship"))
    # Stratified by phase (each phase weighted by its share of all users, 10,000 each):
    # control 0.5 * 0.05 + 0.5 * 0.10 = 0.075; b 0.5 * 0.055 + 0.5 * 0.11 = 0.0825: +10%
    # (pooled: 700 / 12,000 against 2,530 / 28,000, +55%).
    lift = shown["lift"]
    assert lift is not None and lift["relative"] == pytest.approx(0.10) and lift["absolute"] == pytest.approx(0.0075)
    assert shown["headline"] == "Ship 'b': it lifts purchase by +10.0% (+0.75 purchase conversions per 100 users)."
    # The interval: every ratio rho the z-test of m_b - rho m_c = 0 does not reject, by brute force.
    shares = np.array([0.5, 0.5])
    variances = {}
    for key, n, conversions in (("control", [10_000, 2000], [500, 200]), ("b", [10_000, 18_000], [550, 1980])):
        n_, c_ = np.array(n, dtype=float), np.array(conversions, dtype=float)
        within = (c_ - c_ * c_ / n_).sum() / (n_.sum() - 2)  # each variant's spread about its phases' means
        variances[key] = within * (shares**2 @ (1 / n_))
    rho = np.linspace(0.5, 1.8, 260_001)
    accepted = rho[
        np.abs(0.0825 - rho * 0.075) / np.sqrt(variances["b"] + rho**2 * variances["control"]) <= norm.ppf(0.975)
    ]
    interval = shown["interval"]
    assert interval is not None and interval["level"] == 0.95
    assert interval["low"] == pytest.approx(accepted[0] - 1, abs=1e-4)
    assert interval["high"] == pytest.approx(accepted[-1] - 1, abs=1e-4)
    assert interval["text"].startswith("95% interval of the means stratified by phase for 'b': ")
    assert shown["why"].startswith("'b' is best with a ") and "stratified by phase; a bandit ships" in shown["why"]
    best = shown["probability_to_be_best"]
    snapshot = bandit_snapshot("ship")
    stratified_best = next(v for v in snapshot["bandit"]["variants"] if v["key"] == "b")
    assert best is not None and best["value"] == stratified_best["probability_best"] < 1.0
    risk = shown["expected_loss"]
    assert risk is not None and risk["expected_loss"] == stratified_best["expected_loss"]
    assert decision_card.BANDIT_NOTE in shown["notes"]


def test_a_bandit_still_running_says_its_own_rule():
    shown = card(bandit_snapshot("keep_running"), previous=bandit_snapshot("keep_running"))
    assert shown["headline"] == "Keep running: no variant is yet likely enough to be the best on purchase."
    assert "of its 7 minimum days" in shown["why"]
    best = shown["probability_to_be_best"]
    assert best is not None and best["text"].endswith(
        "on the means stratified by phase: the bandit's decision rests on it."
    )
    changes = shown["changes"]
    assert changes is not None and changes["relative_lift_before"] == pytest.approx(0.10)


def test_a_bandit_without_an_estimate_yet_gives_no_pooled_figure():
    snapshot = bandit_snapshot("keep_running")
    early = cast(SnapshotAnalysis, {**snapshot, "bandit": {**snapshot["bandit"], "variants": [], "best": None}})
    shown = card(early)
    assert shown["lift"] is None and shown["interval"] is None and shown["probability_to_be_best"] is None
    assert shown["headline"] == "Keep running: no variant is yet likely enough to be the best on purchase."
