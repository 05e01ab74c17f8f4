"""A bandit's reweighting (issue 34), after each snapshot of it is stored: the nightly one and any
recompute (an hourly schedule of recomputes is still to come). The next shares are the ones Thompson
sampling asks for (bandit_analysis.report's `target`) within the allocation's safety
(abacus.stats.bandits.next_weights: floor, burn-in, most step); a variant that harms a guardrail
is frozen at its floor at once, and stays so. Shares that did not move start no phase.

The new phase begins bandit_weights.lead_seconds() ahead, so that every cache and SDK holds it
before it applies. Written with its phase item in one transaction (storage.bandit_phases)."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from abacus.core.documents import SnapshotAnalysis
from abacus.experiments import bandit_weights, definitions, lifecycle
from abacus.experiments.spec import ExperimentFields
from abacus.stats import bandits
from abacus.storage import bandit_phases
from abacus.storage.experiments import ChangedMeanwhile, ExperimentItem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reweighted:
    phase: int
    begins: datetime
    weights: dict[str, int]
    frozen: list[str]


def phase_points(experiment: ExperimentItem, spec: ExperimentFields) -> dict[int, dict[str, int]]:
    """Each phase's shares in basis points: phase 0's equal ones, then the stored phases'."""
    keys = [variant.key for variant in spec.variants]
    shares = {0: dict(zip(keys, bandit_weights.equal_points(len(keys)), strict=True))}
    for item in bandit_phases.of_experiment(experiment.experiment_id, bandit_weights.phase_number(experiment)):
        shares[int(item.phase)] = {key: int(points) for key, points in item.weights.items()}
    return shares


def harmed_variants(analysis: SnapshotAnalysis) -> set[str]:
    """The treatments some guardrail says are harmed."""
    return {
        variant
        for guardrail in analysis.get("guardrail_metrics", [])
        for variant, status in guardrail.get("guardrail", {}).get("status", {}).items()
        if status == "harmed"
    }


def reweight(experiment: ExperimentItem, analysis: SnapshotAnalysis, now: datetime) -> Reweighted | None:
    """Starts the bandit's next phase from the snapshot's analysis, unless nothing moves, it is
    not running, or it has had its MAX_PHASES. ChangedMeanwhile when the experiment changed since
    it was read (its next snapshot reweights it)."""
    spec = definitions.definition(experiment)
    allocation = bandit_weights.allocation_of(spec)
    report = analysis.get("bandit")
    if allocation is None or report is None or experiment.status != lifecycle.RUNNING:
        return None
    if bandit_weights.phase_number(experiment) + 1 >= bandit_weights.MAX_PHASES:
        logger.info("bandit at its last phase", extra={"experiment": experiment.experiment_id})
        return None
    keys = [variant.key for variant in spec.variants]
    frozen = sorted(set(bandit_weights.frozen(experiment)) | harmed_variants(analysis))
    current = bandit_weights.points(experiment, spec)
    previous = [current[key] / bandit_weights.WHOLE for key in keys]
    target = [report["target"][key] for key in keys] if report["target"] else previous
    exposures = {row["key"]: row["exposures"] for row in report["variants"]}
    safety = bandits.Safety(allocation.floor, allocation.max_step, allocation.burn_in)
    frozen_at = [keys.index(key) for key in frozen]
    shares = bandits.next_weights(previous, target, [exposures.get(key, 0) for key in keys], safety, frozen_at)
    new_points = dict(zip(keys, bandit_weights.to_points(shares), strict=True))
    if new_points == current and frozen == bandit_weights.frozen(experiment):
        return None
    begins = now + timedelta(seconds=bandit_weights.lead_seconds())
    number = bandit_weights.phase_number(experiment) + 1
    reason = _reason(report["reason"], frozen, set(bandit_weights.frozen(experiment)), allocation.top_two)
    best = {row["key"]: row["probability_best"] for row in report["variants"]} or None
    phase = bandit_phases.phase_item(experiment.experiment_id, number, begins, now, new_points, reason, best)
    experiment.bandit = bandit_weights.next_state(experiment, spec, new_points, begins, frozen)
    bandit_phases.start(experiment, phase)
    return Reweighted(number, begins, new_points, frozen)


def _reason(leader: str, frozen: list[str], were_frozen: set[str], top_two: bool) -> str:
    newly = [key for key in frozen if key not in were_frozen]
    words = f"{'top-two ' if top_two else ''}Thompson sampling: {leader}"
    if newly:
        words += f"; {', '.join(newly)} frozen at the floor (a guardrail is harmed)"
    return words


def after_snapshot(experiment: ExperimentItem, analysis: SnapshotAnalysis, now: datetime) -> Reweighted | None:
    """reweight(), never failing the run that stored the snapshot: a reweighting not made is made
    from the next snapshot."""
    try:
        return reweight(experiment, analysis, now)
    except ChangedMeanwhile:
        logger.info("bandit changed meanwhile: reweighted from its next snapshot")
    except Exception:
        logger.exception("bandit not reweighted", extra={"experiment": experiment.experiment_id})
    return None
