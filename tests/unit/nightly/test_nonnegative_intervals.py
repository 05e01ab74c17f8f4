"""Which metrics' relative intervals stop at -100% (abacus.nightly.snapshot.mean_cannot_be_negative,
abacus.stats.fieller): a count's mean cannot be negative, a sum's property may be (refunds)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from abacus.experiments.metrics_spec import MetricSpec
from abacus.experiments.spec import ExperimentCreate
from abacus.nightly import snapshot
from abacus.nightly.sums import PageSums
from tests.unit.nightly.plain import Event, Timeline, computed

START = datetime(2026, 11, 1, tzinfo=UTC)
EXPOSED = START + timedelta(hours=1)
CUTOFF = START + timedelta(days=2)
COUNT = {"event": "purchase", "kind": "count"}
SUM = {"event": "purchase", "kind": "sum", "property": "amount"}


@pytest.mark.parametrize(
    ("metric", "cannot"),
    [
        ({"event": "purchase"}, True),
        (COUNT, True),
        (SUM, False),
        ({"kind": "ratio", "numerator": COUNT, "denominator": {"event": "visit", "kind": "count"}}, True),
        ({"kind": "ratio", "numerator": SUM, "denominator": COUNT}, False),
        ({"kind": "funnel", "steps": [{"event": "view"}, {"event": "purchase"}]}, True),
    ],
)
def test_which_means_cannot_be_negative(metric, cannot):
    assert snapshot.mean_cannot_be_negative(MetricSpec.model_validate(metric)) is cannot


def test_a_counts_interval_stops_at_minus_100_percent_and_a_sums_does_not():
    # The same purchases (each of amount 1) counted and summed: 48 users a variant, the treatment's
    # two buyers too few for its mean to be told from 0, so Fieller's set reaches below a ratio of 0.
    spec = ExperimentCreate.model_validate(
        {
            "key": "e",
            "name": "E",
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": COUNT,
            "secondary_metrics": [SUM],
        }
    )
    metrics = spec.all_metrics()
    counts = {"control": [3, 5, 4, 6, 2, 5, 4, 3, 6, 4, 5, 3] * 4, "b": ([0] * 23 + [9]) * 2}
    total = PageSums(["control", "b"], metrics)
    for variant, drawn in counts.items():
        for bought in drawn:
            events = [Event("purchase", EXPOSED + timedelta(minutes=n + 1), {"amount": 1}) for n in range(bought)]
            page = PageSums(["control", "b"], metrics)
            page.add_user(variant, computed(metrics, EXPOSED, events, CUTOFF)[0], False, EXPOSED)
            total.merge(PageSums.from_json(json.loads(json.dumps(page.to_json()))))
    analysis = snapshot.analysis(spec, Timeline("running", START, None), CUTOFF, total, [])
    counted, summed = analysis["variants"][1], analysis["secondary_metrics"][0]["variants"][1]
    assert counted["mean"] == summed["mean"] == pytest.approx(18 / 48)
    count_interval, sum_interval = counted["lift"]["relative_ci"], summed["lift"]["relative_ci"]
    assert count_interval is not None and sum_interval is not None
    assert count_interval[0] == -1 and sum_interval[0] < -1
    assert count_interval[1] == pytest.approx(sum_interval[1], rel=1e-12)
