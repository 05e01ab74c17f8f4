"""People, not browsers (issue 30): what identity resolution costs in DynamoDB, measured.

The real handlers (IngestFunction's /batch/, AssignFunction's /flags/) and the nightly job
(abacus_local/nightly_inline.py) run on moto's in-memory tables made from template.yaml, with the
deployed caches (CacheSeconds). Every DynamoDB request is recorded by tests/capacity.py's
CapacityRecorder (botocore's own event hooks, no product code patched), which charges each its
read and write units by DynamoDB's rules from the sizes of the items it touched: 0.5 RRU per 4 KB
eventually consistent, 1 strongly consistent, each item of a BatchGetItem on its own; 1 WRU per KB
written (the larger of before and after, index entries too), twice in a transaction. The persons
table's joins use a connection of their own (storage/persons.py `_connection`), so every DynamoDB
client made while recording is hooked too.

Scenarios:
(a) ingest: EVENTS posthog-js events in batches of 50, persons of 20 events each (10 under the
    anonymous id, one of them `$feature_flag_called`, then `$identify` with `$anon_distinct_id`
    and `$set`, then 9 under the user id; the first event of each carries `$set_once`: 1 in 20).
    Without persons: the same events with no `$anon_distinct_id`, `$set` or `$set_once`, and the
    persons table's requests left out (what ingest cost before persons). With: as sent.
(b) /flags/ (posthog-js's, for the sample experiment): a returning id; a new id; the new id's
    call carrying `$anon_distinct_id` of an id already assigned (the join posthog-js's reload
    after identify makes). Added: the persons table's requests of a returning call, and the
    with-$anon call against a new id's plain call.
(c) the nightly job: PERSONS exposed persons of one id against PERSONS of two ids (joined by
    `$identify`), none converted, a first night and a second with no new events; per person per night.

Dollars at bench/cost_table.py's prices (on-demand, us-east-1): $0.625 per million WRU, $0.125
per million RRU.

Run: .venv/bin/python bench/identity_costs.py [events, default 10000] [flags calls and nightly persons, default 400]
"""

import os
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

os.environ.update({"POWERTOOLS_LOG_LEVEL": "ERROR"})

import botocore.session
from moto import mock_aws

from bench.cost_table import RRU, WRU
from tests.capacity import CapacityRecorder, Request
from tests.capacity_scenarios import (
    EXPERIMENT,
    deployed_caches,
    launch_sample_experiment,
    post_posthog_batch,
    posthog_js_pageview,
)
from tests.conftest import ADMIN_KEY, FLAGS_KEY, TOKEN, answer, invoke, sample_event, template_resources

MILLION = 1_000_000
PERSONS_TABLE = "PersonsTable"
EVENTS_A_PERSON = 20
BATCH = 50


# Recording ------------------------------------------------------------------------------------


@contextmanager
def recording(recorder: CapacityRecorder) -> Iterator[CapacityRecorder]:
    """Every PynamoDB model's client, and every DynamoDB client made meanwhile (a transaction's
    own connection), recorded."""
    import abacus.storage.persons  # noqa: F401 - its model among those whose clients are hooked

    guard = threading.local()
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = original(self, service_name, *args, **kwargs)
        if service_name == "dynamodb" and not getattr(guard, "on", False):
            guard.on = True
            try:
                recorder.attach(client)
            finally:
                guard.on = False
        return client

    with recorder.recording():
        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        try:
            yield recorder
        finally:
            botocore.session.Session.create_client = original  # type: ignore[method-assign]


@contextmanager
def backend() -> Iterator[None]:
    """Every table and queue of template.yaml in moto, the sample project, the deployed caches."""
    from abacus import projects
    from abacus_local.template import Template

    with mock_aws(), template_resources(Template()):
        projects.create("Bench", project_id="test", token=TOKEN, admin_key=ADMIN_KEY, flags_key=FLAGS_KEY)
        with deployed_caches():
            yield


class Tally:
    """Requests, items (an index entry written counts as one) and units by (operation, table or
    index), from recorded requests; a request on two tables counts once on each."""

    def __init__(self, requests: list[Request], without: frozenset[str] = frozenset()) -> None:
        self.rows: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0])
        for request in requests:
            targets = {charge.target for charge in request.charges if charge.table not in without}
            for target in targets:
                row = self.rows[request.operation, target]
                row[0] += 1
                for charge in request.charges:
                    if charge.target == target:
                        row[1] += 1
                        row[2] += charge.read_units
                        row[3] += charge.write_units

    def total(self, only: str | None = None) -> tuple[float, float, float]:
        """(requests, RRU, WRU), of one table or of all."""
        rows = [row for (_, target), row in self.rows.items() if only is None or target.split("/")[0] == only]
        return sum(r[0] for r in rows), sum(r[2] for r in rows), sum(r[3] for r in rows)


def dollars(rru: float, wru: float) -> float:
    return rru * RRU + wru * WRU


def print_tally(title: str, tally: Tally, per: float, unit: str) -> None:
    """The tally scaled to `per` units of traffic (a million events, a person)."""
    print(f"  {title}")
    digits = 0 if per > 100 else 3
    print(f"    {'operation':<19}{'table or index':<31}{'requests':>11}{'items':>11}{'RRU':>11}{'WRU':>11}  per {unit}")
    for (operation, target), (requests, items, rru, wru) in sorted(tally.rows.items(), key=lambda kv: kv[0][::-1]):
        cells = "".join(f"{value * per:>11,.{digits}f}" for value in (requests, items, rru, wru))
        print(f"    {operation:<19}{target:<31}{cells}")
    requests, rru, wru = tally.total()
    cells = f"{requests * per:>11,.{digits}f}{'':>11}{rru * per:>11,.{digits}f}{wru * per:>11,.{digits}f}"
    print(f"    {'total':<50}{cells}  ${dollars(rru, wru) * per:,.{2 if per > 100 else 8}f}")


# (a) Ingest -----------------------------------------------------------------------------------


def person_events(number: int, start: datetime, identity: bool) -> list[dict[str, Any]]:
    """One simulated person's 20 posthog-js events: 10 as an anonymous browser (the second an
    exposure), `$identify`, 9 as the signed-in user; the first carries `$set_once`."""
    anon, user = f"anon-{number:05d}-{uuid.uuid4().hex[:8]}", f"user-{number:05d}@example.com"
    session = str(uuid.uuid4())
    sent = []
    for index in range(EVENTS_A_PERSON):
        at = start + timedelta(seconds=index)
        sender = anon if index < 10 else user
        event = posthog_js_pageview(sender, session, index, at)
        properties = event["properties"]
        if index == 0 and identity:
            properties["$set_once"] = {
                "$initial_referrer": "https://www.google.com/",
                "$initial_current_url": properties["$current_url"],
                "$initial_browser": "Chrome",
            }
        if index == 1:
            event["event"] = "$feature_flag_called"
            properties.update({"$feature_flag": EXPERIMENT, "$feature_flag_response": "control"})
        if index == 10:
            event["event"] = "$identify"
            properties["distinct_id"] = properties["$device_id"] = user
            if identity:
                properties["$anon_distinct_id"] = anon
                event["$set"] = {"email": user, "plan": "free"}
        sent.append(event)
    return sent


def ingest(count: int, identity: bool) -> tuple[list[Request], float]:
    """`count` events through /batch/, 50 a request; the requests recorded and the seconds taken."""
    with backend():
        launch_sample_experiment()
        start = datetime.now(UTC) - timedelta(hours=2)
        events = [
            event
            for number in range(count // EVENTS_A_PERSON)
            for event in person_events(number, start + timedelta(seconds=number), identity)
        ]
        recorder = CapacityRecorder()
        started = time.perf_counter()
        with recording(recorder):
            for first in range(0, len(events), BATCH):
                post_posthog_batch(events[first : first + BATCH])
        return recorder.requests, time.perf_counter() - started


# (b) /flags -----------------------------------------------------------------------------------


def flags(distinct_id: str, anon: str | None = None) -> None:
    body: dict[str, Any] = {"api_key": TOKEN, "distinct_id": distinct_id}
    if anon is not None:
        body["$anon_distinct_id"] = anon
    status, found = answer(invoke("AssignFunction", sample_event("posthog_flags", body=body)))
    assert status == 200 and EXPERIMENT in found["flags"], found


def flags_calls(count: int) -> dict[str, list[Request]]:
    """Recorded: `count` returning ids' calls; `count` new ids' calls; `count` new ids' calls
    carrying `$anon_distinct_id` of an id assigned before (a join each)."""
    recorded = {}
    with backend():
        launch_sample_experiment()
        returning = [f"returning-{index:05d}" for index in range(count)]
        for distinct_id in returning:
            flags(distinct_id)
        for name, calls in (
            ("returning id", [(distinct_id, None) for distinct_id in returning]),
            ("new id", [(f"new-{index:05d}", None) for index in range(count)]),
        ):
            recorder = CapacityRecorder()
            with recording(recorder):
                for distinct_id, anon in calls:
                    flags(distinct_id, anon)
            recorded[name] = recorder.requests
        anons = [f"anon-{index:05d}" for index in range(count)]
        for anon in anons:
            flags(anon)
        recorder = CapacityRecorder()
        with recording(recorder):
            for index, anon in enumerate(anons):
                flags(f"signed-in-{index:05d}", anon)
        recorded["new id with $anon_distinct_id (a join)"] = recorder.requests
    return recorded


# (c) The nightly job --------------------------------------------------------------------------


def nightly(count: int, ids: int) -> dict[str, list[Request]]:
    """`count` persons exposed, each of `ids` ids (1 or 2), with page views (no purchase: a person
    converted in every metric is never read again, whatever their ids); a first night, then a
    second with no new events, each recorded."""
    from abacus_local import nightly_inline

    recorded = {}
    with backend():
        launch_sample_experiment()
        start = datetime.now(UTC) - timedelta(hours=2)
        events: list[dict[str, Any]] = []
        for number in range(count):
            person = person_events(number, start + timedelta(seconds=number), identity=ids == 2)
            if ids == 1:  # one id throughout: the signed-in user's events sent under the anonymous id
                anon = person[0]["properties"]["distinct_id"]
                for event in person:
                    event["properties"]["distinct_id"] = event["properties"]["$device_id"] = anon
            events += person
        for first in range(0, len(events), BATCH):
            post_posthog_batch(events[first : first + BATCH])
        for night, days in (("first night", 1), ("second night, no new events", 2)):
            scheduled = datetime.now(UTC) + timedelta(days=days)
            recorder = CapacityRecorder()
            with recording(recorder):
                summary = nightly_inline.run_all(scheduled, scheduled, on_failure=lambda _, error: print(error))
            assert summary["analysed"] == 1 and summary["failed"] == 0, summary
            recorded[night] = recorder.requests
    return recorded


# The report -----------------------------------------------------------------------------------


def main() -> int:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    without_persons = frozenset({PERSONS_TABLE})
    totals: dict[str, tuple[float, float, float]] = {}

    print(f"(a) ingest: {events:,} posthog-js events, {BATCH} a request, persons of {EVENTS_A_PERSON} events")
    per_million = MILLION / events
    plain, plain_s = ingest(events, identity=False)
    resolved, resolved_s = ingest(events, identity=True)
    before, after = Tally(plain, without_persons), Tally(resolved)
    print_tally(
        f"without persons (identity stripped, the persons table left out; {plain_s:.0f} s)",
        before,
        per_million,
        "million events",
    )
    print_tally(f"with identity resolution ({resolved_s:.0f} s)", after, per_million, "million events")
    (r0, rru0, wru0), (r1, rru1, wru1) = before.total(), after.total()
    totals["identity resolution, per million events"] = (
        (r1 - r0) * per_million,
        (rru1 - rru0) * per_million,
        (wru1 - wru0) * per_million,
    )

    print(f"\n(b) /flags/: {calls:,} calls each, the sample experiment running")
    recorded = flags_calls(calls)
    per_million = MILLION / calls
    for name, requests in recorded.items():
        print_tally(name, Tally(requests), per_million, "million calls")
    returning = Tally(recorded["returning id"])
    totals["/flags/, a returning id, per million calls"] = tuple(  # type: ignore[assignment]
        value * per_million for value in returning.total(PERSONS_TABLE)
    )
    plain_new = Tally(recorded["new id"], without_persons).total()
    joined = Tally(recorded["new id with $anon_distinct_id (a join)"]).total()
    totals["/flags/ with $anon_distinct_id (a join), per million calls"] = tuple(  # type: ignore[assignment]
        (b - a) * per_million for a, b in zip(plain_new, joined, strict=True)
    )

    print(f"\n(c) the nightly job: {calls:,} exposed persons of one id, then {calls:,} of two ids")
    nights = {ids: nightly(calls, ids) for ids in (1, 2)}
    for ids, recorded in nights.items():
        for night, requests in recorded.items():
            print_tally(f"persons of {ids} id{'s' if ids > 1 else ''}, {night}", Tally(requests), 1 / calls, "person")
    for night in nights[1]:
        one, two = Tally(nights[1][night]).total(), Tally(nights[2][night]).total()
        totals[f"nightly, a two-id person beside a one-id one, {night}, per million persons"] = tuple(  # type: ignore[assignment]
            (b - a) * MILLION / calls for a, b in zip(one, two, strict=True)
        )
        persons_rru = Tally(nights[2][night]).total(PERSONS_TABLE)
        totals[f"nightly, the persons lookup alone, {night}, per million persons"] = tuple(  # type: ignore[assignment]
            value * MILLION / calls for value in persons_rru
        )

    print("\nadded by identity (DynamoDB only; $0.625/M WRU, $0.125/M RRU)")
    print(f"  {'':<86}{'requests':>12}{'RRU':>12}{'WRU':>12}{'dollars':>10}")
    for label, (sent, rru, wru) in totals.items():
        print(f"  {label:<86}{sent:>12,.0f}{rru:>12,.0f}{wru:>12,.0f}{'$' + format(dollars(rru, wru), '.4f'):>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
