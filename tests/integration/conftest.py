"""What the integration tests share beyond tests/conftest.py."""

import pytest

# A recompute waits RECOMPUTE_WAIT_SECONDS for its run, then answers 202 pending. Here the run's
# units are worked in this very process, one at a time (Lambda works them in parallel, each
# environment a process of its own): on a loaded machine a run of a handful of users took longer
# than those 20 s, and a test reading the snapshot from the answer got 202 (test_holdouts, under
# pytest -n 2 beside the other sessions). Handlers invoked here wait for the run as long as
# `invoke` waits for the queue's work; test_recompute_progress.py tests the real wait and its 202.
IN_PROCESS_RECOMPUTE_WAIT_S = 300.0


@pytest.fixture(autouse=True)
def recomputes_wait_for_the_in_process_worker(monkeypatch):
    from abacus.results import snapshots

    monkeypatch.setattr(snapshots, "RECOMPUTE_WAIT_SECONDS", IN_PROCESS_RECOMPUTE_WAIT_S)
