"""Bandits (issue 34): an exposed user keeps their variant however often the shares move, and
posthog-python's local evaluation gives a new user the variant /assign gives.

A bandit of 4 variants (control, b, c, d; a 1% floor, burn-in 1, at most 20 points a reweighting)
is created and launched on moto's tables made from template.yaml, then reweighted REWEIGHTINGS
times by the nightly job's own abacus.nightly.reweight.reweight, each time from a crafted analysis
whose Thompson target is a fresh Dirichlet(1, 1, 1, 1) draw (seeded), so that the shares really
move, differently each time. Phases last an hour of simulated time. In each phase:
(a) its share of IDS new ids is assigned and exposed through /assign's own code
    (abacus.assignment.sticky.assign), at moments spread over the phase after its start;
(b) a random sample of REASKED ids exposed in earlier phases asks again through sticky.assign:
    an answer other than the variant first given is a change (must be 0);
(c) the phase's new ids are evaluated by posthog-python's own local evaluator
    (posthog.feature_flags.match_feature_flag_properties) on the flag that
    abacus.posthog.local_evaluation.definitions publishes for the bandit then: an answer other than
    /assign's is a disagreement (must be 0). The flag's `ensure_experience_continuity` (set once
    the shares have moved, so that the SDK asks the server for users it has not seen) is ignored:
    what is checked is that the published shares give a new user /assign's variant.
Then the next reweighting: its phase starts bandit_weights.lead_seconds() ahead, past every cache
of the experiment; the bench reloads the experiment and clears this process's caches (as the real
time elapsed would have), then moves on past the start.

Printed per phase: its shares, new ids, ids asked again, changes, disagreements, and how many of
the users exposed so far the current shares would hash to another variant than the one they keep
(bandit_weights' shares through sticky.stateless_variant: what stickiness is holding). At the end,
the totals, each variant's new users against what the phases' shares expect, and the wall time.

Run: .venv/bin/python bench/bandit_stickiness.py [ids] [reweightings]   (defaults 100000 and 30; seed SEED)
"""

import os
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, cast

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "b",
        "AWS_SECRET_ACCESS_KEY": "b",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "ABACUS_CACHE_SECONDS": "30",  # as deployed (CacheSeconds): the lead of a phase is counted from it
    }
)
os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
os.environ.pop("ABACUS_BANDIT_LEAD_SECONDS", None)  # the deployed lead, from CacheSeconds

import boto3
import numpy as np
from moto import mock_aws
from posthog.feature_flags import match_feature_flag_properties

from abacus_local.dynamodb import create_tables
from abacus_local.template import Template

SEED = 34
PROJECT = "bench"
KEY = "arms"
VARIANTS = ["control", "b", "c", "d"]
ALLOCATION = {"kind": "bandit", "burn_in": 1, "floor": 0.01, "max_step": 0.2}
START = datetime(2026, 12, 1, tzinfo=UTC)
PHASE = timedelta(hours=1)  # a reweighting an hour (the most often a bandit is reweighted)
REASKED = 2_000  # ids of earlier phases asked again in each phase


def launch() -> tuple[str, Any]:
    """The project and the bandit, launched at START: (the project's token, the experiment)."""
    from abacus import projects
    from abacus.experiments import definitions
    from abacus.experiments.spec import ExperimentCreate

    token = projects.create("Bench", project_id=PROJECT)["token"]
    spec = ExperimentCreate.model_validate(
        {
            "key": KEY,
            "name": "Four arms",
            "variants": [{"key": key, "weight": 25} for key in VARIANTS],
            "primary_metric": {"event": "buy"},
            "allocation": ALLOCATION,
        }
    )
    definitions.create(PROJECT, spec, START - timedelta(days=1))
    return token, definitions.apply(PROJECT, KEY, "launch", START)


def assign(token: str, distinct_id: str, now: datetime) -> str | None:
    """/assign's answer (and first exposure) through its own code."""
    from abacus.assignment import sticky
    from abacus.assignment.spec import AssignRequest

    request = AssignRequest(token=token, distinct_id=distinct_id, experiments=[KEY])
    return sticky.assign(PROJECT, request, now)[KEY]


def posthog_variant(document: dict[str, Any], distinct_id: str) -> Any:
    """posthog-python's local evaluation of the bandit's published flag for a user with no properties."""
    flags = {flag["key"]: flag for flag in document["flags"]}
    return match_feature_flag_properties(
        flags[KEY],
        distinct_id,
        {},
        cohort_properties=document["cohorts"],
        flags_by_key=flags,
        evaluation_cache={},
        bucketing_value=distinct_id,
        group_type_mapping=document["group_type_mapping"],
        property_matching_version=document["property_matching_version"],
    )


def crafted_analysis(rng: np.random.Generator, exposed: Counter[str]) -> Any:
    """What reweight.reweight reads of a snapshot's analysis: a Thompson target drawn afresh."""
    target = dict(zip(VARIANTS, (float(x) for x in rng.dirichlet([1.0] * len(VARIANTS))), strict=True))
    leader = max(target, key=lambda key: target[key])
    return {
        "bandit": {
            "target": target,
            "variants": [{"key": key, "exposures": exposed[key], "probability_best": target[key]} for key in VARIANTS],
            "reason": leader,
        }
    }


def per_phase(ids: int, phases: int) -> list[int]:
    base, rest = divmod(ids, phases)
    return [base + (1 if phase < rest else 0) for phase in range(phases)]


class Bench:
    """The bandit's run: the ids exposed, with their first variant, and what each phase found."""

    def __init__(self, token: str, item: Any) -> None:
        from abacus.experiments import definitions

        self.token, self.item, self.spec = token, item, definitions.definition(item)
        self.first: dict[str, str] = {}  # each exposed id's variant, as first answered
        self.order: list[str] = []  # the exposed ids, in the order of their exposure
        self.exposed: Counter[str] = Counter()
        self.expected = dict.fromkeys(VARIANTS, 0.0)  # each variant's new users by the phases' shares
        self.totals: Counter[str] = Counter()

    def expose_new(self, count: int, phase_start: datetime, step: timedelta) -> list[str]:
        """(a) `count` new ids, assigned and exposed by /assign at moments spread over the phase."""
        from abacus.experiments import bandit_weights

        shares = bandit_weights.points(self.item, self.spec, phase_start)
        new = [f"user-{n:06d}" for n in range(len(self.order), len(self.order) + count)]
        for n, distinct_id in enumerate(new):
            variant = assign(self.token, distinct_id, phase_start + timedelta(seconds=1) + n * step)
            assert variant is not None, distinct_id
            self.first[distinct_id] = variant
            self.order.append(distinct_id)
            self.exposed[variant] += 1
        for key in VARIANTS:
            self.expected[key] += count * shares[key] / bandit_weights.WHOLE
        return new

    def ask_again(self, earlier: list[str], now: datetime) -> list[tuple[str, str, str | None]]:
        """(b) Ids exposed in earlier phases ask again: (id, first variant, answer) of each changed."""
        changed = []
        for distinct_id in earlier:
            answer = assign(self.token, distinct_id, now)
            if answer != self.first[distinct_id]:
                changed.append((distinct_id, self.first[distinct_id], answer))
        self.totals.update(asked=len(earlier), changed=len(changed))
        return changed

    def posthog_disagreements(self, new: list[str]) -> list[tuple[str, str, Any]]:
        """(c) posthog-python's local evaluation of the published flag against /assign, for `new` ids."""
        from abacus.posthog import local_evaluation

        document = local_evaluation.definitions([self.item])
        disagreeing = []
        for distinct_id in new:
            local = posthog_variant(document, distinct_id)
            if local != self.first[distinct_id]:
                disagreeing.append((distinct_id, self.first[distinct_id], local))
        self.totals.update(disagreeing=len(disagreeing))
        return disagreeing

    def moved_by_hash(self, item: Any, now: datetime) -> int:
        """Exposed users whom the shares at `now` would hash to another variant than the one they keep."""
        from abacus.assignment import sticky

        return sum(sticky.stateless_variant(item, self.spec, d, {}, now=now) != self.first[d] for d in self.order)

    def reweight(self, rng: np.random.Generator, decided: datetime) -> datetime:
        """(d) The next reweighting, decided at `decided`: the item reloaded, its phase's start."""
        from abacus.core import cache
        from abacus.core.documents import SnapshotAnalysis
        from abacus.experiments import bandit_weights, definitions
        from abacus.nightly import reweight

        for _ in range(10):
            analysis = cast(SnapshotAnalysis, crafted_analysis(rng, self.exposed))
            if reweight.reweight(self.item, analysis, decided) is not None:
                break
        else:
            raise RuntimeError("ten reweightings in a row moved nothing")
        self.item = definitions.get(PROJECT, KEY)
        begins = bandit_weights.phase_starts(self.item)[-1]
        lead = timedelta(seconds=bandit_weights.lead_seconds())
        assert decided + lead <= begins < decided + lead + timedelta(seconds=1)
        # Every cache of the experiment has expired by the phase's start (lead_seconds is longer than
        # CacheSeconds): simulated time jumps past it, so this process's caches are emptied.
        cache.clear_every_cache()
        return begins


def print_phase(phase: int, shares: dict[str, int], row: tuple[int, ...], changed: list, disagreeing: list) -> None:
    cells = " ".join(f"{shares[key] / 100:5.2f}" for key in VARIANTS)
    count, asked, exposed, moved = row
    print(
        f"{phase:>5}  {cells:<27}{count:>8,}{asked:>12,}{len(changed):>8}{len(disagreeing):>10}"
        f"{exposed:>9,}{moved:>12,}"
    )
    for distinct_id, was, now_given in changed[:10]:
        print(f"       CHANGED {distinct_id}: first {was}, now {now_given} (phase {phase}, shares {shares})")
    for distinct_id, given, local in disagreeing[:10]:
        print(f"       DISAGREES {distinct_id}: /assign {given}, posthog-python {local} (phase {phase}, {shares})")


def run(ids: int, reweightings: int) -> None:
    from abacus.experiments import bandit_weights, definitions

    rng = np.random.default_rng(SEED)
    sample = random.Random(SEED)
    started = time.perf_counter()
    bench = Bench(*launch())
    lead = timedelta(seconds=bandit_weights.lead_seconds())
    print(
        f"{ids:,} new ids over {reweightings + 1} phases (phase 0 and {reweightings} reweightings, an hour each), "
        f"up to {REASKED:,} earlier ids asked again a phase; 4 variants, allocation {ALLOCATION}; "
        f"a phase starts {lead.total_seconds():.0f} s after its reweighting; seed {SEED}"
    )
    print()
    print(
        f"{'phase':>5}  {'shares % (control b c d)':<27}{'new ids':>8}{'asked again':>12}{'changed':>8}"
        f"{'posthog ≠':>10}{'exposed':>9}{'hash ≠ kept':>12}"
    )
    phase_start = START
    for phase, count in enumerate(per_phase(ids, reweightings + 1)):
        assert bandit_weights.phase_number(bench.item) == phase
        shares = bandit_weights.points(bench.item, bench.spec, phase_start)
        earlier = list(bench.order)
        new = bench.expose_new(count, phase_start, (PHASE - lead - timedelta(minutes=2)) / count)
        now = phase_start + PHASE - lead - timedelta(minutes=1)
        again = sample.sample(earlier, min(REASKED, len(earlier)))
        changed = bench.ask_again(again, now)
        disagreeing = bench.posthog_disagreements(new)
        row = (count, len(again), len(bench.order), bench.moved_by_hash(bench.item, now))
        print_phase(phase, shares, row, changed, disagreeing)
        if phase < reweightings:
            phase_start = bench.reweight(rng, phase_start + PHASE - lead)

    elapsed = time.perf_counter() - started
    final = definitions.get(PROJECT, KEY)
    moved = bench.moved_by_hash(final, phase_start + PHASE)
    exposed, totals = len(bench.order), bench.totals
    print()
    print(f"ids exposed:                          {exposed:,}")
    print(f"reweightings:                         {bandit_weights.phase_number(final)}")
    print(f"returning users asked again:          {totals['asked']:,}")
    print(f"variant changes:                      {totals['changed']}")
    print(f"posthog-python disagreements:         {totals['disagreeing']}")
    print(f"exposed users the current shares would hash to another variant: {moved:,} ({moved / exposed:.1%})")
    print(
        "new users per variant (expected from the phases' shares): "
        + ", ".join(f"{key} {bench.exposed[key]:,} ({bench.expected[key]:,.0f})" for key in VARIANTS)
    )
    print(f"({elapsed:.0f} s)")


def main() -> None:
    ids = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    reweightings = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    with mock_aws():
        create_tables(Template(), boto3.client("dynamodb", region_name="us-east-1"))
        run(ids, reweightings)


if __name__ == "__main__":
    main()
