"""Experiment stages, the transitions between them, and what each stage lets change.

draft -> running (launch) -> complete (stop, or ship a variant) -> archived (archive); a draft
may also be archived. Running freezes the variants, weights and metrics: only the text, the
overrides, the targeting and a wider rollout may change. Complete leaves only the text.
"""

from typing import Any

from abacus.errors import Conflict

DRAFT, RUNNING, COMPLETE, ARCHIVED = "draft", "running", "complete", "archived"

# action: (the stages it starts from, the stage it leads to)
TRANSITIONS = {
    "launch": ((DRAFT,), RUNNING),
    "stop": ((RUNNING,), COMPLETE),
    "ship": ((RUNNING, COMPLETE), COMPLETE),
    "archive": ((DRAFT, COMPLETE), ARCHIVED),
}
TEXT_FIELDS = {"name", "description", "hypothesis"}
EDITABLE = {
    DRAFT: None,  # everything
    RUNNING: TEXT_FIELDS | {"overrides", "targeting", "rollout_percentage"},
    COMPLETE: TEXT_FIELDS,
    ARCHIVED: set(),
}


def next_status(current: str, action: str) -> str:
    """The stage `action` leads to from `current`; Conflict (409) saying why when not allowed."""
    starts, end = TRANSITIONS[action]
    if current not in starts:
        allowed = " or ".join(starts)
        raise Conflict(f"cannot {action} an experiment that is {current}: only a {allowed} experiment can be")
    return end


def check_changes(status: str, changes: dict[str, tuple[Any, Any]]) -> None:
    """Conflict (409) naming the first field that the stage does not let change.
    `changes` maps a field to its (old, new) values."""
    editable = EDITABLE[status]
    for field, (old, new) in changes.items():
        if editable is not None and field not in editable:
            raise Conflict(f"cannot change {field} of a {status} experiment", field=field)
        if status == RUNNING and field == "rollout_percentage" and new < old:
            raise Conflict("a running experiment's rollout may only widen", field=field)
