"""Nothing accepted is silently ignored (issue 31): a metric whose event never arrives (a typo, a
name in another case) is said in the results, the report, the live check and the console, with
the closest names received; exposure events that count as none are counted in the answer by
reason, and shown in the live check."""

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pytest

from abacus.core.cache import TtlCache
from abacus.core.documents import Snapshot
from abacus.experiments import definitions
from abacus.ingestion import received
from abacus.results.report import html_page, text_report
from abacus.storage import event_names, live_counts
from tests.conftest import TOKEN, answer, invoke, sample_event
from tests.integration.test_console import session_cookie

NOW = datetime.now(UTC)
LAUNCHED = NOW - timedelta(days=1)
LAUNCH_DAY = LAUNCHED.date().isoformat()


def call(name: str, key: str = "new-checkout", body: dict | None = None, **query: str) -> tuple[int, dict]:
    """An admin route's sample request, for the experiment `key`."""
    event = sample_event(name, body=body)
    event["rawPath"] = event["rawPath"].replace("new-checkout", key)
    if "pathParameters" in event:
        event["pathParameters"] = {"key": key}
    if query:
        event["rawQueryString"] = "&".join(f"{name}={value}" for name, value in query.items())
        event["queryStringParameters"] = query
    return answer(invoke("ResultsFunction", event))


def create(key: str = "new-checkout", **fields: Any) -> None:
    body = json.loads(sample_event("create_experiment")["body"]) | {"key": key} | fields
    status, created = call("create_experiment", key, body)
    assert status == 201, created


def launch(key: str = "new-checkout") -> None:
    """Launched through the API as running since yesterday (LAUNCHED)."""
    status, launched = call("launch_experiment", key, {"started_at": LAUNCHED.isoformat()})
    assert status == 200, launched


def post(events: list[dict]) -> dict:
    status, body = answer(
        invoke("IngestFunction", sample_event("post_events", body={"token": TOKEN, "events": events}))
    )
    assert status == 200, body
    return body


def event(name: str, distinct_id: str, uuid: str, at: datetime = NOW, **properties: Any) -> dict:
    sent = {"event": name, "distinct_id": distinct_id, "uuid": uuid, "timestamp": at.isoformat()}
    return sent | {"properties": properties} if properties else sent


def page(name: str, cookie: str, key: str = "new-checkout") -> str:
    request = sample_event(name)
    request["cookies"] = [cookie]
    request["rawPath"] = request["rawPath"].replace("new-checkout", key)
    if "pathParameters" in request:
        request["pathParameters"] = {"key": key}
    response = invoke("ResultsFunction", request)
    assert response["statusCode"] == 200, response["body"][:500]
    return str(response["body"])


METRICS: dict[str, Any] = {
    "primary_metric": {"event": "purchse"},  # a typo of `purchase`
    "secondary_metrics": [
        {"event": "Signup"},  # the app sends `signup`
        {"event": "refund", "kind": "count"},  # arrives: no warning
        {"kind": "funnel", "steps": [{"event": "cart"}, {"event": "chekout"}]},
    ],
    "guardrail_metrics": [
        {
            "kind": "ratio",
            "numerator": {"event": "refund", "kind": "count"},
            "denominator": {"event": "ordr", "kind": "count"},
            "margin": 0.05,
        }
    ],
}
RECEIVED = ["purchase", "Purchase", "signup", "refund", "cart", "checkout", "order"]


def the_app_sends_its_events() -> None:
    post([event(name, f"user-{index}", f"e{index}") for index, name in enumerate(RECEIVED)])


def test_metric_events_never_received_are_said_with_the_closest_names_received(project):
    create(**METRICS)
    launch()
    the_app_sends_its_events()
    # Before the first snapshot: the pending answer says so already.
    status, pending = call("get_results")
    assert status == 200 and pending["status"] == "pending"
    expected = {
        "primary_metric.event": (
            f"no `purchse` event received since the launch ({LAUNCH_DAY}); received: `purchase`, `Purchase`",
            ["purchase", "Purchase"],
        ),
        "secondary_metrics[0].event": (
            f"no `Signup` event received since the launch ({LAUNCH_DAY}); received: `signup`",
            ["signup"],
        ),
        "secondary_metrics[2].steps[1].event": (
            f"no `chekout` event received since the launch ({LAUNCH_DAY}); received: `checkout`",
            ["checkout"],
        ),
        "guardrail_metrics[0].denominator.event": (
            f"no `ordr` event received since the launch ({LAUNCH_DAY}); received: `order`",
            ["order"],
        ),
    }
    said = {warning["field"]: (warning["message"], warning["suggestions"]) for warning in pending["warnings"]}
    assert said == expected
    # A snapshot: 0 conversions and keep_running, and the warnings beside them.
    status, ready = call("recompute_results")
    assert status == 200 and ready["status"] == "ready", ready
    assert ready["verdict"]["decision"] == "keep_running"
    assert {warning["field"] for warning in ready["warnings"]} == set(expected)
    status, latest = call("get_results")
    assert {warning["field"] for warning in latest["warnings"]} == set(expected)
    status, dated = call("get_results", date=ready["date"])
    assert status == 200 and {warning["field"] for warning in dated["warnings"]} == set(expected)
    # The report, in a terminal and as a page.
    snapshot = cast(Snapshot, latest)
    text = text_report.text(snapshot, "new-checkout")
    assert f"Warning: {expected['primary_metric.event'][0]}." in text
    assert "`Signup`" in text and "`refund`" not in text.split("\n\n")[0]
    section = html_page.results_section([snapshot])
    assert "no `purchse` event received since the launch" in section and 'class="warning error"' in section
    # The console's Results page and its live check.
    cookie = session_cookie()
    assert "no `purchse` event received since the launch" in page("console_experiment", cookie)
    live = page("console_live_check", cookie)
    assert re.findall(r'data-warning="([^"]+)"', live) == list(expected)
    assert f"primary_metric.event: {expected['primary_metric.event'][0]}. Its metric counts nothing" in live


def test_a_warning_goes_once_the_event_arrives(project):
    create(primary_metric={"event": "purchase"}, secondary_metrics=[{"event": "Signup"}])
    launch()
    post([event("purchase", "user-1", "p1")])
    assert [warning["field"] for warning in call("get_results")[1]["warnings"]] == ["secondary_metrics[0].event"]
    post([event("Signup", "user-1", "s1")])
    assert call("get_results")[1]["warnings"] == []
    cookie = session_cookie()
    assert "data-warning" not in page("console_live_check", cookie)


def test_no_event_at_all_names_no_suggestion_and_a_draft_has_no_warning(project):
    create()
    status, draft = call("get_results")
    assert status == 200 and "warnings" not in draft  # no launch: nothing was due yet
    launch()
    [warning] = call("get_results")[1]["warnings"]
    assert warning == {
        "field": "primary_metric.event",
        "event": "purchase",
        "message": f"no `purchase` event received since the launch ({LAUNCH_DAY}); no name received then is close "
        "to it",
        "suggestions": [],
    }


def test_an_event_seen_only_before_the_launch_has_not_arrived(project):
    """Day resolution: the names' days compared with the launch day."""
    create()
    three_days_ago = (NOW - timedelta(days=3)).date()
    shard = event_names.shard_of(event_names.EVENTS, "purchase")
    event_names.add("test", event_names.EVENTS, shard, ["purchase"], three_days_ago, NOW)
    launch()
    [warning] = call("get_results")[1]["warnings"]
    assert warning["message"].startswith(f"no `purchase` event received since the launch ({LAUNCH_DAY})")
    post([event("purchase", "user-1", "p1")])
    assert call("get_results")[1]["warnings"] == []
    assert event_names.read("test", event_names.EVENTS)["purchase"] == event_names.Seen(three_days_ago, NOW.date())


# Exposures refused, by reason ----------------------------------------------------------------


def exposure(distinct_id: str, uuid: str, key: str, variant: str, at: datetime = NOW) -> dict:
    return event("$exposure", distinct_id, uuid, at, experiment=key, variant=variant)


def flag_called(distinct_id: str, uuid: str, key: str, variant: Any, at: datetime = NOW) -> dict:
    return event(
        "$feature_flag_called", distinct_id, uuid, at, **{"$feature_flag": key, "$feature_flag_response": variant}
    )


def test_each_refused_exposure_is_counted_with_its_reason(project):
    create(overrides={"qa-anna": "one-page"})
    launch()
    create("draft-one")
    create("gone")
    assert call("archive_experiment", "gone")[0] == 200
    batch = [
        flag_called("u1", "x1", "new-checkout", "one-page"),  # an exposure
        flag_called("u2", "x2", "new-checkout", "One-Page"),  # no such variant
        exposure("u3", "x3", "new-checkout", "treatment"),  # no such variant
        exposure("u4", "x4", "new-chekout", "control"),  # no such experiment
        exposure("u5", "x5", "draft-one", "control"),  # a draft
        flag_called("u6", "x6", "gone", "control"),  # archived
        flag_called("u7", "x7", "new-checkout", "control", at=LAUNCHED - timedelta(hours=1)),  # before the launch
        flag_called("qa-anna", "x8", "new-checkout", "one-page"),  # an override
        # Not exposures to any experiment: an ordinary flag, and a user out of the rollout.
        flag_called("u9", "x9", "dark-mode", "on"),
        flag_called("u10", "x10", "new-checkout", False),
    ]
    answered = post(batch)
    reasons = {"unknown_variant": 2, "unknown_experiment": 1, "draft": 1, "archived": 1}
    reasons |= {"before_launch": 1, "override": 1}
    assert answered["accepted"] == len(batch) and answered["refused_exposure_reasons"] == reasons
    assert answered["refused_exposures"] == sum(reasons.values())
    # A redelivery: answered the same (as its events are, duplicates), counted once by the live check.
    again = post(batch)
    assert again["duplicates"] == len(batch) and again["refused_exposure_reasons"] == reasons

    cookie = session_cookie()
    live = page("console_live_check", cookie)
    shown = dict(re.findall(r'data-refused="([^"]+)"><code>[^<]+</code>: ([\d,]+) ', live))
    assert shown == {"before_launch": "1", "override": "1", "unknown_variant": "2"}, live
    assert "1 <code>$exposure</code> event of this project named no experiment of it" in live
    assert re.search(r'data-unknown-key="new-chekout"><code>new-chekout</code>, last on [\d-]+: close to this', live)
    # The draft's live check: its refusals, before any counter.
    draft = page("console_live_check", cookie, "draft-one")
    assert "The live check starts at the launch." in draft and 'data-refused="draft"' in draft
    assert "(while a draft)" in draft
    # An archived experiment's refusals are answered, not counted (its flag is still served).
    gone = definitions.get("test", "gone")
    assert live_counts.read_refused([live_counts.run_scope(gone.experiment_id, gone.started_at)]) == {
        live_counts.run_scope(gone.experiment_id, gone.started_at): {}
    }


def test_an_ordinary_flags_feature_flag_called_is_no_refusal(project):
    """PostHog's SDKs send $feature_flag_called for every flag they evaluate: one that is no
    experiment of the project is not Abacus's to refuse (a $exposure naming it is)."""
    create()
    launch()
    answered = post([flag_called("u1", "x1", "dark-mode", "on"), flag_called("u2", "x2", "beta-banner", "variant-b")])
    assert answered["refused_exposures"] == 0 and answered["refused_exposure_reasons"] == {}
    assert event_names.read("test", event_names.UNKNOWN_EXPERIMENTS) == {}
    refused = post([exposure("u3", "x3", "dark-mode", "on")])
    assert refused["refused_exposure_reasons"] == {"unknown_experiment": 1}
    assert set(event_names.read("test", event_names.UNKNOWN_EXPERIMENTS)) == {"dark-mode"}


# The names kept: bounded, written once a day per environment ------------------------------------


def test_a_shard_keeps_at_most_its_bound_and_still_updates_the_names_it_holds(project, monkeypatch):
    monkeypatch.setattr(event_names, "PER_SHARD", 2)
    day, later = date(2026, 1, 5), date(2026, 1, 6)
    assert event_names.add("test", event_names.EVENTS, 3, ["a", "b"], day, NOW) == []
    assert event_names.add("test", event_names.EVENTS, 3, ["c", "a"], later, NOW) == ["c"]
    assert event_names.add("test", event_names.EVENTS, 3, ["b"], later, NOW) == []
    assert event_names.read("test", event_names.EVENTS) == {
        "a": event_names.Seen(day, later),
        "b": event_names.Seen(day, later),
    }


def test_names_with_brackets_dots_and_percents_are_kept_as_sent(project):
    names = ["clicked [Buy]", "page.view", "100% done", "a[0]"]
    post([event(name, "user-1", f"n{index}") for index, name in enumerate(names)])
    assert set(event_names.read("test", event_names.EVENTS)) == set(names)


def test_an_environment_writes_a_name_once_a_day(project, monkeypatch):
    monkeypatch.setattr(received, "_written", TtlCache(ttl_seconds=received.DAY_SECONDS))
    writes: list[tuple[int, tuple[str, ...], date]] = []
    add = event_names.add

    def counted(project_id, kind, shard, names, day, now):
        writes.append((shard, tuple(names), day))
        return add(project_id, kind, shard, names, day, now)

    monkeypatch.setattr(event_names, "add", counted)
    today = datetime.now(UTC)
    received.record_events("test", [_item("purchase"), _item("signup"), _item("purchase")], today)
    assert sorted(name for _, names, _ in writes for name in names) == ["purchase", "signup"]
    for _ in range(3):
        received.record_events("test", [_item("purchase"), _item("signup")], today)
    assert len(writes) == len({shard for shard, _, _ in writes}) <= 2  # nothing more that day
    received.record_events("test", [_item("purchase")], today + timedelta(days=1))
    assert writes[-1][1:] == (("purchase",), (today + timedelta(days=1)).date())


def test_a_request_writes_at_most_its_bound_of_names(project, monkeypatch):
    monkeypatch.setattr(received, "_written", TtlCache(ttl_seconds=received.DAY_SECONDS))
    monkeypatch.setattr(received, "MAX_NAMES_A_REQUEST", 3)
    post([event(f"name-{index}", "user-1", f"n{index}") for index in range(5)])
    assert len(event_names.read("test", event_names.EVENTS)) == 3
    post([event(f"name-{index}", "user-1", f"m{index}") for index in range(5)])
    assert len(event_names.read("test", event_names.EVENTS)) == 5  # the rest with a later request


def _item(name: str) -> Any:
    from abacus.storage.events import EventItem

    return EventItem("test#u", f"{name}-uuid", event=name)


# The console suggests the names received --------------------------------------------------------


def test_the_creation_form_suggests_the_event_names_received(project):
    post([event("purchase", "user-1", "p1"), event("signup", "user-1", "s1", NOW - timedelta(days=2))])
    cookie = session_cookie()
    form = page("console_new_form", cookie)
    assert re.search(r'id="metric_event"[^>]*list="received-events"', form)
    datalist = re.search(r'<datalist id="received-events">(.*?)</datalist>', form)
    assert datalist is not None
    assert re.findall(r'<option value="([^"]+)">', datalist.group(1)) == ["purchase", "signup"]


def test_deleting_a_project_deletes_its_names_and_refused_counters(project):
    from abacus import projects

    create()
    launch()
    post([exposure("u1", "x1", "nowhere", "a"), flag_called("u2", "x2", "new-checkout", "nope")])
    found = {
        "names": event_names.read("test", event_names.EVENTS),
        "unknown": event_names.read("test", event_names.UNKNOWN_EXPERIMENTS),
    }
    assert all(found.values())
    run = live_counts.run_scope(definitions.get("test", "new-checkout").experiment_id, LAUNCHED)
    assert live_counts.read_refused(["test", run]) == {"test": {"unknown_experiment": 1}, run: {"unknown_variant": 1}}
    projects.delete("test", datetime.now(UTC))
    assert event_names.read("test", event_names.EVENTS) == {}
    assert event_names.read("test", event_names.UNKNOWN_EXPERIMENTS) == {}
    assert live_counts.read_refused(["test", run]) == {"test": {}, run: {}}


@pytest.mark.parametrize("reason", live_counts.REFUSED_REASONS)
def test_every_reason_has_its_counter_and_words(reason):
    from abacus.assignment import live_check
    from abacus.ingestion import attribution

    assert set(attribution.REASONS) == set(live_counts.REFUSED_REASONS)
    assert reason in live_check.REFUSAL_WORDS or reason == live_check.UNKNOWN_EXPERIMENT
