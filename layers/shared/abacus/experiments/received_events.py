"""Whether each metric's event arrived during the experiment's run. A metric whose event never
arrives (`purchse` for `purchase`, `Signup` where the app sends `signup`) counts 0 conversions
and leaves the verdict at keep_running, which nothing else would flag: the results, the report
and the live check say so, naming the closest event names that did arrive.

What arrived is the project's received event names (ingestion/received.py records them, with the
days each was first and last seen: storage/event_names.py). At day resolution, UTC: an event
last seen on the launch day counts as arrived even if it came before the launch that day, so a
warning may be missed that day, never given wrongly. Names are recorded from the version that
introduced them on (issue 31): an experiment launched before it is warned of an event that
arrived only before the upgrade, until it arrives again.
"""

import difflib
from collections.abc import Mapping
from datetime import UTC, date, datetime

from abacus.core.documents import MetricWarning
from abacus.experiments import definitions
from abacus.experiments.metrics_spec import MetricSpec
from abacus.experiments.spec import ExperimentFields
from abacus.storage import event_names
from abacus.storage.event_names import Seen
from abacus.storage.experiments import ExperimentItem

MAX_SUGGESTIONS = 3
CLOSENESS = 0.6  # difflib's default cutoff: `purchse` and `purchase` are 0.93, `signup` and `login` 0.36


def metric_events(spec: ExperimentFields) -> list[tuple[str, str]]:
    """(field, event name) of every event the experiment's metrics count, as the API names the
    field: the primary's, each secondary's and guardrail's, a ratio's parts' and a funnel's steps'."""
    named: list[tuple[str, MetricSpec]] = [("primary_metric", spec.primary_metric)]
    named += [(f"secondary_metrics[{index}]", metric) for index, metric in enumerate(spec.secondary_metrics)]
    named += [(f"guardrail_metrics[{index}]", metric) for index, metric in enumerate(spec.guardrail_metrics)]
    found = []
    for base, metric in named:
        if metric.event:
            found.append((f"{base}.event", metric.event))
        for part_name, part in (("numerator", metric.numerator), ("denominator", metric.denominator)):
            if part is not None and part.event:
                found.append((f"{base}.{part_name}.event", part.event))
        found += [(f"{base}.steps[{index}].event", step.event) for index, step in enumerate(metric.steps or [])]
    return found


def closest(event: str, received: list[str]) -> list[str]:
    """The received names closest to `event`: those equal but for case first, then difflib's
    closest of the rest (compared case-insensitively), at most MAX_SUGGESTIONS."""
    by_folded: dict[str, list[str]] = {}
    for name in received:
        by_folded.setdefault(name.casefold(), []).append(name)
    folded = event.casefold()
    close = difflib.get_close_matches(folded, list(by_folded), n=MAX_SUGGESTIONS, cutoff=CLOSENESS)
    ordered = sorted(by_folded.get(folded, []), key=lambda name: _likeness(event, name), reverse=True)
    for match in close:
        ordered += sorted(
            (name for name in by_folded[match] if name not in ordered),
            key=lambda name: _likeness(event, name),
            reverse=True,
        )
    return ordered[:MAX_SUGGESTIONS]


def _likeness(event: str, name: str) -> float:
    return difflib.SequenceMatcher(None, event, name).ratio()


def warnings(
    spec: ExperimentFields, started_at: datetime | None, stopped_at: datetime | None, received: Mapping[str, Seen]
) -> list[MetricWarning]:
    """A warning for each metric event not received from the launch day to the stop's (or now),
    with the closest names that were; none before the launch."""
    if started_at is None:
        return []
    launch = started_at.astimezone(UTC).date()
    stop = stopped_at.astimezone(UTC).date() if stopped_at else date.max
    arrived = {name: seen for name, seen in received.items() if seen.last >= launch and seen.first <= stop}
    when = f"since the launch ({launch.isoformat()})"
    if stopped_at is not None:
        when = f"during its run ({launch.isoformat()} to {stop.isoformat()})"
    # The most recently seen first among equally close names.
    candidates = sorted(arrived, key=lambda name: (arrived[name].last, name), reverse=True)
    found: list[MetricWarning] = []
    for field, event in metric_events(spec):
        if event in arrived:
            continue
        suggestions = closest(event, candidates)
        said = (
            "received: " + ", ".join(f"`{name}`" for name in suggestions)
            if suggestions
            else "no name received then is close to it"
        )
        message = f"no `{event}` event received {when}; {said}"
        found.append({"field": field, "event": event, "message": message, "suggestions": suggestions})
    return found


def experiment_warnings(item: ExperimentItem) -> list[MetricWarning]:
    """The experiment's warnings, as of now (one BatchGetItem of the project's names; none for an
    experiment never launched, without reading)."""
    if item.started_at is None:
        return []
    received = event_names.read(item.project_id, event_names.EVENTS)
    return warnings(definitions.definition(item), item.started_at, item.stopped_at, received)
