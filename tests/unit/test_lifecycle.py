import pytest

from abacus import lifecycle
from abacus.errors import Conflict


def test_allowed_transitions():
    assert lifecycle.next_status("draft", "launch") == "running"
    assert lifecycle.next_status("running", "stop") == "complete"


@pytest.mark.parametrize(("current", "action"), [("running", "launch"), ("complete", "launch"), ("draft", "stop")])
def test_refused_transitions_say_why(current, action):
    with pytest.raises(Conflict, match=f"cannot {action} an experiment that is {current}"):
        lifecycle.next_status(current, action)
