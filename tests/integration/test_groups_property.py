"""Group experiments against a recount (Hypothesis): whatever the members, the order the events
arrive in, redeliveries and events naming no group, the results count companies: a company is
exposed from its first member's exposure, in the variant PostHog's group hash gives its key, and
converts once if any member bought at or after that exposure. The recount below reads only the
raw events and the hash, never the product's code."""

import os
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import boto3
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from moto import mock_aws

from abacus import projects
from abacus.core import hashing
from abacus.experiments import definitions
from abacus.experiments.spec import ExperimentCreate
from abacus.ingestion import ingest
from abacus.results import snapshots
from abacus_local import nightly_inline

KEY = "grp"
SPLIT = [("control", 50), ("team-plan", 50)]
SPEC = {
    "key": KEY,
    "name": "Groups",
    "group_type": "company",
    "variants": [{"key": key, "weight": weight} for key, weight in SPLIT],
    "primary_metric": {"event": "purchase"},
    "cuped": False,
}
START = datetime(2026, 11, 2, tzinfo=UTC)
END = START + timedelta(hours=48)  # after every event arrived (the last at most 24 h + 10 h in)
EXAMPLES = int(os.environ.get("ABACUS_FUZZ_EXAMPLES", "25")) // 2 or 1


@dataclass(frozen=True)
class Sent:
    event: str
    member: str
    company: str | None  # None: the event names no group
    at: datetime
    received: datetime
    uuid: str

    def raw(self) -> dict:
        properties: dict = {"$groups": {"company": self.company}} if self.company else {}
        if self.event == "$feature_flag_called":
            properties |= {
                "$feature_flag": KEY,
                "$feature_flag_response": hashing.pick_variant(KEY, self.company or self.member, SPLIT),
            }
        return {
            "event": self.event,
            "distinct_id": self.member,
            "uuid": self.uuid,
            "timestamp": self.at.isoformat(),
            "properties": properties,
        }


@st.composite
def histories(draw) -> list[Sent]:
    sent: list[Sent] = []
    for c in range(draw(st.integers(1, 5))):
        company = f"company-{c}-{draw(st.integers(0, 10**6))}"
        for m in range(draw(st.integers(1, 3))):
            member = f"{company}-member-{m}"
            names_group = draw(st.booleans()) or m == 0
            for event in ("$feature_flag_called", "purchase"):
                for _ in range(draw(st.integers(0, 2))):
                    at = START + timedelta(minutes=draw(st.integers(-30, 24 * 60)))
                    late = timedelta(minutes=draw(st.integers(0, 5 * 60)))
                    one = Sent(
                        event, member, company if names_group else None, at, max(at, START) + late, str(uuid.uuid4())
                    )
                    sent.append(one)
                    if draw(st.booleans()):  # the SDK sent it again (the same uuid), maybe much later
                        sent.append(Sent(one.event, one.member, one.company, one.at, one.received + late, one.uuid))
    return sent


def recount(sent: list[Sent]) -> dict[str, tuple[int, int]]:
    """Per variant: (companies exposed, companies that converted), from the raw events alone."""
    first: dict[str, datetime] = {}
    for one in sent:
        if one.event == "$feature_flag_called" and one.company and START <= one.at < END:
            first[one.company] = min(first.get(one.company, one.at), one.at)
    converted = {
        one.company
        for one in sent
        if one.event == "purchase" and one.company in first and first[one.company] <= one.at < END
    }
    counts = {variant: [0, 0] for variant, _ in SPLIT}
    for company in first:
        variant = hashing.pick_variant(KEY, company, SPLIT)
        counts[variant][0] += 1
        counts[variant][1] += company in converted
    return {variant: (exposed, bought) for variant, (exposed, bought) in counts.items()}


@seed(20261206)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(sent=histories(), batch=st.integers(1, 7), shuffled=st.randoms(use_true_random=False))
def test_a_group_experiment_counts_each_company_once_as_a_recount(template, sent, batch, shuffled: random.Random):
    from abacus_local.dynamodb import create_tables

    with mock_aws():
        create_tables(template, boto3.client("dynamodb", region_name="us-east-1"))
        projects.create("Groups", project_id="test", token="phc_groups", admin_key="groups_admin")
        definitions.create("test", ExperimentCreate.model_validate(SPEC), START - timedelta(days=1))
        definitions.apply("test", KEY, "launch", START)
        arriving = sorted(sent, key=lambda one: one.received)
        shuffled.shuffle(arriving)  # requests overtake each other
        for start in range(0, len(arriving), batch):
            batch_sent = arriving[start : start + batch]
            outcome = ingest.ingest("test", [one.raw() for one in batch_sent], max(one.received for one in batch_sent))
            assert outcome["rejected"] == [], outcome
        if not any(one.event == "$feature_flag_called" and one.company and one.at >= START for one in sent):
            return  # no company exposed: nothing to analyse
        answer = snapshots.recompute("test", KEY, END, send=nightly_inline.work_here)
        assert answer["status"] == "ready", answer
        counted = {row["key"]: (row["exposures"], int(row["conversions"])) for row in answer["variants"]}
        assert counted == recount(sent), (counted, recount(sent))
        assert answer["counted_unit"] == "companies"
