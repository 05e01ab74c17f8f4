import pytest

from abacus.core.errors import Conflict
from abacus.experiments import lifecycle


def test_allowed_transitions():
    assert lifecycle.next_status("draft", "launch") == "running"
    assert lifecycle.next_status("running", "stop") == "complete"


# Every refused transition, and the next step its answer names.
REFUSED = [
    ("running", "launch", "it is running already: stop it, or ship a variant"),
    ("complete", "launch", "create a new experiment"),
    ("archived", "launch", "create a new experiment"),
    ("draft", "stop", "launch it first"),
    ("complete", "stop", "ship a variant"),
    ("archived", "stop", "nothing to do"),
    ("draft", "ship", "launch it first"),
    ("archived", "ship", "create a new experiment"),
    ("running", "archive", "stop it first"),
    ("archived", "archive", "nothing to do"),
]


def test_every_refused_transition_is_listed():
    refused = {
        (s, a) for a, (starts, _) in lifecycle.TRANSITIONS.items() for s in lifecycle.EDITABLE if s not in starts
    }
    assert refused == {(status, action) for status, action, _ in REFUSED}


@pytest.mark.parametrize(("current", "action", "next_step"), REFUSED)
def test_refused_transitions_say_what_to_do_next(current, action, next_step):
    article = "an" if current[0] in "aeiou" else "a"
    with pytest.raises(Conflict) as refused:
        lifecycle.next_status(current, action)
    assert refused.value.message.startswith(f"cannot {action} {article} {current} experiment: ")
    assert next_step in refused.value.message


def test_refused_changes_name_every_field_and_what_to_do_instead():
    with pytest.raises(Conflict) as refused:
        lifecycle.check_changes("running", {"name": ("a", "b"), "variants": ([], [1]), "cuped": (True, False)})
    assert refused.value.field == "variants"
    assert refused.value.message.startswith("cannot change variants, cuped of a running experiment")
    assert "create a new experiment" in refused.value.message
    with pytest.raises(Conflict) as refused:
        lifecycle.check_changes("running", {"rollout_percentage": (60, 10)})
    assert "keep it at 60 or more" in refused.value.message
    with pytest.raises(Conflict) as refused:
        lifecycle.check_changes("complete", {"targeting": ([], [{}])})
    assert "only name, description and hypothesis" in refused.value.message
    with pytest.raises(Conflict) as refused:
        lifecycle.check_changes("archived", {"name": ("a", "b")})
    assert "nothing changes any more" in refused.value.message
