"""The local stack's rate(...) schedules (abacus_local.schedules): which of the template's
schedules fire, how often, and the event they invoke the function with (EventBridge's)."""

import threading
from datetime import UTC, datetime

import pytest

from abacus.http import invocations
from abacus_local.schedules import rate_schedules, rate_seconds, scheduled_event
from abacus_local.template import Template


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("cron(0 3 * * ? *)", None),
        ("rate(minute)", None),
    ],
)
def test_rate_expressions(expression, seconds):
    assert rate_seconds(expression) == seconds


def test_the_templates_rate_schedule_fires_and_its_cron_stays_manual():
    template = Template()
    expressions = {name: str(template.resolve(props["Schedule"])) for name, props in template.schedules().items()}
    assert expressions["ResultsFunction"].startswith("cron(")
    fired = rate_schedules(expressions, "us-east-1", {name: print for name in expressions})
    assert [(s.function, s.period_s) for s in fired] == [("AutomationFunction", 60)]
    faster = rate_schedules(expressions, "us-east-1", {name: print for name in expressions}, period_override_s=0.5)
    assert [s.period_s for s in faster] == [0.5]


def test_a_schedule_invokes_with_eventbridges_event_every_period_and_outlives_a_failure():
    events: list[dict] = []
    third = threading.Event()

    def invoke(event: dict) -> None:
        events.append(event)
        if len(events) == 3:
            third.set()
        if len(events) == 1:
            raise RuntimeError("the first invocation fails")

    errors: list[Exception] = []
    [schedule] = rate_schedules(
        {"F": "rate(1 minute)"}, "us-east-1", {"F": invoke}, 0.01, on_error=lambda name: errors.append
    )
    schedule.start()
    try:
        assert third.wait(timeout=30)
    finally:
        schedule.stop()
    assert [str(error) for error in errors] == ["the first invocation fails"]
    for event in events[:3]:
        assert invocations.is_scheduled(event) and event["detail-type"] == "Scheduled Event"
        assert invocations.scheduled_time(event) <= datetime.now(UTC)
    assert scheduled_event("r", "eu-west-1", datetime(2026, 11, 25, 3, tzinfo=UTC))["resources"] == [
        "arn:aws:events:eu-west-1:123456789012:rule/r"
    ]
