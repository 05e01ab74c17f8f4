"""Experiment statuses, the transitions between them, and what each status lets change.

draft -> running (launch) -> complete (stop, or ship a variant) -> archived (archive); a draft
may also be archived. Running freezes the variants, weights and metrics: only the text, the
overrides, the targeting, a wider rollout, the scheduled stop (ends_at) and the automation may
change. Complete leaves only the text.
Every refusal (409) says what to do instead.
"""

from typing import Any

from abacus.core.errors import Conflict

DRAFT, RUNNING, COMPLETE, ARCHIVED = "draft", "running", "complete", "archived"

# action: (the statuses it starts from, the status it leads to)
TRANSITIONS = {
    "launch": ((DRAFT,), RUNNING),
    "stop": ((RUNNING,), COMPLETE),
    "ship": ((RUNNING, COMPLETE), COMPLETE),
    "archive": ((DRAFT, COMPLETE), ARCHIVED),
}
TEXT_FIELDS = {"name", "description", "hypothesis"}
EDITABLE = {
    DRAFT: None,  # everything
    RUNNING: TEXT_FIELDS | {"overrides", "targeting", "rollout_percentage", "ends_at", "automation"},
    COMPLETE: TEXT_FIELDS,
    ARCHIVED: set(),
}
_ANEW = "create a new experiment (another key)"
# (action, status it is refused in): what to do instead.
NEXT_STEPS = {
    ("launch", RUNNING): "it is running already: stop it, or ship a variant, when the results say",
    ("launch", COMPLETE): f"it has run; to run it again, {_ANEW}",
    ("launch", ARCHIVED): f"it is archived; to run it again, {_ANEW}",
    ("stop", DRAFT): "it never ran: launch it first, or archive it to drop it",
    ("stop", COMPLETE): "it is stopped already: ship a variant to serve it to everyone, or archive it",
    ("stop", ARCHIVED): "it is stopped already and archived: nothing to do",
    ("ship", DRAFT): "it never ran: launch it first, and ship a variant once the results say",
    ("ship", ARCHIVED): f"nothing changes in an archived experiment; to serve another variant, {_ANEW}",
    ("archive", RUNNING): "stop it first (or ship a variant), then archive it",
    ("archive", ARCHIVED): "it is archived already: nothing to do",
}
_CHANGE_INSTEAD = {
    RUNNING: f"only name, description, hypothesis, overrides, targeting, a wider rollout, ends_at and automation "
    f"may change while it runs; to test with other ones, stop it and {_ANEW}",
    COMPLETE: f"only name, description and hypothesis may change once it is complete; to run it again, {_ANEW}",
    ARCHIVED: f"nothing changes any more in an archived experiment; to run it again, {_ANEW}",
}


def _a(status: str) -> str:
    return f"an {status}" if status[0] in "aeiou" else f"a {status}"


def next_status(current: str, action: str) -> str:
    """The status `action` leads to from `current`; Conflict (409) saying what to do instead."""
    starts, end = TRANSITIONS[action]
    if current not in starts:
        raise Conflict(f"cannot {action} {_a(current)} experiment: {NEXT_STEPS[action, current]}")
    return end


def check_changes(status: str, changes: dict[str, tuple[Any, Any]]) -> None:
    """Conflict (409) naming every field the status does not let change (`field` the first), and
    what to do instead. `changes` maps a field to its (old, new) values."""
    editable = EDITABLE[status]
    frozen = [field for field in changes if editable is not None and field not in editable]
    if frozen:
        raise Conflict(
            f"cannot change {', '.join(frozen)} of {_a(status)} experiment: {_CHANGE_INSTEAD[status]}", field=frozen[0]
        )
    if status == RUNNING and "rollout_percentage" in changes:
        old, new = changes["rollout_percentage"]
        if new < old:
            raise Conflict(
                f"a running experiment's rollout may only widen (users in it would drop out): keep it at {old:g} "
                f"or more, or stop the experiment and {_ANEW}",
                field="rollout_percentage",
            )
