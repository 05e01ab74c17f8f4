"""An experiment's snapshot from its users' merged sums (abacus.nightly.sums, abacus.nightly.snapshot),
without storage: caps, ratios, exposures per day, the snapshots' dates, when a stopped experiment's
snapshot is final, and the API's shape of a stored snapshot."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats as scipy_stats

from abacus.experiments.metrics_spec import MetricSpec
from abacus.experiments.spec import ExperimentCreate
from abacus.nightly import cutoffs, snapshot
from abacus.nightly.sums import PageSums
from abacus.nightly.values import UserValues
from abacus.results import snapshots
from tests.unit.nightly.plain import Event, StoredSnapshot, Timeline, computed

START = datetime(2026, 11, 1, tzinfo=UTC)
EXPOSED = START + timedelta(hours=1)
CUTOFF = START + timedelta(days=2)
RUNNING = Timeline("running", START, None)


def experiment(variants: list[str], primary: dict, *secondary: dict, **fields: object) -> ExperimentCreate:
    weights = [100 // len(variants) + (n < 100 % len(variants)) for n in range(len(variants))]
    return ExperimentCreate.model_validate(
        {
            "key": "e",
            "name": "E",
            "variants": [{"key": key, "weight": weight} for key, weight in zip(variants, weights, strict=True)],
            "primary_metric": primary,
            "secondary_metrics": list(secondary),
            **fields,
        }
    )


def sums_of(spec: ExperimentCreate, users: dict[str, tuple[str, list[Event]]]) -> PageSums:
    """The users' sums (user: (variant, events)), a page each, stored as JSON and merged."""
    metrics = spec.all_metrics()
    total = PageSums([v.key for v in spec.variants], metrics)
    for variant, events in users.values():
        page = PageSums([v.key for v in spec.variants], metrics)
        page.add_user(variant, computed(metrics, EXPOSED, events, CUTOFF)[0], False, EXPOSED)
        total.merge(PageSums.from_json(json.loads(json.dumps(page.to_json()))))
    return total


def purchases(*amounts: float) -> list[Event]:
    return [Event("purchase", EXPOSED + timedelta(minutes=n + 1), {"amount": a}) for n, a in enumerate(amounts)]


def test_caps_lower_each_users_value_and_say_whom():
    """Ten users in each variant buy once, for 1 to 10 (control) and 11 to 20 (b), and one user of
    b a bulk order of 10,000: the absolute cap of 50 lowers the bulk order alone; the 90th
    percentile of every user's value (numpy's inverted_cdf) lowers the bulk order and the 20."""
    purchase = {"event": "purchase", "kind": "sum", "property": "amount"}
    spec = experiment(
        ["control", "b"], {**purchase, "cap": {"value": 50}}, {**purchase, "cap": {"percentile": 0.9}}, purchase
    )
    amounts = {"control": list(range(1, 11)), "b": [*range(11, 21), 10_000]}
    users = {f"{v}-{n}": (v, purchases(a)) for v, drawn in amounts.items() for n, a in enumerate(drawn)}
    analysis = snapshot.analysis(spec, RUNNING, CUTOFF, sums_of(spec, users), [])

    every_value = np.array([float(a) for drawn in amounts.values() for a in drawn])
    percentile = float(np.quantile(every_value, 0.9, method="inverted_cdf"))
    by_absolute, (by_percentile, uncapped) = analysis, analysis["secondary_metrics"]
    for capped, cap in ((by_absolute, 50.0), (by_percentile, percentile)):
        rows = {row["key"]: row for row in capped["variants"]}
        for variant, drawn in amounts.items():
            lowered = np.minimum(np.array(drawn, dtype=float), cap)
            assert (rows[variant]["sum"], rows[variant]["sum_squares"]) == (lowered.sum(), (lowered**2).sum())
        assert capped["cap"]["users_capped"] == {v: sum(a > cap for a in drawn) for v, drawn in amounts.items()}
        assert capped["cap"]["value"] == cap
    assert by_percentile["cap"]["percentile"] == 0.9
    assert "cap" not in uncapped and {row["key"]: row["sum"] for row in uncapped["variants"]}["b"] == 10_155.0


def test_a_ratio_is_the_sum_of_numerators_over_the_sum_of_denominators():
    """Revenue per order, each user's revenue capped at 500: control's users spend 10 + 30 over
    two orders and 20 over one (60 over 3: 20 an order); b's spend 900 over one order (capped at
    500) and nothing (no order): 500 over 1. A third variant with no order at all has no ratio."""
    per_order = {
        "kind": "ratio",
        "numerator": {"event": "purchase", "kind": "sum", "property": "amount", "cap": {"value": 500}},
        "denominator": {"event": "purchase", "kind": "count"},
    }
    spec = experiment(["control", "b", "c"], per_order)
    users = {
        "u1": ("control", purchases(10, 30)),
        "u2": ("control", purchases(20)),
        "u3": ("b", purchases(900)),
        "u4": ("b", []),
        "u5": ("c", []),
    }
    analysis = snapshot.analysis(spec, RUNNING, CUTOFF, sums_of(spec, users), [])
    assert analysis["ratio"] == {
        "control": {"numerator": 60.0, "denominator": 3.0},
        "b": {"numerator": 500.0, "denominator": 1.0},
        "c": {"numerator": 0.0, "denominator": 0.0},
    }
    rows = {row["key"]: row for row in analysis["variants"]}
    assert rows["control"]["mean"] == 20.0 and rows["b"]["mean"] == 500.0
    assert rows["c"]["exposures"] == 0, "no ratio without a denominator"
    users_per_variant = [2, 2, 1]
    chi = scipy_stats.chisquare(users_per_variant, np.array([34, 33, 33]) / 100 * sum(users_per_variant))
    assert analysis["srm"]["p_value"] == pytest.approx(chi.pvalue, rel=1e-6), "the check counts users"
    assert analysis["cap"] == {"value": 500.0, "users_capped": {"control": 0, "b": 1, "c": 0}, "part": "numerator"}
    assert analysis["kind"] == "mean" and analysis["metric"]["kind"] == "ratio"


def test_exposures_are_counted_per_day_and_each_day_checked_for_a_sample_ratio_mismatch():
    spec = experiment(["control", "b"], {"event": "buy"})
    sums = PageSums(["control", "b"], spec.all_metrics())
    exposures = {"2026-11-01": (50, 50), "2026-11-02": (80, 20)}  # a broken split on the second day
    for day, counts in exposures.items():
        at = datetime.fromisoformat(day).replace(hour=23, minute=59, tzinfo=UTC)
        for variant, count in zip(["control", "b"], counts, strict=True):
            for _ in range(count):
                sums.add_user(variant, UserValues([0.0], [0.0]), False, at)
    by_day = snapshot.analysis(spec, RUNNING, CUTOFF, sums, [])["exposures_by_day"]
    assert [(day["date"], day["exposures"]) for day in by_day["days"]] == [(d, list(c)) for d, c in exposures.items()]
    for checked, counts in zip(by_day["days"], exposures.values(), strict=True):
        assert checked["p_value"] == pytest.approx(scipy_stats.chisquare(counts).pvalue, rel=1e-6)
    assert by_day["first_mismatch"] == "2026-11-02"


def test_a_snapshot_is_named_for_the_last_day_of_data_it_covers():
    night = datetime(2026, 11, 25, 3, tzinfo=UTC)
    assert cutoffs.cutoff_for(night) == datetime(2026, 11, 25, tzinfo=UTC)
    assert cutoffs.cutoff_for(datetime.fromisoformat("2026-11-25T01:00:00+02:00")) == datetime(2026, 11, 24, tzinfo=UTC)
    assert cutoffs.snapshot_date(datetime(2026, 11, 25, tzinfo=UTC)) == "2026-11-24"
    assert cutoffs.snapshot_date(datetime(2026, 11, 25, 15, tzinfo=UTC)) == "2026-11-25"  # a recompute now
    assert cutoffs.cutoff_of_date("2026-11-24") == datetime(2026, 11, 25, tzinfo=UTC)
    assert cutoffs.launched_before(RUNNING, START + timedelta(seconds=1))
    assert not cutoffs.launched_before(RUNNING, START)
    assert not cutoffs.launched_before(Timeline("draft", None, None), night)


def test_a_stopped_experiments_snapshot_is_final_once_no_late_event_can_change_its_windows():
    """Stopped 11-10, its longest window 7 days: the last window ends 11-17, and a late event can
    arrive 14 days after that (retention.LATE), or be in flight 10 minutes more."""
    metrics = [MetricSpec.model_validate({"event": "buy", "window_days": w}) for w in (3, 7)]
    stopped = datetime(2026, 11, 10, tzinfo=UTC)
    done = Timeline("complete", START, stopped)
    last_end = stopped + timedelta(days=7)
    settled = last_end + timedelta(days=14, minutes=10)
    assert cutoffs.windows_all_final(done, metrics, last_end, settled)
    assert not cutoffs.windows_all_final(done, metrics, last_end, settled - timedelta(seconds=1))
    assert not cutoffs.windows_all_final(done, metrics, last_end - timedelta(seconds=1), settled)
    assert not cutoffs.windows_all_final(Timeline("running", START, None), metrics, last_end, settled)


def test_a_stored_snapshot_is_given_with_its_experiment_and_dates():
    cutoff, computed_at = datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 25, 3, tzinfo=UTC)
    stored = StoredSnapshot("2026-11-24", cutoff, computed_at, False, {"variants": [], "secondary_metrics": []})
    assert snapshots.snapshot_to_api(stored, "e") == {
        "experiment": "e",
        "date": "2026-11-24",
        "cutoff": "2026-11-25T00:00:00+00:00",
        "covers": "data up to the end of 2026-11-24 (UTC)",
        "computed_at": "2026-11-25T03:00:00+00:00",
        "final": False,
        "variants": [],
        "secondary_metrics": [],
    }


def test_a_cutoff_during_a_day_is_said_to_cover_the_day_so_far():
    early = datetime(2026, 11, 25, 10, 3, tzinfo=UTC)
    tonight = datetime(2026, 11, 26, 3, tzinfo=UTC)
    assert cutoffs.capped_cutoff(tonight, early) == early
    assert cutoffs.capped_cutoff(tonight, tonight) == datetime(2026, 11, 26, tzinfo=UTC)
    assert cutoffs.cutoff_words(early).startswith("data up to 10:03 UTC on 2026-11-25, when it was computed")
