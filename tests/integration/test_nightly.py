"""The nightly job's counts against a brute-force recount of the stored raw data."""

import json
import random
from datetime import UTC, datetime, timedelta

from abacus import keys, nightly
from abacus.schemas import ExperimentCreate
from abacus.storage import assignments, events
from abacus.storage.events import EventItem
from tests.conftest import invoke, sample_event, sample_path


def test_counts_equal_a_brute_force_recount(project):
    from abacus import experiments

    spec = ExperimentCreate.model_validate(
        {
            "key": "exp",
            "name": "Exp",
            "variants": [{"key": "control", "weight": 34}, {"key": "b", "weight": 33}, {"key": "c", "weight": 33}],
            "primary_metric": {"event": "buy", "window_days": 3},
        }
    )
    start = datetime(2026, 11, 1, tzinfo=UTC)
    experiments.create("test", spec, start)
    experiments.apply("test", "exp", "launch", start)
    cutoff = datetime(2026, 11, 10, tzinfo=UTC)
    rng = random.Random(7)
    users = []
    for index in range(120):
        distinct_id = f"user #{index} ü/"  # characters that must be safe in keys
        exposed = start + timedelta(hours=rng.uniform(0, 24 * 10))  # some after the cut-off
        variant = ["control", "b", "c"][index % 3]
        assignments.assign(keys.experiment_id("test", "exp"), distinct_id, variant, exposed, expose=True)
        user_events = []
        for n in range(rng.randint(0, 3)):
            name = rng.choice(["buy", "view"])
            at = exposed + timedelta(hours=rng.uniform(-48, 120))
            user_events.append((name, at))
            events.insert_once(
                EventItem(
                    keys.user_id("test", distinct_id),
                    f"{index}-{n}",
                    event=name,
                    distinct_id=distinct_id,
                    timestamp=at,
                    received_at=at,
                    expires_at=0,
                )
            )
        users.append((distinct_id, variant, exposed, user_events))

    expected = {v: [0, 0] for v in ["control", "b", "c"]}
    for _, variant, exposed, user_events in users:
        if exposed >= cutoff:
            continue
        expected[variant][0] += 1
        end = min(exposed + timedelta(days=3), cutoff)
        if any(name == "buy" and exposed <= at < end for name, at in user_events):
            expected[variant][1] += 1

    experiment = experiments.get("test", "exp")
    counts = nightly.count_conversions("test", experiment, cutoff)
    assert {c.key: [c.exposures, c.conversions] for c in counts} == expected
    assert sum(e for e, _ in expected.values()) > 50 and sum(c for _, c in expected.values()) > 5


def test_snapshot_is_dated_by_the_data_cutoff_and_reruns_converge(project):
    from abacus.storage.results import SnapshotItem

    invoke("AssignFunction", sample_event("create_experiment"))
    invoke("AssignFunction", sample_event("launch_experiment"))
    scheduled = json.loads(sample_path("nightly").read_text())
    first = invoke("ResultsFunction", scheduled)
    assert first == {"date": "2026-11-24", "analysed": 1, "failed": 0}
    invoke("ResultsFunction", scheduled)
    snapshots = list(SnapshotItem.query("test#new-checkout"))
    assert [s.date for s in snapshots] == ["2026-11-24"]
