"""What counts as an exposure: during the run only, never a user with an override."""

from datetime import UTC, datetime, timedelta

from abacus.experiments import exposures
from abacus.experiments.spec import ExperimentFields
from abacus.storage.experiments import ExperimentItem

LAUNCH = datetime(2026, 11, 1, tzinfo=UTC)
SPEC = ExperimentFields.model_validate(
    {
        "name": "Checkout",
        "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
        "primary_metric": {"event": "purchase"},
        "overrides": {"qa": "b"},
    }
)


def experiment(started_at: datetime | None, stopped_at: datetime | None = None) -> ExperimentItem:
    return ExperimentItem("p", "checkout", status="running", started_at=started_at, stopped_at=stopped_at)


def test_an_exposure_counts_from_the_launch_until_the_stop():
    stop = LAUNCH + timedelta(days=3)
    running, complete = experiment(LAUNCH), experiment(LAUNCH, stop)
    assert exposures.refusal(running, SPEC, "u", LAUNCH) is None
    assert exposures.refusal(running, SPEC, "u", LAUNCH + timedelta(days=30)) is None
    assert exposures.refusal(running, SPEC, "u", LAUNCH - timedelta(microseconds=1)) == exposures.BEFORE_LAUNCH
    assert exposures.refusal(complete, SPEC, "u", stop - timedelta(microseconds=1)) is None
    assert exposures.refusal(complete, SPEC, "u", stop) == exposures.AFTER_STOP
    assert exposures.refusal(experiment(None), SPEC, "u", LAUNCH) == exposures.BEFORE_LAUNCH


def test_a_user_with_an_override_is_never_exposed():
    assert exposures.refusal(experiment(LAUNCH), SPEC, "qa", LAUNCH + timedelta(days=1)) == exposures.OVERRIDE
