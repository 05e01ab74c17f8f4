"""What counts as an exposure, whichever way it arrives (POST /assign with `expose`, PostHog's
`$feature_flag_called`, a native `$exposure`): never that of a user with an override. Overrides
are for QA: such a user sees the variant someone chose for them, so counting them would put
people who were never randomised into the results."""

from abacus.schemas import ExperimentFields

OVERRIDE = "override"


def refusal(spec: ExperimentFields, distinct_id: str) -> str | None:
    """Why an exposure of `distinct_id` to the experiment is none ("override"); None when it is one."""
    if distinct_id in spec.overrides:
        return OVERRIDE
    return None
