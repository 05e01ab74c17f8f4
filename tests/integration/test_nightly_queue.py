"""The nightly job fanned out on SQS (abacus.nightly.runs, functions/results/worker.py), under the
queue's own faults: every message delivered twice, a worker killed half-way through a unit, a
message lost, a message of an older run delivered after a newer run finished, two workers on one
unit at once, and SQS refusing sends (some entries of a batch answered Failed, or the whole request
a 503) to the planner, a worker and a recompute. Each converges on the snapshot of a run without
faults, number for number.

The data: 60 users exposed over two variants, a third of them buying, in pages of 2 users, so each
of the experiment's 16 shards takes a chain of pages and the worker sends pages on."""

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from abacus.experiments import definitions
from abacus.ingestion import ingest
from abacus.nightly import computation, runs, work_queue
from abacus.nightly.cutoffs import cutoff_for
from abacus.storage import assignments, nightly_runs, results
from abacus_local import nightly_inline
from tests.conftest import assignment_partition, invoke, sample_event, sample_path

KEY = "new-checkout"
USERS = 60
NIGHT = json.loads(sample_path("nightly").read_text())  # 03:00 on 2026-11-25: the 24th analysed
DATE = "2026-11-24"


@pytest.fixture
def experiment(project, monkeypatch):
    monkeypatch.setattr(computation, "PAGE_USERS", 2)
    invoke("ResultsFunction", sample_event("create_experiment"))
    definitions.apply("test", KEY, "launch", datetime(2026, 11, 20, tzinfo=UTC))
    seen = datetime(2026, 11, 23, 12, tzinfo=UTC)
    purchases: list[object] = []
    for n in range(USERS):
        user = f"user-{n}"
        variant = "control" if n % 2 else "one-page"
        assignments.assign(assignment_partition(KEY, user), user, variant, seen, expose=True)
        if n % 3 == 0:
            at = (seen + timedelta(hours=1)).isoformat()
            purchases.append({"event": "purchase", "distinct_id": user, "uuid": f"buy-{n}", "timestamp": at})
    assert ingest.ingest("test", purchases, seen + timedelta(hours=2))["accepted"] == len(purchases)
    return definitions.get("test", KEY)


def expected_counts() -> dict[str, tuple[int, int]]:
    """What a correct snapshot counts, per variant: (exposures, conversions)."""
    counts = {"control": [0, 0], "one-page": [0, 0]}
    for n in range(USERS):
        row = counts["control" if n % 2 else "one-page"]
        row[0] += 1
        row[1] += n % 3 == 0
    return {variant: (row[0], row[1]) for variant, row in counts.items()}


def snapshot_counts() -> dict[str, tuple[int, int]]:
    stored = results.at(f"test#{KEY}", DATE)
    assert stored is not None, "no snapshot"
    return {row["key"]: (row["exposures"], row["conversions"]) for row in stored.analysis["variants"]}


def dead_letters() -> int:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="NightlyWorkDeadLetters")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def pages_of_the_run() -> list[nightly_runs.RunPartItem]:
    (header,) = [item for item in nightly_runs.RunPartItem.query(f"test#{KEY}") if item.part.endswith("#run")]
    return nightly_runs.pages(f"test#{KEY}", header.part.removesuffix("#run"))


def test_a_night_through_the_queue_counts_every_user_once_in_chains_of_pages(experiment):
    assert invoke("ResultsFunction", NIGHT) == {"date": DATE, "planned": 1, "units": 16, "failed": 0}
    assert snapshot_counts() == expected_counts()
    pages = pages_of_the_run()
    covered = sum(page.stored_sums()["exposures"].get(v, 0) for page in pages for v in ("control", "one-page"))
    assert covered == USERS
    assert len(pages) > 16 + USERS // 4  # shards of more than two users took several pages
    assert dead_letters() == 0


def test_every_message_delivered_twice_gives_the_same_snapshot(experiment, monkeypatch):
    sent = work_queue.send
    monkeypatch.setattr(work_queue, "send", lambda bodies, queue_url=None: sent([*bodies, *bodies], queue_url))
    invoke("ResultsFunction", NIGHT)
    assert snapshot_counts() == expected_counts()
    # One chain of pages per shard, whatever the duplicates: the same pages as one delivery makes.
    shards_and_pages = [page.part.split("#page#")[1] for page in pages_of_the_run()]
    assert len(shards_and_pages) == len(set(shards_and_pages))


@pytest.mark.parametrize("where", ["before sending the next page", "before marking the shard done", "in the merge"])
def test_a_worker_killed_half_way_leaves_its_message_to_be_delivered_again(experiment, monkeypatch, where):
    """The first attempt at each step dies after its page is stored (its record fails, and comes
    back after the visibility timeout); the retries finish the run."""
    target = {
        "before sending the next page": (work_queue, "send"),
        "before marking the shard done": (nightly_runs, "shard_done"),
        "in the merge": (computation, "analyse_and_store"),
    }[where]
    original = getattr(*target)
    killed: list[str] = []

    def dies_once_per_call(*args, **kwargs):
        marker = json.dumps(args, default=lambda value: type(value).__name__)  # the merge's: its first call
        planner_sending = target[1] == "send" and args[0][0]["page"] == 0
        if not planner_sending and marker not in killed:
            killed.append(marker)
            raise RuntimeError("the worker died half-way")
        return original(*args, **kwargs)

    monkeypatch.setattr(*target, dies_once_per_call)
    invoke("ResultsFunction", NIGHT)
    assert killed, "nothing was killed"
    assert snapshot_counts() == expected_counts()
    assert dead_letters() == 0


def test_a_lost_message_leaves_the_night_unfinished_until_it_is_run_again(experiment, monkeypatch):
    sent = work_queue.send
    lost: list[dict] = []

    def loses_the_third(bodies, queue_url=None):
        if len(lost) == 0 and any(body["page"] == 1 for body in bodies):
            lost.append(bodies[0])
            bodies = bodies[1:]
        sent(bodies, queue_url)

    monkeypatch.setattr(work_queue, "send", loses_the_third)
    invoke("ResultsFunction", NIGHT)
    assert lost and results.at(f"test#{KEY}", DATE) is None  # never a snapshot of part of the users
    monkeypatch.setattr(work_queue, "send", sent)
    invoke("ResultsFunction", NIGHT)  # the night run again: a new run, from the start
    assert snapshot_counts() == expected_counts()


def test_a_late_message_of_an_older_run_does_not_replace_a_newer_snapshot(experiment, monkeypatch):
    sent = work_queue.send
    held: list[dict] = []

    def holds_one_back(bodies, queue_url=None):
        if not held:
            held.append(bodies[0])
            bodies = bodies[1:]
        sent(bodies, queue_url)

    monkeypatch.setattr(work_queue, "send", holds_one_back)
    invoke("ResultsFunction", NIGHT)  # the first run waits on the unit held back
    assert results.at(f"test#{KEY}", DATE) is None
    monkeypatch.setattr(work_queue, "send", sent)
    # A user exposed since: the second run counts them; the first, finishing late, must not undo it.
    assignments.assign(assignment_partition(KEY, "late"), "late", "control", datetime(2026, 11, 24, tzinfo=UTC), True)
    invoke("ResultsFunction", NIGHT)
    newer = results.at(f"test#{KEY}", DATE)
    assert newer is not None and snapshot_counts()["control"][0] == expected_counts()["control"][0] + 1
    nightly_inline.work_here(held)  # delivered at last: its run finishes, and merges
    stored = results.at(f"test#{KEY}", DATE)
    assert stored is not None and stored.computed_at == newer.computed_at
    assert snapshot_counts()["control"][0] == expected_counts()["control"][0] + 1


def test_two_workers_on_one_unit_at_once_keep_one_chain_of_pages(experiment):
    units = runs.plan(experiment, cutoff_for(datetime(2026, 11, 25, 3, tzinfo=UTC)), datetime.now(UTC))
    barrier = threading.Barrier(2)

    def work_all(unit_list):
        barrier.wait()
        for unit in unit_list:
            nightly_inline.run_inline(unit)

    threads = [threading.Thread(target=work_all, args=(units,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert snapshot_counts() == expected_counts()


def test_a_page_computed_twice_at_once_keeps_the_first_pages_users(experiment, monkeypatch):
    """Worker A stores a page; worker B, which found no page when it looked (before A's write
    landed), reads the shard after a new user joined it and so ends its page on another user.
    B's write must lose to A's, and B carry on where A's page ends: else the two pages after it
    would not form one chain (users counted twice, or none)."""
    from abacus.core import keys

    cutoff = cutoff_for(datetime(2026, 11, 25, 3, tzinfo=UTC))
    units = runs.plan(experiment, cutoff, datetime.now(UTC))
    unit = next(u for u in units if len(assignments.page(u.partition, None, 3)) == 3)
    after_a = computation.work(unit)
    assert isinstance(after_a, runs.Unit)
    joined = next(f"a-{n}" for n in range(1000) if keys.shard_of(f"a-{n}", 16) == unit.shard)
    assignments.assign(unit.partition, joined, "control", datetime(2026, 11, 23, tzinfo=UTC), expose=True)
    looked = nightly_runs.page
    monkeypatch.setattr(nightly_runs, "page", lambda *args: None)  # B looked before A's page was there
    monkeypatch.setattr(
        nightly_runs,
        "put_page",
        _after(nightly_runs.put_page, lambda: monkeypatch.setattr(nightly_runs, "page", looked)),
    )
    after_b = computation.work(unit)
    assert after_b == after_a
    stored = looked(unit.experiment_id, unit.run, unit.shard, 0)
    assert stored is not None and stored.last == after_a.start_after


def _after(function, then):
    """`function`, calling `then` before it (B's write goes to the table; B then reads what is stored)."""

    def wrapped(*args, **kwargs):
        then()
        return function(*args, **kwargs)

    return wrapped


def test_a_unit_of_a_deleted_experiment_fails_its_run_without_leaving_anything(experiment):
    """The project deleted during a run (its runs with it): the run's next unit finds no experiment,
    fails without a retry, and stores nothing (no header brought back without its expiry)."""
    from abacus import projects

    cutoff = cutoff_for(datetime(2026, 11, 25, 3, tzinfo=UTC))
    unit = runs.plan(experiment, cutoff, datetime.now(UTC))[0]
    projects.delete("test", datetime.now(UTC))
    nightly_inline.work_here([unit.to_json()])
    assert list(nightly_runs.RunPartItem.query(f"test#{KEY}")) == []


class RefusingSQS:
    """The SQS client work_queue uses, refusing what `refuses(body)` picks: as SQS answers an entry
    of SendMessageBatch it could not take (in `Failed`, the others sent), or with `unavailable` the
    whole request as a 503 once botocore's retries are spent."""

    def __init__(self, refuses, unavailable: bool = False):
        self.real: Any = boto3.client("sqs", region_name="us-east-1")
        self.refuses, self.unavailable = refuses, unavailable
        self.refused: list[dict] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        refused = [entry for entry in Entries if self.refuses(json.loads(entry["MessageBody"]))]
        self.refused += [json.loads(entry["MessageBody"]) for entry in refused]
        if refused and self.unavailable:
            answer: Any = {"Error": {"Code": "ServiceUnavailable"}, "ResponseMetadata": {"HTTPStatusCode": 503}}
            raise ClientError(answer, "SendMessageBatch")
        taken = [entry for entry in Entries if entry not in refused]
        answer = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=taken) if taken else {}
        failed = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "x"} for e in refused]
        return {"Successful": answer.get("Successful", []), "Failed": failed}


def run_headers(key: str) -> list[nightly_runs.RunPartItem]:
    return [item for item in nightly_runs.RunPartItem.query(f"test#{key}") if item.part.endswith("#run")]


def a_second_experiment_of_four_users() -> None:
    body = json.loads(sample_event("create_experiment")["body"]) | {"key": "second"}
    invoke("ResultsFunction", sample_event("create_experiment", body=body))
    definitions.apply("test", "second", "launch", datetime(2026, 11, 20, tzinfo=UTC))
    for n in range(4):
        user = f"s{n}"
        seen = datetime(2026, 11, 23, tzinfo=UTC)
        assignments.assign(assignment_partition("second", user), user, "control", seen, expose=True)


def test_sends_sqs_refuses_fail_the_planner_and_lambdas_retry_carries_on_its_runs(experiment, monkeypatch):
    """SQS takes 10 of the experiment's 16 first units and refuses 6, however often they are sent:
    the planner plans the other experiment, then fails its invocation. Lambda's retry (the same
    request id) finds the run the first attempt planned and sends its units again; the other
    experiment, whose units all went out, is not planned again. One run each, the right counts."""
    a_second_experiment_of_four_users()
    refusing = RefusingSQS(lambda body: body["experiment"] == KEY and body["shard"] >= 10)
    monkeypatch.setattr(work_queue, "_client", lambda: refusing)
    with pytest.raises(runs.NightNotPlanned, match="1 experiments not planned"):
        invoke("ResultsFunction", NIGHT, request_id="night-of-the-25th")
    assert {body["shard"] for body in refusing.refused} == set(range(10, 16))
    assert results.at(f"test#{KEY}", DATE) is None  # 10 shards of 16 queued: no snapshot of part of them
    (header,) = run_headers(KEY)
    assert header.queued_at is None

    monkeypatch.setattr(work_queue, "_client", lambda: refusing.real)
    retried = invoke("ResultsFunction", NIGHT, request_id="night-of-the-25th")
    assert retried == {"date": DATE, "planned": 2, "units": 16, "failed": 0}
    assert snapshot_counts() == expected_counts()
    (carried_on,) = run_headers(KEY)
    assert carried_on.part == header.part and carried_on.queued_at is not None and carried_on.merged_at is not None
    assert len(run_headers("second")) == 1  # planned once: its units all went out the first time
    second = results.at("test#second", DATE)
    assert second is not None and second.analysis["variants"][0]["exposures"] == 4
    assert dead_letters() == 0


def test_sends_refused_through_every_retry_leave_the_event_to_a_new_invocation(experiment, monkeypatch):
    """SQS unavailable (503s) for the planner's first attempt and Lambda's two retries: each fails,
    all three carry on one run, and none writes a snapshot. The event then waits in
    NightlyDeadLetters; invoked again with it (a new request id), the night finishes."""
    refusing = RefusingSQS(lambda body: True, unavailable=True)
    monkeypatch.setattr(work_queue, "_client", lambda: refusing)
    for _ in range(3):
        with pytest.raises(runs.NightNotPlanned):
            invoke("ResultsFunction", NIGHT, request_id="night-of-the-25th")
    assert len(refusing.refused) == 3 * 10  # each attempt's first batch of ten, refused whole
    assert len(run_headers(KEY)) == 1 and results.at(f"test#{KEY}", DATE) is None
    monkeypatch.setattr(work_queue, "_client", lambda: refusing.real)
    assert invoke("ResultsFunction", NIGHT) == {"date": DATE, "planned": 1, "units": 16, "failed": 0}
    assert snapshot_counts() == expected_counts()


def test_a_next_page_sqs_refuses_comes_back_and_the_run_finishes(experiment, monkeypatch):
    """A worker's send of its shard's next page is refused through work_queue's five attempts,
    twice: each time the record fails and SQS delivers it again (after the visibility timeout),
    the page is found stored, and its next page sent again, until SQS takes it."""
    refusals = iter(range(10))  # two calls of send, five attempts each
    refusing = RefusingSQS(lambda body: body["shard"] == 3 and body["page"] == 1 and next(refusals, None) is not None)
    monkeypatch.setattr(work_queue, "_client", lambda: refusing)
    assert invoke("ResultsFunction", NIGHT)["failed"] == 0
    assert len(refusing.refused) == 10
    assert snapshot_counts() == expected_counts()
    assert dead_letters() == 0


@pytest.mark.parametrize("unavailable", [False, True], ids=["entries failed", "request refused"])
def test_a_recompute_whose_units_sqs_refuses_is_503_and_its_run_failed(experiment, monkeypatch, unavailable):
    """The recompute's run is recorded as failed (nothing waits on it) and the answer is 503 with
    Retry-After, not a 500; sent again once SQS takes units, it is ready."""
    refusing = RefusingSQS(lambda body: body["shard"] == 7, unavailable=unavailable)
    monkeypatch.setattr(work_queue, "_client", lambda: refusing)
    refused = invoke("ResultsFunction", sample_event("recompute_results"))
    assert refused["statusCode"] == 503 and refused["headers"]["Retry-After"] == "1", refused
    assert json.loads(refused["body"])["error"]["code"] == "storage_unavailable"
    (header,) = run_headers(KEY)
    assert header.error is not None and "could not all be queued" in header.error
    monkeypatch.setattr(work_queue, "_client", lambda: refusing.real)
    ready = invoke("ResultsFunction", sample_event("recompute_results"))
    assert ready["statusCode"] == 200 and json.loads(ready["body"])["status"] == "ready", ready
