"""The event properties Abacus never stores: the credentials a PostHog SDK sends among them, and
the SDK's own state that Abacus never reads (posthog/capture.py drops both). posthog-js adds the
state to every event; without it, compressed, an event is one write unit rather than three
(storage/events.py). A metric's filter on one of them could never match, so it is refused.

Standard library only: the request schemas (experiments/metrics_spec.py) import it."""

CREDENTIAL_PROPERTIES = ("token", "api_key")
SDK_STATE_PROPERTIES = frozenset(
    {
        "$insert_id",  # the SDK's deduplication id: the event's uuid is Abacus's
        "$time",  # the timestamp again
        "distinct_id",  # the event's distinct_id again
        "$active_feature_flags",  # the flags the SDK holds: Abacus has the assignments
        "$configured_session_timeout_ms",
        "$lib_rate_limit_remaining_tokens",
        "$autocapture_disabled_server_side",
        "$initial_person_info",  # the person's first URL and referrer, repeated on every event
    }
)


def is_stored(name: str) -> bool:
    """Whether a property of a captured event is kept."""
    if name in CREDENTIAL_PROPERTIES or name in SDK_STATE_PROPERTIES:
        return False
    return not (name.startswith("$feature/") or name.endswith("_enabled_server_side"))


def why_not_stored(name: str) -> str:
    """The reason, in words, that `name` is never stored."""
    if name in CREDENTIAL_PROPERTIES:
        return f"'{name}' is the project's credential, which Abacus does not store with an event"
    if name.startswith("$feature/") or name.endswith("_enabled_server_side"):
        return f"'{name}' is the SDK's own flag state, which Abacus does not store with an event"
    return f"'{name}' is the SDK's own state, which Abacus does not store with an event"
