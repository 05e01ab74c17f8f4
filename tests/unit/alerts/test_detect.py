"""Which alerts a snapshot calls for: only the design's own verdicts and checks, each keyed so that
it is sent once per experiment, kind and decision."""

from datetime import UTC, datetime, timedelta

from abacus.alerts.detect import alerts

LAUNCH = datetime(2026, 11, 1, tzinfo=UTC)
CUTOFF = datetime(2026, 11, 10, tzinfo=UTC)


def analysis(decision="keep_running", variant=None, exposures=(500, 500), p_values=(None, 0.43), **more):
    rows = [{"key": "control", "exposures": exposures[0], "mean": 0.1}]
    rows += [
        {"key": f"t{i}", "exposures": n, "mean": 0.11, "p_value": p, "probability_to_be_best": 0.9992}
        for i, (n, p) in enumerate(zip(exposures[1:], p_values[1:], strict=True), start=1)
    ]
    return {
        "variants": rows,
        "verdict": {"decision": decision, "variant": variant, "reason": "because"},
        "srm": {"p_value": 0.5, "mismatch": False},
        "planned_exposures": 2000,
        **more,
    }


def kinds(found):
    return [(alert["kind"], alert["decision"]) for alert in found]


def test_keep_running_alerts_nothing_whatever_p_best_or_a_raw_p_value_say():
    assert alerts(analysis(p_values=(None, 0.001)), LAUNCH, CUTOFF, final=False) == []


def test_each_decision_alerts_keyed_by_decision_and_variant():
    assert kinds(alerts(analysis("ship", "t1"), LAUNCH, CUTOFF, False)) == [("decision", "ship:t1")]
    assert kinds(alerts(analysis("ship", "control"), LAUNCH, CUTOFF, False)) == [("decision", "ship:control")]
    assert kinds(alerts(analysis("no_effect"), LAUNCH, CUTOFF, False)) == [("decision", "no_effect")]
    assert kinds(alerts(analysis("held_back", "t1"), LAUNCH, CUTOFF, False)) == [("decision", "held_back:t1")]


def test_an_invalid_split_alerts_as_srm_not_as_a_decision_and_the_first_mismatching_day_too():
    broken = analysis(
        "invalid",
        srm={"p_value": 1e-9, "mismatch": True},
        exposures_by_day={"days": [], "first_mismatch": "2026-11-04", "threshold": 0.0001},
    )
    found = alerts(broken, LAUNCH, CUTOFF, False)
    assert kinds(found) == [("srm", "overall"), ("srm", "daily")]
    assert "2026-11-04" in found[1]["summary"]


def test_a_harmed_guardrail_alerts_per_guardrail_and_variant():
    guardrails = [
        {"metric": {"event": "error", "kind": "count"}, "guardrail": {"status": {"t1": "harmed", "t2": "held"}}},
        {"metric": {"kind": "ratio"}, "guardrail": {"status": {"t1": "inconclusive", "t2": "harmed"}}},
    ]
    found = alerts(
        analysis(exposures=(5, 5, 5), p_values=(None, 0.5, 0.5), guardrail_metrics=guardrails), LAUNCH, CUTOFF, False
    )
    assert kinds(found) == [("guardrail", "0:t1"), ("guardrail", "1:t2")]
    assert "`error`" in found[0]["summary"] and "froze" not in found[0]["summary"]
    # A bandit's alert says what it did: the variant's share is frozen at its floor.
    bandit = analysis(exposures=(5, 5, 5), p_values=(None, 0.5, 0.5), guardrail_metrics=guardrails) | {"bandit": {}}
    assert "the bandit froze 't1' at its floor share" in alerts(bandit, LAUNCH, CUTOFF, False)[0]["summary"]


def test_no_exposures_alerts_only_after_a_whole_day_since_the_launch():
    empty = analysis(exposures=(0, 0))
    assert kinds(alerts(empty, LAUNCH, LAUNCH + timedelta(hours=23), False)) == []
    assert kinds(alerts(empty, LAUNCH, LAUNCH + timedelta(days=1), False)) == [("no_exposures", "none")]
    assert kinds(alerts(empty, None, CUTOFF, False)) == []


def test_the_planned_sample_is_reached_when_every_variant_has_it():
    assert kinds(alerts(analysis(exposures=(2000, 1999)), LAUNCH, CUTOFF, False)) == []
    assert kinds(alerts(analysis(exposures=(2000, 2001)), LAUNCH, CUTOFF, False)) == [("sample_reached", "reached")]
    assert kinds(alerts(analysis(exposures=(2000, 2001), planned_exposures=None), LAUNCH, CUTOFF, False)) == []


def test_a_final_snapshot_alerts_its_verdict():
    found = alerts(analysis("no_effect"), LAUNCH, CUTOFF, final=True)
    assert kinds(found) == [("decision", "no_effect"), ("final", "no_effect")]
