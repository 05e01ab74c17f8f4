"""The nightly job fanned out on SQS (abacus.nightly_runs, functions/results/worker.py), under the
queue's own faults: every message delivered twice, a worker killed half-way through a unit, a
message lost, a message of an older run delivered after a newer run finished, and two workers on
one unit at once. Each converges on the snapshot of a run without faults, number for number.

The data: 60 users exposed over two variants, a third of them buying, in pages of 2 users, so each
of the experiment's 16 shards takes a chain of pages and the worker sends pages on."""

import json
import threading
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from abacus import experiments, ingestion, nightly, nightly_runs, work_queue
from abacus.storage import assignments, runs
from abacus.storage import results as result_store
from tests.conftest import assignment_partition, invoke, sample_event, sample_path

KEY = "new-checkout"
USERS = 60
NIGHT = json.loads(sample_path("nightly").read_text())  # 03:00 on 2026-11-25: the 24th analysed
DATE = "2026-11-24"


@pytest.fixture
def experiment(project, monkeypatch):
    monkeypatch.setattr(nightly_runs, "PAGE_USERS", 2)
    invoke("AssignFunction", sample_event("create_experiment"))
    experiments.apply("test", KEY, "launch", datetime(2026, 11, 20, tzinfo=UTC))
    seen = datetime(2026, 11, 23, 12, tzinfo=UTC)
    purchases: list[object] = []
    for n in range(USERS):
        user = f"user-{n}"
        variant = "control" if n % 2 else "one-page"
        assignments.assign(assignment_partition(KEY, user), user, variant, seen, expose=True)
        if n % 3 == 0:
            at = (seen + timedelta(hours=1)).isoformat()
            purchases.append({"event": "purchase", "distinct_id": user, "uuid": f"buy-{n}", "timestamp": at})
    assert ingestion.ingest("test", purchases, seen + timedelta(hours=2))["accepted"] == len(purchases)
    return experiments.get("test", KEY)


def expected_counts() -> dict[str, tuple[int, int]]:
    """What a correct snapshot counts, per variant: (exposures, conversions)."""
    counts = {"control": [0, 0], "one-page": [0, 0]}
    for n in range(USERS):
        row = counts["control" if n % 2 else "one-page"]
        row[0] += 1
        row[1] += n % 3 == 0
    return {variant: (row[0], row[1]) for variant, row in counts.items()}


def snapshot_counts() -> dict[str, tuple[int, int]]:
    stored = result_store.at(f"test#{KEY}", DATE)
    assert stored is not None, "no snapshot"
    return {row["key"]: (row["exposures"], row["conversions"]) for row in stored.analysis["variants"]}


def dead_letters() -> int:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="NightlyWorkDeadLetters")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def pages_of_the_run() -> list[runs.RunPartItem]:
    (header,) = [item for item in runs.RunPartItem.query(f"test#{KEY}") if item.part.endswith("#run")]
    return runs.pages(f"test#{KEY}", header.part.removesuffix("#run"))


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
        "before marking the shard done": (runs, "shard_done"),
        "in the merge": (nightly, "analyse_and_store"),
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
    assert lost and result_store.at(f"test#{KEY}", DATE) is None  # never a snapshot of part of the users
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
    assert result_store.at(f"test#{KEY}", DATE) is None
    monkeypatch.setattr(work_queue, "send", sent)
    # A user exposed since: the second run counts them; the first, finishing late, must not undo it.
    assignments.assign(assignment_partition(KEY, "late"), "late", "control", datetime(2026, 11, 24, tzinfo=UTC), True)
    invoke("ResultsFunction", NIGHT)
    newer = result_store.at(f"test#{KEY}", DATE)
    assert newer is not None and snapshot_counts()["control"][0] == expected_counts()["control"][0] + 1
    nightly_runs.work_here(held)  # delivered at last: its run finishes, and merges
    stored = result_store.at(f"test#{KEY}", DATE)
    assert stored is not None and stored.computed_at == newer.computed_at
    assert snapshot_counts()["control"][0] == expected_counts()["control"][0] + 1


def test_two_workers_on_one_unit_at_once_keep_one_chain_of_pages(experiment):
    units = nightly_runs.plan(experiment, nightly.cutoff_for(datetime(2026, 11, 25, 3, tzinfo=UTC)), datetime.now(UTC))
    barrier = threading.Barrier(2)

    def work_all(unit_list):
        barrier.wait()
        for unit in unit_list:
            nightly_runs.run_inline(unit)

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
    from abacus import keys

    cutoff = nightly.cutoff_for(datetime(2026, 11, 25, 3, tzinfo=UTC))
    units = nightly_runs.plan(experiment, cutoff, datetime.now(UTC))
    unit = next(u for u in units if len(assignments.page(u.partition, None, 3)) == 3)
    after_a = nightly_runs.work(unit)
    assert isinstance(after_a, nightly_runs.Unit)
    joined = next(f"a-{n}" for n in range(1000) if keys.shard_of(f"a-{n}", 16) == unit.shard)
    assignments.assign(unit.partition, joined, "control", datetime(2026, 11, 23, tzinfo=UTC), expose=True)
    looked = runs.page
    monkeypatch.setattr(runs, "page", lambda *args: None)  # B looked before A's page was there
    monkeypatch.setattr(runs, "put_page", _after(runs.put_page, lambda: monkeypatch.setattr(runs, "page", looked)))
    after_b = nightly_runs.work(unit)
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

    cutoff = nightly.cutoff_for(datetime(2026, 11, 25, 3, tzinfo=UTC))
    unit = nightly_runs.plan(experiment, cutoff, datetime.now(UTC))[0]
    projects.delete("test", datetime.now(UTC))
    nightly_runs.work_here([unit.to_json()])
    assert list(runs.RunPartItem.query(f"test#{KEY}")) == []
