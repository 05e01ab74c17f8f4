"""Bandits (issue 34) on moto's tables: created and launched through the API, users assigned by
/assign's own code, their purchases stored as events, the nightly job's own run (in process), and
the reweighting it makes after storing the snapshot."""

import json
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from abacus.assignment import live_check, sticky
from abacus.assignment.spec import AssignRequest
from abacus.console import pages
from abacus.core import keys
from abacus.core.documents import SnapshotAnalysis
from abacus.experiments import bandit_weights, definitions, holdouts
from abacus.nightly import reweight
from abacus.posthog import local_evaluation
from abacus.results import decision_card, snapshots
from abacus.results.report import html_page
from abacus.storage import assignments, bandit_phases, events, experiments
from abacus.storage.events import EventItem
from abacus_local import nightly_inline
from abacus_local.schedules import scheduled_event
from tests.conftest import TOKEN, answer, function_of, invoke, sample_event, stored_assignment

BASE = json.loads(sample_event("create_experiment")["body"])
VARIANTS = ["control", "b", "c"]
BANDIT = {"kind": "bandit", "burn_in": 30, "max_step": 0.2, "floor": 0.05}


def call(name: str, body: dict | None = None, path: str | None = None) -> tuple[int, dict]:
    event = sample_event(name, body=body, path=path)
    return answer(invoke(function_of(event), event))


def create(key: str, **fields) -> tuple[int, dict]:
    body = BASE | {
        "key": key,
        "variants": [{"key": "control", "weight": 34}, {"key": "b", "weight": 33}, {"key": "c", "weight": 33}],
        "primary_metric": {"event": "buy", "window_days": 7},
        "secondary_metrics": [],
        "cuped": False,
        "allocation": BANDIT,
    }
    return call("create_experiment", body | fields)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 25}, {"key": "c", "weight": 25}]},
            "start equal (34/33/33)",
        ),
        (
            {
                "primary_metric": {
                    "kind": "ratio",
                    "numerator": {"event": "buy", "kind": "count"},
                    "denominator": {"event": "view", "kind": "count"},
                }
            },
            "not a ratio",
        ),
        (
            {
                "allocation": BANDIT | {"floor": 0.2},
                "variants": [
                    {"key": k, "weight": w}
                    for k, w in zip("control b c d e f".split(), [17] * 4 + [16] * 2, strict=True)
                ],
            },
            "0.2 for each of 6 variants is more than all the traffic",
        ),
        ({"allocation": {"kind": "bandit", "max_step": 0}}, "greater than 0"),
    ],
)
def test_a_bandit_that_cannot_work_is_refused_naming_the_field(project, fields, words):
    status, body = create("refused", **fields)
    assert status == 422, body
    assert words in json.dumps(body)
    assert body["error"]["field"].startswith("allocation"), body


def test_a_running_bandit_keeps_its_allocation(project):
    assert create("frozen")[0] == 201
    assert call("launch_experiment", {}, path="/experiments/frozen/launch")[0] == 200
    event = sample_event("update_experiment", body={"allocation": {"kind": "fixed"}}, path="/experiments/frozen")
    status, body = answer(invoke(function_of(event), event))
    assert status == 409 and body["error"]["field"] == "allocation", body


def _assign(key: str, distinct_id: str, now: datetime) -> str | None:
    request = AssignRequest(token=TOKEN, distinct_id=distinct_id, experiments=[key])
    return sticky.assign("test", request, now)[key]


def _purchases(buyers: list[tuple[str, datetime]]) -> None:
    stored = [
        EventItem(
            keys.user_id("test", distinct_id),
            f"{distinct_id}-buy",
            event="buy",
            distinct_id=distinct_id,
            timestamp=at,
            received_at=at,
            expires_at=0,
            **events.receipt_keys("test", at, distinct_id, f"{distinct_id}-buy"),
        )
        for distinct_id, at in buyers
    ]
    assert events.write_all(stored) == []


def _phase_zero(key: str, users: int, rates: dict[str, float]) -> tuple[datetime, dict[str, str]]:
    """A bandit launched two days ago, `users` assigned and exposed through /assign's code over its
    first day, each variant's first `rates[v]` share of its users buying an hour later."""
    assert create(key)[0] == 201
    started = datetime.now(UTC) - timedelta(days=2)
    assert call("launch_experiment", {"started_at": started.isoformat()}, path=f"/experiments/{key}/launch")[0] == 200
    shown: dict[str, str] = {}
    for n in range(users):
        distinct_id = f"{key}-u{n}"
        variant = _assign(key, distinct_id, started + timedelta(minutes=1 + n))
        assert variant is not None
        shown[distinct_id] = variant
    buyers = []
    for variant in VARIANTS:
        mine = [d for d, v in shown.items() if v == variant]
        for distinct_id in mine[: round(rates[variant] * len(mine))]:
            buyers.append((distinct_id, stored_assignment(key, distinct_id).exposed_at + timedelta(hours=1)))
    _purchases(buyers)
    return started, shown


def test_a_bandit_moves_traffic_to_the_better_arm_and_exposed_users_keep_their_variant(project):
    _, shown = _phase_zero("headline", users=450, rates={"control": 0.1, "b": 0.1, "c": 0.5})
    # Phase 0: equal shares, so each variant got about a third (the hashes: 450 draws, 5 sigma).
    for variant in VARIANTS:
        assert abs(sum(v == variant for v in shown.values()) - 150) < 5 * (450 * 2 / 9) ** 0.5
    item = definitions.get("test", "headline")
    assert item.bandit is None and bandit_weights.phase_number(item) == 0

    now = datetime.now(UTC)
    snapshot = nightly_inline.compute_snapshot(item, now, now)
    report = snapshot.analysis["bandit"]
    assert report["best"] == "c" and report["phases"] == 1
    assert [row["exposures"] for row in report["variants"]] == [
        sum(v == key for v in shown.values()) for key in VARIANTS
    ]
    c = next(row for row in report["variants"] if row["key"] == "c")
    assert c["probability_best"] > 0.99 and c["interval"][0] < c["mean"] < c["interval"][1]
    assert snapshot.analysis["verdict"]["decision"] == "keep_running"  # two days of its seven minimum
    assert "minimum days" in snapshot.analysis["verdict"]["reason"]

    # The run reweighted it: phase 1, c up by the most step (0.2), the others down, all above the floor.
    item = definitions.get("test", "headline")
    assert bandit_weights.phase_number(item) == 1
    shares = bandit_weights.points(item, definitions.definition(item))
    assert sum(shares.values()) == bandit_weights.WHOLE
    assert shares["c"] == pytest.approx(3333 + 2000, abs=2) and min(shares.values()) >= 500
    begins = bandit_weights.phase_starts(item)[-1]
    assert begins > now + timedelta(seconds=bandit_weights.lead_seconds() - 1)
    (phase,) = bandit_phases.of_experiment(item.experiment_id, 1)
    assert phase.weights == shares and phase.probability_best["c"] > 0.99 and "Thompson" in phase.reason
    described = definitions.to_api(item)["bandit"]
    assert described is not None and described["phase"] == 1 and described["weights"]["c"] == shares["c"] / 10_000

    # The API: the experiment's phases (how its traffic moved), and the results' bandit section.
    status, got = call("get_experiment", path="/experiments/headline")
    assert status == 200 and [p["phase"] for p in got["bandit_phases"]] == [0, 1]
    assert got["bandit_phases"][1]["weights"]["c"] == shares["c"] / 10_000
    status, results_ = call("get_results", path="/experiments/headline/results")
    assert status == 200 and results_["bandit"]["best"] == "c" and results_["verdict"]["decision"] == "keep_running"
    assert decision_card.BANDIT_NOTE in results_["decision_card"]["notes"]
    # The card's lift is c's stratified one (one phase so far: the plain means' ratio), not the pooled table's.
    control_row = next(row for row in report["variants"] if row["key"] == "control")
    card_lift = results_["decision_card"]["lift"]
    assert results_["decision_card"]["treatment"] == "c"
    assert card_lift["relative"] == pytest.approx(c["mean"] / control_row["mean"] - 1, rel=1e-9)
    section = html_page.results_section(snapshots.snapshots("test", "headline"))
    assert "Mean by phase (95% interval)" in section and "Share of new users per variant" in section
    assert "Lift by phase (95% interval)" in section and f"{c['lift']['relative']:+.1%}" in section

    # Until the phase begins, new users still get phase 0's shares; after, the new ones.
    spec = definitions.definition(item)
    ids = [f"new-{n}" for n in range(3000)]
    before = [sticky.stateless_variant(item, spec, d, {}, now=begins - timedelta(seconds=1)) for d in ids]
    after = [sticky.stateless_variant(item, spec, d, {}, now=begins) for d in ids]
    assert abs(before.count("c") - 1000) < 5 * (3000 * 2 / 9) ** 0.5
    expected = 3000 * shares["c"] / 10_000
    assert abs(after.count("c") - expected) < 5 * (expected * (1 - shares["c"] / 10_000)) ** 0.5

    # Every exposed user keeps their variant in the new phase, whatever their hash gives now.
    moved_by_hash = 0
    for distinct_id, variant in shown.items():
        assert _assign("headline", distinct_id, begins + timedelta(hours=1)) == variant
        moved_by_hash += sticky.stateless_variant(item, spec, distinct_id, {}, now=begins) != variant
    assert moved_by_hash > 0  # the new shares would have moved some: stickiness is what kept them

    # Local evaluation publishes the new shares, and asks the server for this flag.
    document = local_evaluation.definitions([item])
    (flag,) = [f for f in document["flags"] if f["key"] == "headline"]
    published = {v["key"]: v["rollout_percentage"] for v in flag["filters"]["multivariate"]["variants"]}
    assert published == {key: share / 100 for key, share in shares.items()}
    assert flag["ensure_experience_continuity"] is True
    assert [entry["key"] for entry in document["evaluated_by_the_server"]] == ["headline"]

    # The console's live check no longer tests the counts since the launch against one set of weights.
    live = live_check.read(item, begins)
    shown = pages.live_values(live)
    assert live.shares_moved and "fit no one set of weights" in shown["srm_sentence"] and not shown["srm_warning"]


def test_a_second_phase_is_counted_as_its_own_stratum(project):
    _, shown = _phase_zero("strata", users=300, rates={"control": 0.1, "b": 0.1, "c": 0.5})
    now = datetime.now(UTC)
    nightly_inline.compute_snapshot(definitions.get("test", "strata"), now, now)
    item = definitions.get("test", "strata")
    begins = bandit_weights.phase_starts(item)[-1]
    later = [f"late-{n}" for n in range(200)]
    for n, distinct_id in enumerate(later):
        shown[distinct_id] = _assign("strata", distinct_id, begins + timedelta(minutes=n)) or ""
    after = begins + timedelta(hours=5)
    snapshot = nightly_inline.compute_snapshot(definitions.get("test", "strata"), after, after)
    report = snapshot.analysis["bandit"]
    assert report["phases"] == 2
    # Each variant's users split by phase add up to its exposures; the expected shares are the phases'.
    exposures = {row["key"]: row["exposures"] for row in report["variants"]}
    assert exposures == {key: sum(v == key for v in shown.values()) for key in VARIANTS}
    points = reweight.phase_points(definitions.get("test", "strata"), definitions.definition(item))
    assert set(points) >= {0, 1}
    share_c = (300 * points[0]["c"] + 200 * points[1]["c"]) / 500 / 10_000
    assert report["expected_shares"]["c"] == pytest.approx(share_c)


def test_a_harmed_guardrail_freezes_its_variant_at_the_floor(project):
    _phase_zero("guarded", users=150, rates={"control": 0.1, "b": 0.4, "c": 0.1})
    item = definitions.get("test", "guarded")
    now = datetime.now(UTC)
    analysis = nightly_inline.compute_snapshot(item, now, now).analysis
    item = definitions.get("test", "guarded")
    harmed = cast(
        SnapshotAnalysis, {**analysis, "guardrail_metrics": [{"guardrail": {"status": {"b": "harmed", "c": "held"}}}]}
    )
    done = reweight.reweight(item, harmed, now + timedelta(hours=1))
    assert done is not None and done.frozen == ["b"]
    shares = bandit_weights.points(definitions.get("test", "guarded"), definitions.definition(item))
    assert shares["b"] == 500  # the 5% floor, at once, whatever the most step
    (_, phase) = bandit_phases.of_experiment(item.experiment_id, 2)
    assert "b frozen at the floor" in phase.reason
    # It stays frozen though the next analysis names no harm.
    again = reweight.reweight(definitions.get("test", "guarded"), analysis, now + timedelta(hours=2))
    assert again is None or again.weights["b"] == 500


def test_a_bandits_phases_go_with_its_project(project):
    _phase_zero("deleted", users=150, rates={"control": 0.1, "b": 0.1, "c": 0.6})
    now = datetime.now(UTC)
    nightly_inline.compute_snapshot(definitions.get("test", "deleted"), now, now)
    item = definitions.get("test", "deleted")
    assert len(bandit_phases.of_experiment(item.experiment_id, 1)) == 1
    from abacus import projects

    assert projects.delete("test", now)["bandit_phases"] == 1
    assert bandit_phases.of_experiment(item.experiment_id, 1) == []


def test_a_bandit_is_recomputed_and_reweighted_on_its_own_schedule(project):
    """The minute's schedule (AutomationFunction) starts the recompute of a bandit due (an hour
    after its launch, then every `reweight_every_hours`), through the nightly job's queue; the
    worker reweights it from the snapshot. Not due again until its next time."""
    _phase_zero("hourly", users=150, rates={"control": 0.1, "b": 0.1, "c": 0.6})
    item = definitions.get("test", "hourly")
    assert item.started_at is not None and item.bandit_run_due() == item.started_at + timedelta(hours=1)
    now = datetime.now(UTC)
    summary = invoke("AutomationFunction", scheduled_event("abacus-schedule", "us-east-1", now))
    assert summary["bandits_recomputed"] == ["test/hourly"]
    item = definitions.get("test", "hourly")
    assert bandit_weights.phase_number(item) == 1  # reweighted by the worker, from the recompute's snapshot
    due = item.bandit_run_due()
    assert due is not None and timedelta(minutes=59) < due - now < timedelta(hours=1, minutes=1)
    assert item.pending_schedule() == due  # in the by-due index at its next recompute
    again = invoke("AutomationFunction", scheduled_event("abacus-schedule", "us-east-1", datetime.now(UTC)))
    assert again["bandits_recomputed"] == [] and again["stopped"] == []


def test_a_bandit_keeps_its_layer_share_its_overrides_and_its_holdouts_users_on_control(project):
    """A bandit in a layer beside another experiment, under a project holdout, with a QA override:
    after a reweighting its share of the layer's buckets is the one it took at its launch, the
    other experiment's users never get it, the override always gets its variant (never stored),
    and the users the holdout holds out get control (never stored), whatever the shares."""
    split = [{"key": "control", "weight": 10}, {"key": "rest", "weight": 90}]
    held = {"variants": split, "holdout": {}, "primary_metric": {"event": "buy"}, "allocation": {"kind": "fixed"}}
    assert create("everything", **held)[0] == 201
    assert call("launch_experiment", {}, path="/experiments/everything/launch")[0] == 200
    other = {
        "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
        "allocation": {"kind": "fixed"},
    }
    assert create("other", layer={"key": "hero", "share": 50}, **other)[0] == 201
    assert call("launch_experiment", {}, path="/experiments/other/launch")[0] == 200
    assert create("layered", layer={"key": "hero", "share": 50}, overrides={"qa-user": "c"})[0] == 201
    started = datetime.now(UTC) - timedelta(days=2)
    assert call("launch_experiment", {"started_at": started.isoformat()}, path="/experiments/layered/launch")[0] == 200
    buckets = definitions.get("test", "layered").layer_buckets
    shown = {}
    for n in range(400):
        distinct_id = f"layered-u{n}"
        shown[distinct_id] = _assign("layered", distinct_id, started + timedelta(minutes=1 + n))
    inside = [d for d, v in shown.items() if v is not None]
    assert 130 < len(inside) < 270  # half the layer's users (400 draws, 5 sigma)
    buyers = [(d, stored_assignment("layered", d).exposed_at + timedelta(hours=1)) for d in inside if shown[d] == "c"]
    _purchases(buyers[: len(buyers) // 2])
    now = datetime.now(UTC)
    nightly_inline.compute_snapshot(definitions.get("test", "layered"), now, now)
    item = definitions.get("test", "layered")
    assert bandit_weights.phase_number(item) == 1 and item.layer_buckets == buckets
    after = bandit_weights.phase_starts(item)[-1] + timedelta(minutes=1)
    for n in range(200):
        distinct_id = f"layered-new{n}"
        in_other = _assign("other", distinct_id, after) is not None
        mine = _assign("layered", distinct_id, after)
        assert not (in_other and mine is not None), distinct_id  # one experiment of the layer each

    def never_stored(distinct_id: str) -> bool:
        return assignments.get(item.assignment_partition(distinct_id), distinct_id) is None

    assert _assign("layered", "qa-user", after) == "c" and never_stored("qa-user")
    known = {i.key: i for i in experiments.in_project("test")}
    spec = definitions.definition(item)
    held_out = [d for d in inside if holdouts.holding_out(holdouts.covering(item, known.values()), d)]
    assert held_out  # about a tenth of the bandit's users
    for distinct_id in held_out:
        assert shown[distinct_id] == "control" and never_stored(distinct_id)
        assert (
            sticky.stateless_variant(item, spec, distinct_id, {}, holdouts.covering(item, known.values())) == "control"
        )
