"""Ingestion: PostHog payloads, limits, retries and refusals, exactly-once storage and counting,
and attribution whatever order exposures and events arrive in."""

import base64
import gzip
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from pynamodb.exceptions import PutError

import abacus.storage.events
from abacus.experiments import definitions
from abacus.nightly import page
from abacus.storage.assignments import AssignmentItem
from abacus.storage.events import EventItem
from abacus_local import nightly_inline
from tests.conftest import TOKEN, answer, invoke, sample_event, sample_path, stored_assignment


def launch_sample_experiment() -> None:
    """The sample experiment, launched through the API as running since yesterday: the exposures
    these tests send, stamped seconds to minutes ago, are from its run."""
    assert answer(invoke("ResultsFunction", sample_event("create_experiment")))[0] == 201
    yesterday = {"started_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
    assert answer(invoke("ResultsFunction", sample_event("launch_experiment", body=yesterday)))[0] == 200


def launched_days_ago(days: float, **fields: Any) -> datetime:
    """The sample experiment (with `fields`), created, and launched `days` days ago (as the nightly
    tests launch theirs)."""
    started = datetime.now(UTC) - timedelta(days=days)
    body = json.loads(sample_event("create_experiment")["body"]) | fields
    assert answer(invoke("ResultsFunction", sample_event("create_experiment", body=body)))[0] == 201
    definitions.apply("test", "new-checkout", "launch", started)
    return started


def sent(name: str, distinct_id: str, uuid: str, at: datetime, properties: dict | None = None) -> dict[str, Any]:
    """An event as an app sends it."""
    event = {"event": name, "distinct_id": distinct_id, "uuid": uuid, "timestamp": at.isoformat()}
    return event | {"properties": properties} if properties is not None else event


def flag_called(distinct_id: str, uuid: str, at: datetime, variant: str = "one-page") -> dict[str, Any]:
    """PostHog's exposure event for the sample experiment."""
    properties = {"$feature_flag": "new-checkout", "$feature_flag_response": variant}
    return sent("$feature_flag_called", distinct_id, uuid, at, properties)


def purchase(distinct_id: str, uuid: str, at: datetime) -> dict[str, Any]:
    return sent("purchase", distinct_id, uuid, at)


def post(events: list, token: str = TOKEN) -> tuple[int, dict]:
    return answer(invoke("IngestFunction", sample_event("post_events", body={"token": token, "events": events})))


def run_nightly(day: datetime) -> dict:
    event = json.loads(sample_path("nightly").read_text()) | {"time": day.strftime("%Y-%m-%dT03:00:00Z")}
    return invoke("ResultsFunction", event)


def results() -> dict:
    return answer(invoke("ResultsFunction", sample_event("get_results")))[1]


def stored_events() -> list[EventItem]:
    return list(EventItem.scan())


@pytest.mark.parametrize("name", ["posthog_batch", "posthog_capture", "posthog_e", "posthog_i_v0_e"])
def test_posthog_payloads_are_stored(project, name):
    status, body = answer(invoke("IngestFunction", sample_event(name)))
    assert status == 200 and body["status"] == 1 and body["rejected"] == [], body
    assert body["accepted"] >= 1 and {e.distinct_id for e in stored_events()} == {"user-42"}


def test_feature_flag_called_is_an_exposure_and_purchase_is_attributed(project):
    launch_sample_experiment()
    status, body = answer(invoke("IngestFunction", sample_event("posthog_batch")))
    assert status == 200 and body["accepted"] == 2
    user = stored_assignment("new-checkout", "user-42")
    assert user.variant == "one-page"
    # Stamped 2 s before the batch's sent_at, so (with sent_at's skew corrected) 2 s before receipt.
    assert user.exposed_at is not None
    assert abs((datetime.now(UTC) - user.exposed_at) - timedelta(seconds=2)) < timedelta(seconds=5)
    run_nightly(datetime.now(UTC) + timedelta(days=1))
    rows = {row["key"]: row for row in results()["variants"]}
    assert rows["one-page"]["exposures"] == 1 and rows["one-page"]["conversions"] == 1


def test_sent_at_corrects_the_client_clock():
    from abacus.posthog.capture import normalize

    received = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    body = {"api_key": "t", "sent_at": "2026-11-25T11:00:00+00:00", "batch": [
        {"event": "e", "distinct_id": "u", "timestamp": "2026-11-25T10:59:00+00:00"},
        {"event": "e", "properties": {"distinct_id": "v"}, "offset": 2000},
    ]}  # fmt: skip
    token, (first, second) = normalize(body, received)
    assert token == "t" and isinstance(first, dict) and isinstance(second, dict)
    assert first["timestamp"] == "2026-11-25T11:59:00+00:00"  # the client's clock was an hour slow
    assert second["distinct_id"] == "v" and second["timestamp"] == "2026-11-25T11:59:58+00:00"


def test_too_many_events_or_too_large_a_body_is_413(project):
    status, body = post([{"event": "e", "distinct_id": "u"}] * 1001)
    assert status == 413 and body["error"]["field"] == "events"
    big = sample_event(
        "post_events", body={"token": TOKEN, "events": [{"event": "e", "distinct_id": "x" * 100}] * 9000}
    )
    assert answer(invoke("IngestFunction", big))[0] == 413
    bomb = sample_event("posthog_e")
    bomb["body"] = base64.b64encode(gzip.compress(b"[" + b" " * 5_000_000 + b"]")).decode()
    status, body = answer(invoke("IngestFunction", bomb))
    assert status == 413 and "decompressed" in body["error"]["message"]
    assert stored_events() == []


def test_corrupt_gzip_is_400(project):
    event = sample_event("posthog_e")
    event["body"] = base64.b64encode(b"\x1f\x8bnot gzip").decode()
    status, body = answer(invoke("IngestFunction", event))
    assert status == 400 and body["error"]["field"] == "body"


def posthog_js_body(encoding: str, batch: list[dict]) -> tuple[str, str, bool, str]:
    """(query, body, isBase64Encoded, content-type) as posthog-js sends a capture: gzip-js is a gzip
    body sent as text/plain without Content-Encoding (binary, so API Gateway passes it base64);
    base64 is a form body `data=<base64 of the JSON>`."""
    payload = json.dumps({"api_key": TOKEN, "batch": batch, "sent_at": datetime.now(UTC).isoformat()})
    if encoding == "gzip-js":
        return "compression=gzip-js", base64.b64encode(gzip.compress(payload.encode())).decode(), True, "text/plain"
    data = base64.b64encode(payload.encode()).decode()
    return "compression=base64", urlencode({"data": data}), False, "application/x-www-form-urlencoded"


@pytest.mark.parametrize("encoding", ["gzip-js", "base64"])
@pytest.mark.parametrize("query_names_it", [True, False])
def test_posthog_js_compressions_are_read_without_content_encoding(project, encoding, query_names_it):
    now = datetime.now(UTC)
    batch = [sent("js-purchase", f"js-{encoding}", f"00000000-0000-4000-8000-00000000000{i}", now) for i in (1, 2)]
    query, body, is_base64, content_type = posthog_js_body(encoding, batch)
    event = sample_event("posthog_e")
    del event["headers"]["content-encoding"]
    event["headers"]["content-type"] = content_type
    event.update(body=body, isBase64Encoded=is_base64, rawQueryString=query if query_names_it else "")
    if query_names_it:
        event["queryStringParameters"] = dict([query.split("=")])
    status, answered = answer(invoke("IngestFunction", event))
    if encoding == "base64" and not query_names_it:
        # A form body is base64 only when the query says so (as posthog-js always does).
        assert status == 400 and answered["error"]["field"] == "body"
        return
    assert status == 200 and answered["accepted"] == 2, answered
    assert sorted(e.event for e in stored_events()) == ["js-purchase", "js-purchase"]


def test_a_base64_body_that_is_not_base64_is_400(project):
    event = sample_event("posthog_e")
    del event["headers"]["content-encoding"]
    event["headers"]["content-type"] = "application/x-www-form-urlencoded"
    event.update(body="data=%%%not-base64", isBase64Encoded=False, rawQueryString="compression=base64")
    event["queryStringParameters"] = {"compression": "base64"}
    status, body = answer(invoke("IngestFunction", event))
    assert status == 400 and body["error"]["field"] == "body"


def test_flags_read_posthog_js_base64_body(project):
    launch_sample_experiment()
    flags = sample_event("posthog_flags")
    data = base64.b64encode(json.dumps({"token": TOKEN, "distinct_id": "user-42"}).encode()).decode()
    flags.update(body=urlencode({"data": data}), isBase64Encoded=False, rawQueryString="v=2&compression=base64")
    flags["queryStringParameters"] = {"v": "2", "compression": "base64"}
    flags["headers"]["content-type"] = "application/x-www-form-urlencoded"
    status, body = answer(invoke("AssignFunction", flags))
    assert status == 200 and body["flags"]["new-checkout"]["variant"] is not None, body


def test_unprocessed_items_are_retried_with_backoff(project, monkeypatch):
    connection = EventItem._get_connection()
    original = connection.batch_write_item
    calls = []

    def flaky(put_items):
        calls.append(len(put_items))
        if len(calls) <= 2:  # twice, DynamoDB leaves the last item unprocessed
            result = original(put_items=put_items[:-1]) or {}
            return result | {"UnprocessedItems": {EventItem.Meta.table_name: [{"PutRequest": {"Item": put_items[-1]}}]}}
        return original(put_items=put_items)

    monkeypatch.setattr(connection, "batch_write_item", flaky)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    status, body = post([{"event": "e", "distinct_id": f"u{i}", "uuid": f"id-{i}"} for i in range(30)])
    assert status == 200 and body["accepted"] == 30
    assert calls == [25, 1, 1, 5] and len(stored_events()) == 30


def test_storage_refusing_is_503_naming_the_events(project, monkeypatch):
    connection = EventItem._get_connection()
    monkeypatch.setattr(
        connection,
        "batch_write_item",
        lambda put_items: {
            "UnprocessedItems": {EventItem.Meta.table_name: [{"PutRequest": {"Item": i}} for i in put_items]}
        },
    )
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    status, body = post(
        [{"event": "e", "distinct_id": "u", "uuid": "a"}, {"bad": 1}, {"event": "e", "distinct_id": "u", "uuid": "b"}]
    )
    assert status == 503 and body["error"]["not_stored"] == [0, 2]

    def throttled(put_items):
        raise PutError("ProvisionedThroughputExceededException")

    monkeypatch.setattr(connection, "batch_write_item", throttled)
    status, body = post([{"event": "e", "distinct_id": "u", "uuid": "c"}])
    assert status == 503 and body["error"]["not_stored"] == [0]


def test_a_batch_sent_three_times_and_concurrently_counts_once(project):
    launch_sample_experiment()
    users = [f"user-{i}" for i in range(12)]
    for distinct_id in users:
        invoke(
            "AssignFunction",
            sample_event("assign", body={"token": TOKEN, "distinct_id": distinct_id, "experiments": ["new-checkout"]}),
        )
    batch = [{"event": "purchase", "distinct_id": d, "uuid": f"buy-{d}", "properties": {"amount": 5}} for d in users]
    answers = [post(batch) for _ in range(3)]
    assert [a[1]["accepted"] for a in answers] == [12, 0, 0] and [a[1]["duplicates"] for a in answers] == [0, 12, 12]
    threads = [threading.Thread(target=post, args=(batch,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stored_events()) == 12
    run_nightly(datetime.now(UTC) + timedelta(days=1))
    assert sum(row["conversions"] for row in results()["variants"]) == 12
    assert sum(row["exposures"] for row in results()["variants"]) == 12


def test_attribution_holds_whatever_the_arrival_order(project):
    launch_sample_experiment()
    # Minutes ago: a run counts up to its own start, never what is stamped after it.
    now = datetime.now(UTC) - timedelta(minutes=10)
    # The purchase arrives first, its exposure (as an event) afterwards, stamped earlier.
    post([{"event": "purchase", "distinct_id": "late", "uuid": "p1", "timestamp": now.isoformat()}])
    exposure: dict[str, Any] = {
        "event": "$feature_flag_called",
        "distinct_id": "late",
        "uuid": "x1",
        "timestamp": (now - timedelta(minutes=5)).isoformat(),
        "properties": {"$feature_flag": "new-checkout", "$feature_flag_response": "control"},
    }
    post([exposure])
    # A purchase before the exposure does not count; one after does.
    post(
        [
            {
                "event": "purchase",
                "distinct_id": "early",
                "uuid": "p2",
                "timestamp": (now - timedelta(hours=1)).isoformat(),
            }
        ]
    )
    post(
        [
            exposure
            | {
                "distinct_id": "early",
                "uuid": "x2",
                "properties": {**exposure["properties"], "$feature_flag_response": "one-page"},
            }
        ]
    )
    tomorrow = now + timedelta(days=1)
    run_nightly(tomorrow)
    rows = {row["key"]: row for row in results()["variants"]}
    assert (rows["control"]["exposures"], rows["control"]["conversions"]) == (1, 1)
    assert (rows["one-page"]["exposures"], rows["one-page"]["conversions"]) == (1, 0)
    # An event arriving days late, stamped inside the window, counts at the next run.
    post(
        [
            {
                "event": "purchase",
                "distinct_id": "early",
                "uuid": "p3",
                "timestamp": (now + timedelta(minutes=1)).isoformat(),
            }
        ]
    )
    run_nightly(tomorrow + timedelta(days=1))
    rows = {row["key"]: row for row in results()["variants"]}
    assert rows["one-page"]["conversions"] == 1


def test_nightly_reads_only_users_with_new_events(project, monkeypatch):
    launch_sample_experiment()
    for i in range(5):
        body = {"token": TOKEN, "distinct_id": f"n{i}", "experiments": ["new-checkout"]}
        invoke("AssignFunction", sample_event("assign", body=body))
    post([{"event": "purchase", "distinct_id": "n0", "uuid": "q0"}])
    reads = []
    original = abacus.storage.events.user_events

    def reading(user_id, *args):
        reads.append(user_id)
        return original(user_id, *args)

    monkeypatch.setattr(page, "user_events", reading)

    def run(days: int) -> None:
        # As if each run happened `days` days from now.
        later = datetime.now(UTC) + timedelta(days=days)
        assert nightly_inline.run_all(later, now=later, on_failure=lambda *_: pytest.fail("failed"))["analysed"] == 1

    run(1)
    assert len(reads) == 5  # first night: every exposed user's values are computed once
    reads.clear()
    run(2)
    assert reads == []  # nothing new since: the stored values serve
    post([{"event": "purchase", "distinct_id": "n3", "uuid": "q3"}])
    # The runs' clocks are faked days ahead, so n3's purchase is stamped before run 3's window: a
    # margin of two days brings it in, as the real ten minutes do for writes landing as a run starts.
    monkeypatch.setattr(page, "RECEIPT_MARGIN", timedelta(days=2))
    run(3)
    assert reads == ["test#n3"]


def test_an_event_too_late_to_count_is_refused_alone(project):
    # Past 14 days late, no event may change a window (retention.py): refused with its index.
    now = datetime.now(UTC)
    events = [
        {"event": "buy", "distinct_id": "u", "timestamp": (now - timedelta(days=days)).isoformat()}
        for days in (13.9, 14.1)
    ]
    status, body = post(events)
    assert status == 200 and body["accepted"] == 1, body
    assert [r["index"] for r in body["rejected"]] == [1] and "too late to count" in body["rejected"][0]["error"]


def test_a_timestamp_in_epoch_seconds_is_refused_saying_milliseconds_are_expected(project):
    seconds = int(datetime.now(UTC).timestamp())  # what time.time() gives, a common mistake
    status, body = post([{"event": "buy", "distinct_id": "u", "timestamp": seconds}])
    error = body["rejected"][0]["error"]
    assert status == 200 and body["accepted"] == 0, body
    assert "looks like epoch seconds" in error and f"milliseconds are expected: send {seconds * 1000}" in error, error
    assert "too late" not in error
    status, body = post([{"event": "buy", "distinct_id": "u", "timestamp": seconds * 1_000_000}])
    assert "looks like epoch microseconds" in body["rejected"][0]["error"], body
    capture = {"api_key": TOKEN, "event": "buy", "distinct_id": "u", "timestamp": seconds}
    status, body = answer(invoke("IngestFunction", sample_event("posthog_capture", body=capture)))
    assert status == 200 and f"send {seconds * 1000}" in body["rejected"][0]["error"], body


def test_a_rejected_event_names_every_field_at_fault(project):
    deep: list = []
    for _ in range(40):
        deep = [deep]
    status, body = post([{"uuid": "", "event": "", "distinct_id": "u", "properties": {"deep": deep}}])
    error = body["rejected"][0]["error"]
    assert status == 200 and body["accepted"] == 0, body
    assert "uuid:" in error and "event:" in error and "properties: nested deeper than 32" in error, error
    assert "Value error" not in error


def test_a_duplicate_with_other_content_changes_nothing(project):
    launched_days_ago(5)
    now = datetime.now(UTC)
    exposed = now - timedelta(hours=1)
    # Each user bought a day before their exposure: it does not count.
    status, body = post([flag_called("resent", "x1", exposed), purchase("resent", "p1", now - timedelta(days=1))])
    assert status == 200 and body["accepted"] == 2
    # The stored exposure's uuid again, stamped two days earlier: a duplicate, not stored, and no exposure.
    status, body = post([flag_called("resent", "x1", now - timedelta(days=2))])
    assert status == 200 and (body["accepted"], body["duplicates"]) == (0, 1)
    # Within one batch too: the second event with a uuid is a duplicate of the first.
    twins = [flag_called("twin", "x2", exposed), flag_called("twin", "x2", now - timedelta(days=2))]
    status, body = post([*twins, purchase("twin", "p2", now - timedelta(days=1))])
    assert status == 200 and (body["accepted"], body["duplicates"]) == (2, 1)
    for user in ("resent", "twin"):
        assert stored_assignment("new-checkout", user).exposed_at == exposed
    run_nightly(now + timedelta(days=1))
    rows = {row["key"]: row for row in results()["variants"]}
    assert (rows["one-page"]["exposures"], rows["one-page"]["conversions"]) == (2, 0)


def test_override_users_are_never_exposed(project):
    launched_days_ago(1, overrides={"qa-sdk": "one-page", "qa-native": "control", "qa-assign": "one-page"})
    now = datetime.now(UTC) - timedelta(minutes=10)  # the purchases a minute after: before the run
    # /assign answers the override and stores nothing.
    body = {"token": TOKEN, "distinct_id": "qa-assign", "experiments": ["new-checkout"]}
    assert answer(invoke("AssignFunction", sample_event("assign", body=body)))[1]["assignments"] == {
        "new-checkout": "one-page"
    }
    # The PostHog SDK then reports the flag's use; an app reports a native $exposure.
    sdk = {"api_key": TOKEN, "batch": [flag_called("qa-sdk", "q1", now), flag_called("qa-assign", "q2", now)]}
    assert answer(invoke("IngestFunction", sample_event("posthog_batch", body=sdk)))[0] == 200
    native: dict[str, Any] = {"event": "$exposure", "distinct_id": "qa-native", "uuid": "q3"}
    native |= {"timestamp": now.isoformat(), "properties": {"experiment": "new-checkout", "variant": "control"}}
    buys = [purchase(user, f"b-{user}", now + timedelta(minutes=1)) for user in ("qa-sdk", "qa-native", "qa-assign")]
    # A user without an override, exposed the same ways, counts.
    regular = [flag_called("someone", "s1", now), purchase("someone", "s2", now + timedelta(minutes=1))]
    assert post([native, *buys, *regular])[0] == 200
    for user in ("qa-sdk", "qa-native", "qa-assign"):
        with pytest.raises(AssignmentItem.DoesNotExist):
            stored_assignment("new-checkout", user)
    run_nightly(now + timedelta(days=1))
    rows = {row["key"]: row for row in results()["variants"]}
    assert {key: (row["exposures"], row["conversions"]) for key, row in rows.items()} == {
        "control": (0, 0),
        "one-page": (1, 1),
    }


def native_exposure(distinct_id: str, uuid: str, at: datetime, variant: str = "one-page") -> dict[str, Any]:
    """Abacus's own exposure event for the sample experiment."""
    return sent("$exposure", distinct_id, uuid, at, {"experiment": "new-checkout", "variant": variant})


def test_exposures_before_the_launch_are_refused(project):
    launch_sample_experiment()
    started = datetime.fromisoformat(answer(invoke("ResultsFunction", sample_event("get_experiment")))[1]["started_at"])
    # An exposure stamped 10 days before the launch, a purchase the day after it: neither counts
    # (20 days before, as reported, is past the 14 days an event may arrive late: refused outright).
    events = [
        native_exposure("early", "e1", started - timedelta(days=10)),
        purchase("early", "e2", started - timedelta(days=9)),
    ]
    status, body = post(events)
    assert status == 200 and body["accepted"] == 2
    with pytest.raises(AssignmentItem.DoesNotExist):
        stored_assignment("new-checkout", "early")
    run_nightly(datetime.now(UTC) + timedelta(days=1))
    assert sum(row["exposures"] for row in results()["variants"]) == 0
    # The answer says how many exposure events were no exposure, resent or not.
    assert body["refused_exposures"] == 1 and post(events)[1]["refused_exposures"] == 1


def test_exposures_after_the_stop_are_refused_and_those_from_the_run_count_however_late(project):
    now = datetime.now(UTC)
    launched_days_ago(10)
    definitions.apply("test", "new-checkout", "stop", now - timedelta(days=3))
    status, body = post(
        [
            native_exposure("after", "a1", now - timedelta(days=1)),
            flag_called("late", "l1", now - timedelta(days=5)),
            purchase("late", "l2", now - timedelta(days=4)),
        ]
    )
    assert status == 200 and body["accepted"] == 3
    with pytest.raises(AssignmentItem.DoesNotExist):
        stored_assignment("new-checkout", "after")
    assert stored_assignment("new-checkout", "late").exposed_at == now - timedelta(days=5)
    assert body["refused_exposures"] == 1
    status, recomputed = answer(invoke("ResultsFunction", sample_event("recompute_results")))
    rows = {row["key"]: row for row in recomputed["variants"]}
    assert status == 200 and (rows["one-page"]["exposures"], rows["one-page"]["conversions"]) == (1, 1)


def test_posthog_js_remote_config_lets_the_sdk_proceed(project):
    status, config = answer(invoke("AssignFunction", sample_event("posthog_remote_config")))
    assert status == 200 and config["token"] == TOKEN
    # The compressions ingestion reads, and no flags request while the project has no experiment.
    assert "gzip-js" in config["supportedCompression"] and config["hasFeatureFlags"] is False
    assert config["sessionRecording"] is False and config["siteApps"] == [] and "surveys" not in config
    launch_sample_experiment()
    script = invoke("AssignFunction", sample_event("posthog_remote_config_script"))
    assert script["statusCode"] == 200 and script["headers"]["Content-Type"] == "application/javascript"
    assert f'window._POSTHOG_REMOTE_CONFIG||{{}};all["{TOKEN}"]=' in script["body"]
    assert '"hasFeatureFlags": true' in script["body"]
    unknown = sample_event("posthog_remote_config", path="/array/phc_nobody/config")
    unknown["pathParameters"] = {"token": "phc_nobody"}
    status, body = answer(invoke("AssignFunction", unknown))
    assert status == 401 and body["error"]["field"] == "token"


def test_a_projects_day_is_spread_over_the_receipt_shards_and_unsharded_events_are_still_read(project):
    from abacus.core.settings import settings

    now = datetime.now(UTC)
    batch = [sent("spread", f"spread-{i}", f"00000000-0000-4000-8000-{i:012d}", now) for i in range(400)]
    assert post(batch)[1]["accepted"] == 400
    per_key: dict[str, int] = {}
    for item in stored_events():
        per_key[item.receipt_day] = per_key.get(item.receipt_day, 0) + 1
    # Every shard of the day takes its share: no one index key holds the project's day.
    assert len(per_key) == settings.receipt_shards == 32
    assert max(per_key.values()) < 3 * 400 / 32
    # An event stored before the shards existed, under the day's unsharded key, is read as well.
    legacy = EventItem(
        "test#legacy-user", "legacy-uuid", event="spread", distinct_id="legacy-user", timestamp=now,
        received_at=now, expires_at=int(now.timestamp()) + 86400, receipt_day=f"test#{now.date().isoformat()}",
        receipt=f"{now.isoformat()}#legacy-uuid",
    )  # fmt: skip
    legacy.save()
    later = datetime.now(UTC)
    found = {
        item.distinct_id for item in abacus.storage.events.received_between("test", now - timedelta(minutes=1), later)
    }
    assert found == {f"spread-{i}" for i in range(400)} | {"legacy-user"}


def test_properties_are_stored_compressed_and_events_stored_before_as_json_are_read_alike(project):
    import boto3

    now = datetime.now(UTC)
    assert post([sent("buy", "new-way", "00000000-0000-4000-8000-0000000000aa", now, {"amount": 12.5})])[0] == 200
    (item,) = stored_events()
    raw = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=EventItem.Meta.table_name, Key={"user_id": {"S": item.user_id}, "uuid": {"S": item.uuid}}
    )["Item"]
    assert "B" in raw["pz"] and "properties" not in raw  # compressed, binary
    # An event stored before: its properties as JSON text under "properties".
    old = dict(raw, uuid={"S": "old-uuid"}, properties={"S": json.dumps({"amount": 7})})
    del old["pz"]
    boto3.client("dynamodb", region_name="us-east-1").put_item(TableName=EventItem.Meta.table_name, Item=old)
    read = {
        e.uuid: e.event_properties()
        for e in abacus.storage.events.user_events(item.user_id, ["buy"], now - timedelta(1))
    }
    assert read == {item.uuid: {"amount": 12.5}, "old-uuid": {"amount": 7}}


def test_posthog_js_state_properties_are_not_stored_the_apps_are(project):
    body = {
        "api_key": TOKEN,
        "batch": [
            {
                "event": "$pageview",
                "uuid": "00000000-0000-4000-8000-0000000000bb",
                "properties": {
                    "distinct_id": "js-user", "token": TOKEN, "$insert_id": "x1", "$time": 1764000000.1,
                    "$active_feature_flags": ["a"], "$feature/a": "b", "$web_vitals_enabled_server_side": False,
                    "$current_url": "https://shop.example.com/pricing", "plan": "pro", "$browser": "Chrome",
                },
            }
        ],
    }  # fmt: skip
    status, answered = answer(invoke("IngestFunction", sample_event("posthog_batch", body=body)))
    assert status == 200 and answered["accepted"] == 1
    (item,) = stored_events()
    assert item.distinct_id == "js-user"
    assert item.event_properties() == {
        "$current_url": "https://shop.example.com/pricing",
        "plan": "pro",
        "$browser": "Chrome",
    }


def test_the_clock_correction_counts_from_when_api_gateway_received_the_request(project):
    """PostHog's correction moves an event by (receipt - sent_at). Receipt is API Gateway's
    requestContext.timeEpoch, not the function's clock: a cold start or a queue before the handler
    must not move one batch's events later than the next's (a purchase before its exposure)."""
    now = datetime.now(UTC)
    gateway = (now - timedelta(seconds=5)).replace(microsecond=0)  # the request waited 5 s for the function
    client_clock = datetime(2026, 1, 1, tzinfo=UTC)  # a browser whose clock is far off
    event = sample_event("posthog_batch")
    event["requestContext"]["timeEpoch"] = int(gateway.timestamp() * 1000)
    event["body"] = json.dumps(
        {
            "api_key": TOKEN,
            "sent_at": client_clock.isoformat(),
            "batch": [purchase("clock-user", "c10c0000-0000-4000-8000-000000000001", client_clock)],
        }
    )
    assert invoke("IngestFunction", event)["statusCode"] == 200
    [stored] = abacus.storage.events.stored([("test#clock-user", "c10c0000-0000-4000-8000-000000000001")]).values()
    assert stored.timestamp == gateway
    # A receipt time that is not plausibly this request's (a replayed event, a minute old) is not used.
    event["requestContext"]["timeEpoch"] = int((now - timedelta(minutes=5)).timestamp() * 1000)
    event["body"] = event["body"].replace(
        "c10c0000-0000-4000-8000-000000000001", "c10c0000-0000-4000-8000-000000000002"
    )
    before = datetime.now(UTC)
    assert invoke("IngestFunction", event)["statusCode"] == 200
    [later] = abacus.storage.events.stored([("test#clock-user", "c10c0000-0000-4000-8000-000000000002")]).values()
    assert before <= later.timestamp <= datetime.now(UTC)
