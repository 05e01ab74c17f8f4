"""Which metric events arrived during a run, and the closest names to one that did not
(experiments/received_events.py), from the days each name was first and last seen."""

from datetime import UTC, date, datetime

from abacus.experiments.received_events import closest, metric_events, warnings
from abacus.experiments.spec import ExperimentFields
from abacus.storage.event_names import Seen

SPEC = ExperimentFields.model_validate(
    {
        "name": "Checkout",
        "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
        "primary_metric": {"event": "purchase"},
        "secondary_metrics": [{"kind": "funnel", "steps": [{"event": "cart"}, {"event": "pay"}]}],
        "guardrail_metrics": [
            {
                "kind": "ratio",
                "numerator": {"event": "refund", "kind": "count"},
                "denominator": {"event": "purchase", "kind": "count"},
            }
        ],
    }
)
LAUNCH = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
STOP = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)


def seen(first: int, last: int) -> Seen:
    return Seen(date(2026, 12, first), date(2026, 12, last))


def test_every_event_a_metric_counts_is_named_by_its_field():
    assert metric_events(SPEC) == [
        ("primary_metric.event", "purchase"),
        ("secondary_metrics[0].steps[0].event", "cart"),
        ("secondary_metrics[0].steps[1].event", "pay"),
        ("guardrail_metrics[0].numerator.event", "refund"),
        ("guardrail_metrics[0].denominator.event", "purchase"),
    ]


def test_the_same_name_but_for_case_comes_before_closer_spellings():
    assert closest("Purchase", ["purchases", "purchase", "login"]) == ["purchase", "purchases"]
    assert closest("purchse", ["Purchase", "purchase", "signup"]) == ["purchase", "Purchase"]
    assert closest("signup", ["login", "logout"]) == []


def test_a_name_last_seen_before_the_launch_day_or_first_seen_after_the_stop_has_not_arrived():
    received = {"purchase": seen(1, 3), "cart": seen(20, 30), "pay": seen(1, 1), "refund": seen(28, 30)}
    stopped = warnings(SPEC, LAUNCH, STOP, received)
    assert [(w["field"], w["event"]) for w in stopped] == [
        ("secondary_metrics[0].steps[0].event", "cart"),
        ("guardrail_metrics[0].numerator.event", "refund"),
    ]
    assert stopped[0]["message"] == (
        "no `cart` event received during its run (2026-12-01 to 2026-12-10); no name received then is close to it"
    )
    assert stopped[0]["suggestions"] == []
    # Running: `cart` and `refund` arrived since (after the day the stop would have been).
    assert warnings(SPEC, LAUNCH, None, received) == []
    # `pay`, last seen on the launch day: counted as arrived (day resolution), even if before the launch.
    assert not [w for w in warnings(SPEC, LAUNCH, None, {**received, "pay": seen(1, 1)}) if w["event"] == "pay"]
    early = warnings(SPEC, datetime(2026, 12, 2, tzinfo=UTC), None, {**received, "pay": seen(1, 1)})
    assert [w["event"] for w in early] == ["pay"]


def test_nothing_is_due_before_the_launch():
    assert warnings(SPEC, None, None, {}) == []
