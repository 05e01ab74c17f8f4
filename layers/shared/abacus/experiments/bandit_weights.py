"""A bandit's weights over its run: which phase a moment falls in, and each variant's share of
the new users assigned then (issue 34).

A bandit starts at phase 0, its variants equal, at its launch. Each reweighting that moves a
share starts the next phase (abacus.nightly.reweight). The experiment item keeps the current
phase's shares and every phase's start (storage.experiments.ExperimentItem.bandit); each phase's
shares are also kept on their own for the report (storage.bandit_phases).

Shares are stored in basis points (whole hundredths of a percent) summing to 10,000, so that
/assign, /flags/ and posthog-python's local evaluation, given the same numbers as percentages with
two decimals, draw the same boundaries between variants (core.hashing.pick_variant).

A reweighting sets its phase to start LEAD_SECONDS ahead, with the shares before it kept beside
the new ones: every function caching the experiment (for ABACUS_CACHE_SECONDS) and every SDK
polling local evaluation's definitions (posthog-python: every 30 seconds) holds the new phase and
its start before it begins, so a user's variant is drawn with the shares of the phase their
assignment's time falls in, exactly, on every server.

A user's stratum is the phase of their assignment (assigned_at): their variant was drawn with
that phase's shares, and an exposed user keeps it (assignment/sticky.py), whatever later phases
give new users.

Pure: no storage, no statistics."""

import math
import os
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from abacus.core.answers import BanditState
from abacus.core.cache import default_ttl
from abacus.experiments.spec import BanditAllocation, ExperimentFields
from abacus.storage.experiments import ExperimentItem

WHOLE = 10_000  # basis points in all the traffic
# The most phases a bandit has: a nightly page keeps its users' sums per phase and variant
# (abacus.nightly.sums), so phases are bounded: 504 is three weeks of hourly reweightings. The
# last phase then holds until the bandit is stopped.
MAX_PHASES = 504
POLL_SECONDS = 30  # posthog-python's default poll of the local evaluation definitions
CLOCK_SKEW_SECONDS = 30


def lead_seconds() -> float:
    """How far ahead a new phase starts: past every cache of the experiment and every SDK's poll
    (ABACUS_BANDIT_LEAD_SECONDS when set: `make demo`, whose stack caches nothing and serves no SDK's poll)."""
    if override := os.environ.get("ABACUS_BANDIT_LEAD_SECONDS"):
        return float(override)
    return default_ttl() + POLL_SECONDS + CLOCK_SKEW_SECONDS


def allocation_of(spec: ExperimentFields) -> BanditAllocation | None:
    return spec.allocation if isinstance(spec.allocation, BanditAllocation) else None


def equal_points(count: int) -> list[int]:
    """`count` equal shares in basis points summing to WHOLE (the earlier variants get the rest)."""
    base, rest = divmod(WHOLE, count)
    return [base + (1 if index < rest else 0) for index in range(count)]


def to_points(shares: Sequence[float]) -> list[int]:
    """Shares (summing to 1) as basis points summing to WHOLE: rounded by largest remainder."""
    scaled = [WHOLE * share / sum(shares) for share in shares]
    whole = [int(share) for share in scaled]
    by_remainder = sorted(range(len(scaled)), key=lambda i: -(scaled[i] - whole[i]))
    for index in by_remainder[: WHOLE - sum(whole)]:
        whole[index] += 1
    return whole


def points(item: ExperimentItem, spec: ExperimentFields, now: datetime | None = None) -> dict[str, int]:
    """Each variant's share of new users at `now` (default: of the latest phase, begun or about to
    begin), in basis points: phase 0's equal shares until the first reweighting."""
    keys = [variant.key for variant in spec.variants]
    state = item.bandit or {}
    stored: Mapping[str, Any] = state.get("weights") or {}
    starts = state.get("starts") or []
    if now is not None and starts and now.timestamp() < starts[-1]:
        stored = state.get("previous") or {}  # the latest phase has not begun yet
    if set(stored) == set(keys):
        return {key: int(stored[key]) for key in keys}
    return dict(zip(keys, equal_points(len(keys)), strict=True))


def assignment_weights(item: ExperimentItem, spec: ExperimentFields, now: datetime | None) -> list[tuple[str, float]]:
    """(variant, percent) in the variants' order at `now`, as core.hashing.pick_variant and the
    local evaluation definitions take them: a bandit's shares then, else the fixed weights."""
    if allocation_of(spec) is None:
        return [(variant.key, variant.weight) for variant in spec.variants]
    return [(key, share / 100) for key, share in points(item, spec, now).items()]


def phase_number(item: ExperimentItem) -> int:
    return int((item.bandit or {}).get("phase", 0))


def phase_starts(item: ExperimentItem) -> list[datetime]:
    """When each phase after the first began."""
    return [datetime.fromtimestamp(int(moment), UTC) for moment in (item.bandit or {}).get("starts", [])]


def phase_at(starts: Sequence[datetime], moment: datetime) -> int:
    """The phase a moment falls in, given phase_starts: 0 before the first reweighting."""
    return bisect_right(starts, moment)


def frozen(item: ExperimentItem) -> list[str]:
    return list((item.bandit or {}).get("frozen", []))


def may_differ_locally(item: ExperimentItem, spec: ExperimentFields) -> bool:
    """Whether an exposed user's stored variant may differ from what the current shares give their
    hash: once a bandit has moved its shares, local evaluation must ask the server (PostHog's
    ensure_experience_continuity) for the users it has not seen."""
    return allocation_of(spec) is not None and phase_number(item) > 0


def state(item: ExperimentItem, spec: ExperimentFields) -> BanditState | None:
    """The API's view of a launched bandit's current phase (None: fixed weights, or a draft)."""
    if allocation_of(spec) is None or item.started_at is None:
        return None
    starts = phase_starts(item)
    since = starts[-1] if starts else item.started_at
    return {
        "phase": phase_number(item),
        "since": since.isoformat(),
        "weights": {key: share / WHOLE for key, share in points(item, spec).items()},
        "frozen": frozen(item),
    }


def next_state(
    item: ExperimentItem,
    spec: ExperimentFields,
    new_points: Mapping[str, int],
    begins: datetime,
    frozen_variants: Sequence[str],
) -> dict[str, Any]:
    """The item's `bandit` once a reweighting starts the next phase at `begins` with `new_points`."""
    current = item.bandit or {}
    return {
        "phase": phase_number(item) + 1,
        "weights": dict(new_points),
        "previous": points(item, spec),
        "starts": [*current.get("starts", []), math.ceil(begins.timestamp())],
        "frozen": list(frozen_variants),
        **({"next_run": current["next_run"]} if "next_run" in current else {}),
    }
