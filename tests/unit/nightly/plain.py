"""Plain stand-ins for what the pure nightly modules read from storage (abacus.nightly.values'
Event and Stored, abacus.nightly.snapshot's Timeline and Stored): no PynamoDB, no moto."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from abacus.experiments.metrics_spec import MetricSpec, components
from abacus.nightly import values


@dataclass(frozen=True)
class Event:
    event: str
    timestamp: datetime
    properties: dict[str, Any] = field(default_factory=dict)

    def event_properties(self) -> dict[str, Any]:
        return self.properties


@dataclass(frozen=True)
class Stored:
    """A user as an earlier night left them (the fields AssignmentItem has)."""

    distinct_id: str = "u"
    exposed_at: datetime | None = None
    metric_values: list[float] | None = None
    pre_values: list[float] | None = None
    values_exposed_at: datetime | None = None
    values_cutoff: datetime | None = None
    values_metrics: str | None = None
    values_pending: bool | None = None


@dataclass(frozen=True)
class Timeline:
    status: str = "running"
    started_at: datetime | None = None
    stopped_at: datetime | None = None


@dataclass(frozen=True)
class StoredSnapshot:
    date: str
    cutoff: datetime
    computed_at: datetime
    final: bool
    analysis: Any


def run(metrics: list[MetricSpec], cutoff: datetime, pre_days: int = 0, **changes: Any) -> values.Run:
    """A run over the metrics' components at `cutoff` (nothing stored before, no active user)."""
    made = values.Run("p", components(metrics), cutoff, values.metrics_key(metrics, pre_days), set(), pre_days, None,
                      cutoff)  # fmt: skip
    return made._replace(**changes)


def computed(
    metrics: list[MetricSpec], exposed: datetime, events: list[Event], cutoff: datetime, pre_days: int = 0
) -> tuple[values.UserValues, bool]:
    """A user's values of each component computed from `events` alone (nothing stored), and pending."""
    this = run(metrics, cutoff, pre_days)
    nothing = values.Final([None] * len(this.metrics), None)
    return values.computed_values(this, exposed, events, nothing)
