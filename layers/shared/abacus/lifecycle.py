"""Experiment stages and the transitions between them (draft -> running -> complete)."""

from abacus.errors import Conflict

DRAFT, RUNNING, COMPLETE = "draft", "running", "complete"

# action: (the stage it starts from, the stage it leads to)
TRANSITIONS = {
    "launch": (DRAFT, RUNNING),
    "stop": (RUNNING, COMPLETE),
}


def next_status(current: str, action: str) -> str:
    """The stage `action` leads to from `current`; Conflict (409) saying why when not allowed."""
    start, end = TRANSITIONS[action]
    if current != start:
        raise Conflict(f"cannot {action} an experiment that is {current}: only a {start} experiment can be")
    return end
