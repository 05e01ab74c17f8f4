"""What counts as an exposure, whichever way it arrives (POST /assign with `expose`, PostHog's
`$feature_flag_called`, a native `$exposure`):

- never that of a user with an override: overrides are for QA, such a user sees the variant
  someone chose for them, and counting them would put people never randomised into the results;
- only one during the experiment's run, from its launch until its stop: before the launch nobody
  was shown a variant of it, so a purchase then is no effect of one; after the stop everyone is
  served the same variant;
- never that of a user a running holdout holds out (holdouts.py): they get control, and count in
  the holdout's results instead.
"""

from collections.abc import Sequence
from datetime import datetime

from abacus.experiments import holdouts
from abacus.experiments.spec import ExperimentFields
from abacus.storage.experiments import ExperimentItem

OVERRIDE, BEFORE_LAUNCH, AFTER_STOP, HELD_OUT = "override", "before_launch", "after_stop", "held_out"


def refusal(
    experiment: ExperimentItem,
    spec: ExperimentFields,
    distinct_id: str,
    at: datetime,
    covering: Sequence[ExperimentItem] = (),
    unit: str | None = None,
) -> str | None:
    """Why an exposure of `distinct_id` to the experiment at `at` is none (OVERRIDE,
    BEFORE_LAUNCH, AFTER_STOP, or HELD_OUT by one of the `covering` holdouts, which hash the
    `unit`: the person's root id, the distinct_id by default); None when it is one."""
    if distinct_id in spec.overrides or (unit is not None and unit in spec.overrides):
        return OVERRIDE
    if experiment.started_at is None or at < experiment.started_at:
        return BEFORE_LAUNCH
    if experiment.stopped_at is not None and at >= experiment.stopped_at:
        return AFTER_STOP
    if holdouts.holding_out(covering, unit if unit is not None else distinct_id):
        return HELD_OUT
    return None
