"""posthog-python's own local evaluation of one flag of the definitions Abacus publishes, as the
SDK's client runs it: the user's properties with their `distinct_id` (the client adds it), the
other flags for dependencies (layers, holdouts), and None for what it cannot decide locally."""

from typing import Any

from posthog.feature_flags import InconclusiveMatchError, match_feature_flag_properties


def evaluate_locally(flags: dict[str, Any], key: str, distinct_id: str, properties: dict[str, Any]) -> str | None:
    """The variant the SDK gives the user, or None (not in the experiment, or undecided)."""
    try:
        value = match_feature_flag_properties(
            flags[key],
            distinct_id,
            {"distinct_id": distinct_id, **properties},
            flags_by_key=flags,
            evaluation_cache={},
            bucketing_value=distinct_id,
            property_matching_version=2,
        )
    except InconclusiveMatchError:
        return None  # a property not sent: the SDK answers nothing (or asks the server)
    return value if isinstance(value, str) else None
