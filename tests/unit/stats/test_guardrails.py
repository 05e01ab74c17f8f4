"""Guardrails (abacus.stats.guardrails): a treatment's status from its interval and the margin,
and the verdict once a winner that harms a guardrail is held back."""

import pytest

from abacus.core.documents import VariantAnalysis, Verdict
from abacus.stats import guardrails


def row(
    key: str, relative: float, low: float, high: float, significant: bool = False, mean: float = 0.5
) -> VariantAnalysis:
    return {
        "key": key,
        "exposures": 1000,
        "mean": mean,
        "lift": {"absolute": relative * 0.1, "relative": relative, "relative_ci": [low, high]},
        "p_value": 0.001 if significant else 0.5,
        "p_value_adjusted": 0.002 if significant else 0.5,
        "significant": significant,
    }  # type: ignore[typeddict-item]


@pytest.mark.parametrize(
    ("low", "high", "bad", "expected"),
    [
        (0.05, 0.20, "increase", "harmed"),  # wholly above +2%
        (0.01, 0.20, "increase", "inconclusive"),  # significant, but not beyond the margin
        (-0.10, 0.015, "increase", "held"),  # wholly below +2%: non-inferior
        (-0.20, -0.05, "decrease", "harmed"),
        (-0.015, 0.10, "decrease", "held"),
        (-0.03, 0.10, "decrease", "inconclusive"),
    ],
)
def test_status_against_a_2_percent_margin(low, high, bad, expected):
    assert guardrails.status(row("b", (low + high) / 2, low, high), 0.02, bad) == expected


def test_no_interval_is_inconclusive():
    no_interval: VariantAnalysis = {"key": "b", "exposures": 1, "mean": 0.0}  # type: ignore[typeddict-item]
    assert guardrails.status(no_interval, 0.0, "increase") == "inconclusive"


SHIP_B: Verdict = {"decision": "ship", "variant": "b", "reason": "'b' beats 'control' by +30.0% (adjusted p = 0.002)"}


def test_the_best_winner_harming_a_guardrail_gives_way_to_the_next_winner():
    rows = [
        row("control", 0, 0, 0, mean=0.10),
        row("b", 0.3, 0.2, 0.4, significant=True, mean=0.13),
        row("c", 0.2, 0.1, 0.3, significant=True, mean=0.12),
        row("d", 0.5, -0.1, 1.1, mean=0.15),  # best mean, not significant: not a winner
    ]
    verdict = guardrails.hold_back(SHIP_B, rows, {"b": ["guardrail errors (count) +12.0% ..."]})
    assert verdict["decision"] == "ship" and verdict["variant"] == "c"
    assert "held back: 'b' harms guardrail errors" in verdict["reason"]


def test_with_no_other_winner_the_decision_is_held_back():
    rows = [row("control", 0, 0, 0), row("b", 0.3, 0.2, 0.4, significant=True)]
    verdict = guardrails.hold_back(SHIP_B, rows, {"b": ["guardrail errors"]})
    assert verdict == {
        "decision": "held_back",
        "variant": None,
        "reason": "'b' beats 'control' by +30.0% (adjusted p = 0.002), but a guardrail holds it back: "
        "'b' harms guardrail errors",
    }


def test_a_verdict_nothing_harms_stands():
    rows = [row("control", 0, 0, 0), row("b", 0.3, 0.2, 0.4, significant=True)]
    assert guardrails.hold_back(SHIP_B, rows, {}) == SHIP_B
    assert guardrails.hold_back(SHIP_B, rows, {"c": ["x"]}) == SHIP_B
    keep: Verdict = {"decision": "keep_running", "variant": None, "reason": "not yet"}
    assert guardrails.hold_back(keep, rows, {"b": ["x"]}) == keep
