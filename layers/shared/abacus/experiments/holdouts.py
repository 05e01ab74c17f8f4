"""Holdouts: a share of the users kept on control in every experiment, to measure what the
experiments shipped, together.

A holdout is an experiment with `holdout` set (schemas.HoldoutSpec): two variants, `control` (the
users held out, its weight their share) and one for everyone else, no targeting, rollout or
overrides. While it runs, a user its hash puts in `control` gets control in every other running
or complete experiment of its scope (the project, or one layer), rather than the variant they
would have got (a complete one's shipped variant included), and is never exposed to one of them:
/assign stores nothing for them there, an exposure event of theirs is refused, and their first
sight of any experiment of the scope is recorded as an exposure of the holdout instead. So the
holdout's own results, computed nightly like any experiment's, compare the users held out with
everyone else. A user exposed to an experiment before a holdout launched keeps their variant
(/assign's stickiness); launch the holdout before the experiments it is meant to cover.
"""

from collections.abc import Iterable, Sequence

from abacus.core import hashing
from abacus.experiments import definitions, lifecycle
from abacus.experiments.spec import CONTROL
from abacus.storage.experiments import ExperimentItem


def covering(experiment: ExperimentItem, known: Iterable[ExperimentItem]) -> list[ExperimentItem]:
    """The running holdouts whose scope holds `experiment` (none for a holdout, nor for a group
    experiment: holdouts hold users out, not groups). It reads the stored definitions' JSON, not
    parsed ones: /assign asks this for every experiment of a request."""
    if experiment.definition.get("holdout") is not None or experiment.definition.get("group_type") is not None:
        return []
    layer = (experiment.definition.get("layer") or {}).get("key")
    found = []
    for item in known:
        holdout = item.definition.get("holdout") if item.status == lifecycle.RUNNING else None
        if holdout is not None and holdout.get("layer") in (None, layer):
            found.append(item)
    return sorted(found, key=lambda item: item.key)


def variant_in(holdout: ExperimentItem, distinct_id: str) -> str:
    """The user's variant of a holdout: its hash alone (no targeting, rollout or overrides)."""
    spec = definitions.definition(holdout)
    return hashing.pick_variant(holdout.key, distinct_id, [(v.key, v.weight) for v in spec.variants])


def holding_out(holdouts: Sequence[ExperimentItem], distinct_id: str) -> ExperimentItem | None:
    """The first of `holdouts` that holds the user out, if any."""
    return next((h for h in holdouts if variant_in(h, distinct_id) == CONTROL), None)
