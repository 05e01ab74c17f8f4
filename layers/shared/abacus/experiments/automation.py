"""Automatic actions, opt-in per experiment (its `automation`): ship the winner when the verdict
is `ship`, stop when it is `no_effect`, stop when the split is broken (a sample ratio mismatch).

AutomationFunction calls act() after every stored snapshot, so a `ship` reached on day 3 is acted
on by the first snapshot past the minimum runtime that still says `ship`. The guards:

- `ship` and `no_effect` act only once the snapshot's data span `minimum_days` (default 7, a weekly
  cycle) since the launch, while no guardrail is harmed and the split is sound (a mismatch
  overall or on any day): otherwise they wait, and decide() says which guard holds them back.
- `srm` acts at once, whatever the runtime and the guardrails: a broken split makes every number
  of the snapshot wrong, the guardrails' included, so waiting for them would mean nothing.

An action goes through definitions.apply_to, as a person's stop or ship does (the same checks, the
same undo: ship another variant, duplicate the experiment), and its history entry names
`automation` as who acted, with the rule, the snapshot's date and the verdict's decision. It is
decided on the experiment as stored and saved only if unchanged since, so a redelivered snapshot
or a person's action meanwhile makes it nothing.
"""

from datetime import datetime
from typing import Literal, NamedTuple, TypedDict

from abacus.core.documents import SnapshotAnalysis
from abacus.experiments import definitions, lifecycle
from abacus.experiments.spec import AutomationSpec
from abacus.storage import experiments, results
from abacus.storage.experiments import ExperimentItem
from abacus.storage.results import SnapshotItem

BY = "automation"  # the history's `by` of an automatic action
ATTEMPTS = 3  # saves tried when the experiment changes between the read and the write (Raced)
Rule = Literal["ship", "no_effect", "srm"]
Guard = Literal["minimum_runtime", "guardrail", "srm"]
Action = Literal["ship", "stop"]
SECONDS_A_DAY = 86400


class Decision(NamedTuple):
    """What the automation does with a snapshot, and why."""

    rule: Rule | None  # the enabled rule the snapshot meets; None: none does
    action: Action | None  # what to do now; None: nothing (no rule, or a guard holds it back)
    variant: str | None  # the variant shipped
    blocked_by: Guard | None  # the guard that holds the rule back
    reason: str  # in words, for alerts and logs


class AutomaticAction(TypedDict):
    """An action taken: by which rule, on which snapshot (its date) and verdict decision."""

    rule: Rule
    action: Action
    variant: str | None
    snapshot: str
    decision: str


def split_broken(analysis: SnapshotAnalysis) -> str | None:
    """How the split is broken (a sample ratio mismatch overall, or on one day), or None."""
    if analysis["srm"]["mismatch"]:
        return f"the exposures do not fit the weights (p = {analysis['srm']['p_value']:.2g})"
    first = analysis.get("exposures_by_day", {}).get("first_mismatch")
    return f"the day's exposures do not fit the weights from {first}" if first else None


def harmed_guardrails(analysis: SnapshotAnalysis) -> list[str]:
    """Each harmed guardrail, in words ("'one-page' harms errors (count)")."""
    harmed = []
    for guardrail in analysis.get("guardrail_metrics", []):
        metric = guardrail["metric"]
        name = f"{metric['event']} ({metric['kind']})" if "event" in metric else f"a {metric['kind']} guardrail"
        statuses = guardrail.get("guardrail", {}).get("status", {})
        harmed += [f"'{variant}' harms {name}" for variant, status in statuses.items() if status == "harmed"]
    return harmed


def decide(policy: AutomationSpec, analysis: SnapshotAnalysis, days_run: float) -> Decision:
    """What `policy` does with a snapshot's `analysis`, its data spanning `days_run` days since
    the launch: the rule met and the action, or the guard that holds it back, or nothing."""
    broken = split_broken(analysis)
    if broken and policy.srm:
        return Decision("srm", "stop", None, None, f"automation stops it: sample ratio mismatch, {broken}")
    verdict = analysis["verdict"]
    decision = verdict["decision"]
    rule: Rule | None = None
    if decision == "ship" and policy.ship:
        rule = "ship"
    elif decision == "no_effect" and policy.no_effect:
        rule = "no_effect"
    if rule is None:
        return Decision(None, None, None, None, _idle(policy, decision, broken))
    action: Action = "ship" if rule == "ship" else "stop"
    variant = verdict["variant"] if rule == "ship" else None
    does = f"ship '{variant}'" if rule == "ship" else "stop (no effect)"
    if broken:
        return Decision(rule, None, variant, "srm", f"automation holds back ({does}): sample ratio mismatch, {broken}")
    if harmed := harmed_guardrails(analysis):
        return Decision(rule, None, variant, "guardrail", f"automation holds back ({does}): {'; '.join(harmed)}")
    if days_run < policy.minimum_days:
        return Decision(
            rule,
            None,
            variant,
            "minimum_runtime",
            f"automation waiting for minimum runtime ({int(days_run)} of {policy.minimum_days} days) to {does}",
        )
    return Decision(rule, action, variant, None, f"automation will {does}: {verdict['reason']}")


OFF = "automation is off"


def _idle(policy: AutomationSpec, decision: str, broken: str | None) -> str:
    if not (policy.ship or policy.no_effect or policy.srm):
        return OFF
    if broken:
        return f"no automatic action: sample ratio mismatch ({broken}) and the srm rule is off"
    return f"no automatic action on a '{decision}' verdict"


def decision_for(experiment: ExperimentItem, snapshot: SnapshotItem) -> Decision:
    """decide() for an experiment's snapshot: its policy, and the days from its launch to the
    snapshot's cut-off (the data the verdict rests on, whenever the snapshot is looked at)."""
    if experiment.status != lifecycle.RUNNING or experiment.started_at is None:
        return Decision(None, None, None, None, f"it is {experiment.status}: automation acts on running experiments")
    days_run = (snapshot.cutoff - experiment.started_at).total_seconds() / SECONDS_A_DAY
    return decide(definitions.definition(experiment).automation, snapshot.analysis, days_run)


def act(experiment: ExperimentItem, snapshot: SnapshotItem, now: datetime) -> AutomaticAction | None:
    """The automatic action a stored snapshot calls for, taken; None when none is (a rule off, a
    guard, no longer running, a newer snapshot stored). Decided on the experiment as stored now."""
    if snapshot.experiment_id != experiment.experiment_id:
        raise ValueError(f"snapshot of {snapshot.experiment_id}, not of {experiment.experiment_id}")
    newest = results.latest(experiment.experiment_id)
    if newest is not None and newest.date > snapshot.date:
        return None  # a snapshot delivered late: the newer one decides
    for attempt in range(ATTEMPTS):
        stored = experiments.get(experiment.project_id, experiment.key)
        if stored is None or stored.experiment_id != experiment.experiment_id:
            return None  # deleted or replaced meanwhile
        decision = decision_for(stored, snapshot)
        if decision.rule is None or decision.action is None:
            return None
        verdict = snapshot.analysis["verdict"]["decision"]
        why = {"rule": decision.rule, "snapshot": snapshot.date, "decision": verdict}
        try:
            definitions.apply_to(stored, decision.action, now, variant=decision.variant, by=BY, why=why)
        except definitions.Raced:
            if attempt == ATTEMPTS - 1:
                raise
            continue
        return {
            "rule": decision.rule,
            "action": decision.action,
            "variant": decision.variant,
            "snapshot": snapshot.date,
            "decision": verdict,
        }
    return None
