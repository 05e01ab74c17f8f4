"""The console's Creation form (issue 17): its fields as an experiment, checked by the API's own
validation (schemas.ExperimentCreate, definitions.check_windows), each error put on the field it
names; and the plan the fields make, as they change. Pure: tested without a request.

Simple fields are inputs of their own; targeting and the secondary and guardrail metrics, which
nest, are JSON in a text area, as the API takes them. The layer, the holdout and the automation
are a few inputs each; the schedule's times are datetime-local inputs read as UTC (the browser's
own time zone is not sent with them, so the form says UTC)."""

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from abacus.core.answers import FieldError
from abacus.core.errors import Invalid, field_errors
from abacus.experiments import definitions, plans
from abacus.experiments.spec import AutomationSpec, ExperimentCreate, ExperimentPatch
from abacus.storage.event_names import Seen

VARIANT_ROWS = 6
JSON_FIELDS = ("targeting", "secondary_metrics", "guardrail_metrics")
# The primary metric's form fields, by the metric's own field names.
METRIC_FIELDS = {"event": "metric_event", "kind": "metric_kind", "property": "metric_property"}
METRIC_NUMBERS = {"window_days": "metric_window_days", "baseline": "metric_baseline"}
SCHEDULE_FIELDS = ("starts_at", "ends_at")
# The automation's form fields, by its own field names (the rules are checkboxes).
AUTOMATION_RULES = {"ship": "automation_ship", "no_effect": "automation_no_effect", "srm": "automation_srm"}
AUTOMATION_FIELDS = {**AUTOMATION_RULES, "minimum_days": "automation_minimum_days"}
LAYER_FIELDS = {"key": "layer_key", "share": "layer_share"}
HOLDOUT_FIELDS = {"holdout": "holdout", "layer": "holdout_layer"}


class Checked(NamedTuple):
    fields: dict[str, Any]  # the experiment as the API takes it (what could be read of the form)
    errors: dict[str, str]  # form field: what is wrong, in the API's words
    plan: str  # the plan in a sentence (or what it needs)


def _number(form: Mapping[str, str], name: str, errors: dict[str, str], whole: bool = False) -> float | int | None:
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        errors[name] = f"{name}: '{text}' is not a number"
        return None
    if whole and value.is_integer():
        return int(value)
    return value


def _json(form: Mapping[str, str], name: str, errors: dict[str, str]) -> Any:
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        errors[name] = f"{name}: not JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        return None


def _overrides(form: Mapping[str, str], errors: dict[str, str]) -> dict[str, str]:
    """Lines of `distinct_id variant`."""
    found: dict[str, str] = {}
    for number, line in enumerate(form.get("overrides", "").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            errors["overrides"] = f"overrides: line {number} is not 'user-id variant'"
            continue
        found[parts[0].strip()] = parts[1]
    return found


def _variants(form: Mapping[str, str], errors: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for row in range(VARIANT_ROWS):
        key = form.get(f"variant_key_{row}", "").strip()
        weight = _number(form, f"variant_weight_{row}", errors, whole=True)
        payload = _json(form, f"variant_payload_{row}", errors)
        if key or weight is not None:
            variant = {"key": key, "weight": weight if weight is not None else 0}
            rows.append(variant | {"payload": payload} if payload is not None else variant)
    return rows


def _moment(form: Mapping[str, str], name: str, errors: dict[str, str]) -> str | None:
    """A datetime-local input's value (2026-11-25T09:30, seconds optional), read as UTC."""
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        errors[name] = f"{name}: '{text}' is not a date and time (YYYY-MM-DDTHH:MM, UTC)"
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def _automation(form: Mapping[str, str], errors: dict[str, str]) -> dict[str, Any]:
    automation: dict[str, Any] = {rule: bool(form.get(field)) for rule, field in AUTOMATION_RULES.items()}
    days = _number(form, AUTOMATION_FIELDS["minimum_days"], errors, whole=True)
    if days is not None:
        automation["minimum_days"] = days
    return automation


def _layer(form: Mapping[str, str], errors: dict[str, str]) -> dict[str, Any] | None:
    """The layer, when its key is given (the share alone is refused naming layer_key)."""
    key = form.get(LAYER_FIELDS["key"], "").strip()
    share = _number(form, LAYER_FIELDS["share"], errors, whole=True)
    if not key and share is None:
        return None
    if not key:
        errors[LAYER_FIELDS["key"]] = "layer.key: the layer's key, with its share (or neither)"
        return None
    return {"key": key, "share": share}


def _holdout(form: Mapping[str, str]) -> dict[str, Any] | None:
    if not form.get(HOLDOUT_FIELDS["holdout"]):
        return None
    return {"layer": form.get(HOLDOUT_FIELDS["layer"], "").strip() or None}


def _primary_metric(form: Mapping[str, str], errors: dict[str, str]) -> dict[str, Any]:
    metric: dict[str, Any] = {name: form[field].strip() for name, field in METRIC_FIELDS.items() if form.get(field)}
    if metric.get("kind") != "sum":
        metric.pop("property", None)  # the field stays on the form for a switch back to sum
    for name, field in METRIC_NUMBERS.items():
        value = _number(form, field, errors, whole=name == "window_days")
        if value is not None:
            metric[name] = value
    return metric


def read(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The experiment the form describes, and the fields that could not even be read."""
    errors: dict[str, str] = {}
    fields: dict[str, Any] = {name: form.get(name, "").strip() for name in ("key", "name", "hypothesis")}
    fields["description"] = form.get("description", "").strip()
    fields["variants"] = _variants(form, errors)
    rollout = _number(form, "rollout_percentage", errors)
    if rollout is not None:
        fields["rollout_percentage"] = rollout
    fields["overrides"] = _overrides(form, errors)
    fields["group_type"] = form.get("group_type", "").strip() or None
    fields["layer"] = _layer(form, errors)
    fields["holdout"] = _holdout(form)
    fields["primary_metric"] = _primary_metric(form, errors)
    mde = _number(form, "minimum_detectable_effect", errors)
    if mde is not None:
        fields["minimum_detectable_effect"] = mde / 100  # the form says percent
    for name in JSON_FIELDS:
        value = _json(form, name, errors)
        fields[name] = value if value is not None else []
    for name in SCHEDULE_FIELDS:
        fields[name] = _moment(form, name, errors)
    fields["automation"] = _automation(form, errors)
    return fields, errors


def form_field(api_field: str) -> str:
    """The form field an API error names (`variants[1].weight` is variant_weight_1)."""
    head = api_field.split(".", 1)[0].split("[", 1)[0]
    if head == "variants":
        index, _, rest = api_field.removeprefix("variants[").partition("]")
        name = rest.removeprefix(".")
        return f"variant_{name}_{index}" if index.isdigit() and name in ("key", "weight", "payload") else "variants"
    if head == "primary_metric":
        name = api_field.removeprefix("primary_metric.")
        return METRIC_FIELDS.get(name) or METRIC_NUMBERS.get(name) or "metric_event"
    if head == "minimum_detectable_effect":
        return "minimum_detectable_effect"
    part = api_field.partition(".")[2]
    if head == "layer":
        return LAYER_FIELDS.get(part, LAYER_FIELDS["key"])
    if head == "holdout":
        return HOLDOUT_FIELDS.get(part, HOLDOUT_FIELDS["holdout"])
    if head == "automation":
        return AUTOMATION_FIELDS.get(part, AUTOMATION_FIELDS["minimum_days"])
    return head or "key"


def check(form: Mapping[str, str], key: str | None = None, now: datetime | None = None) -> Checked:
    """The form's experiment checked as POST /experiments would check it (editing a draft: with
    its `key`, which stays) at `now` (default: now), and the plan it makes at the daily users the
    form says."""
    fields, errors = read(form)
    if key is not None:
        fields["key"] = key
    found: list[FieldError] = []
    try:
        spec = ExperimentCreate.model_validate(fields)
        definitions.check_windows(spec)
        definitions.check_schedule(spec, now or datetime.now(UTC))
    except ValidationError as invalid:
        found = field_errors(invalid.errors())
    except Invalid as invalid:
        found = invalid.errors
    for error in found:
        errors.setdefault(form_field(error["field"]), f"{error['field']}: {error['message']}")
    return Checked(fields, errors, plan_sentence(fields, form.get("daily_users")))


def check_changes(form: Mapping[str, str], editable: set[str], now: datetime | None = None) -> Checked:
    """The form's `editable` fields (those a launched experiment's status lets change, lifecycle.py)
    checked as PATCH /experiments/{key} checks them: the others are shown read-only, not sent. A
    scheduled stop must be ahead of `now` (default: now)."""
    read_fields, errors = read(form)
    fields = {name: value for name, value in read_fields.items() if name in editable}
    errors = {name: error for name, error in errors.items() if name in form_fields_of(editable)}
    try:
        patch = ExperimentPatch.model_validate(fields)
    except ValidationError as invalid:
        for error in field_errors(invalid.errors()):
            errors.setdefault(form_field(error["field"]), f"{error['field']}: {error['message']}")
        return Checked(fields, errors, "")
    ends_at: datetime | None = patch.ends_at if "ends_at" in patch.model_fields_set else None
    if ends_at is not None and ends_at <= (now or datetime.now(UTC)):
        errors.setdefault("ends_at", f"ends_at: {ends_at.isoformat()} has passed: a time ahead, or stop it now")
    return Checked(fields, errors, "")


def form_fields_of(api_fields: set[str]) -> set[str]:
    """The form's fields that show these API fields."""
    shown: set[str] = set()
    for name in api_fields:
        if name == "variants":
            shown |= {f"variant_{part}_{row}" for part in ("key", "weight", "payload") for row in range(VARIANT_ROWS)}
        elif name == "primary_metric":
            shown |= {*METRIC_FIELDS.values(), *METRIC_NUMBERS.values()}
        elif name in ("layer", "holdout", "automation"):
            shown |= set(
                {"layer": LAYER_FIELDS, "holdout": HOLDOUT_FIELDS, "automation": AUTOMATION_FIELDS}[name].values()
            )
        else:
            shown.add(name)
    return shown


def plan_sentence(fields: Mapping[str, Any], daily_users: str | None) -> str:
    """Users needed per variant for the minimum detectable effect, and days at the traffic told."""
    try:
        spec = ExperimentCreate.model_validate({**fields, "key": "plan"})
    except ValidationError:
        return "The plan shows once the variants and the primary metric are valid."
    fixed = plans.fixed_horizon_exposures(spec.primary_metric, spec.minimum_detectable_effect, len(spec.variants), None)
    needed = plans.sequential_exposures(fixed)
    if needed is None:
        return (
            "Give the primary metric a baseline (its rate today, or its mean and standard deviation) to plan the "
            "sample; without one the plan is made from the control's first results."
        )
    sentence = (
        f"{needed:,} exposed users per variant to detect a {spec.minimum_detectable_effect:.0%} relative change "
        f"(5% false positives, 80% power, {len(spec.variants)} variants)."
    )
    try:
        daily = float(daily_users or "")
    except ValueError:
        return sentence + " Say how many users a day reach the flag to see how many days that takes."
    smallest = min(v.weight for v in spec.variants if v.weight > 0) / 100 * spec.rollout_percentage / 100
    if daily <= 0 or smallest <= 0:
        return sentence
    days = math.ceil(needed / (daily * smallest))
    return sentence + (
        f" At {daily:,.0f} users a day, the smallest variant ({smallest:.0%} of them) gets there in about "
        f"{days:,} day{'s' if days != 1 else ''}."
    )


def form_values(experiment: Mapping[str, Any]) -> dict[str, str]:
    """An experiment's fields as the form's values (editing a draft)."""
    values = {name: str(experiment.get(name) or "") for name in ("key", "name", "description", "hypothesis")}
    for row, variant in enumerate(experiment.get("variants", [])[:VARIANT_ROWS]):
        values[f"variant_key_{row}"], values[f"variant_weight_{row}"] = variant["key"], str(variant["weight"])
        if variant.get("payload") is not None:
            values[f"variant_payload_{row}"] = json.dumps(variant["payload"], indent=1, ensure_ascii=False)
    values["rollout_percentage"] = f"{experiment.get('rollout_percentage', 100):g}"
    values["group_type"] = experiment.get("group_type") or ""
    values["overrides"] = "\n".join(f"{user} {variant}" for user, variant in experiment.get("overrides", {}).items())
    metric = experiment.get("primary_metric", {})
    for name, field in {**METRIC_FIELDS, **METRIC_NUMBERS}.items():
        if metric.get(name) is not None:
            values[field] = f"{metric[name]:g}" if isinstance(metric[name], float) else str(metric[name])
    values["minimum_detectable_effect"] = f"{experiment.get('minimum_detectable_effect', 0.05) * 100:g}"
    for name in JSON_FIELDS:
        values[name] = json.dumps(experiment[name], indent=1) if experiment.get(name) else ""
    return values | _schedule_values(experiment)


def _schedule_values(experiment: Mapping[str, Any]) -> dict[str, str]:
    """The form's values of the schedule, the automation, the layer and the holdout."""
    values = {}
    for name in SCHEDULE_FIELDS:  # UTC, to the second, as the datetime-local input takes it
        moment = experiment.get(name)
        values[name] = datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if moment else ""
    automation = experiment.get("automation") or {}
    values |= {field: "on" for rule, field in AUTOMATION_RULES.items() if automation.get(rule)}
    values[AUTOMATION_FIELDS["minimum_days"]] = str(automation.get("minimum_days", AutomationSpec().minimum_days))
    if layer := experiment.get("layer"):
        values[LAYER_FIELDS["key"]], values[LAYER_FIELDS["share"]] = layer["key"], str(layer["share"])
    if (holdout := experiment.get("holdout")) is not None:
        values[HOLDOUT_FIELDS["holdout"]], values[HOLDOUT_FIELDS["layer"]] = "on", holdout.get("layer") or ""
    return values


MAX_SUGGESTED_EVENTS = 200


def suggested_events(received: Mapping[str, Seen]) -> list[str]:
    """The event names the metric fields suggest (a datalist): the project's received names, the
    most recently seen first, at most MAX_SUGGESTED_EVENTS."""
    latest = sorted(received.items(), key=lambda pair: (-pair[1].last.toordinal(), pair[0]))
    return [name for name, _ in latest[:MAX_SUGGESTED_EVENTS]]


class TrafficSeen(NamedTuple):
    daily_users: int  # users a day who reached the flag: exposures a day over the rollout's share
    experiment: str


def traffic_seen(latest: Sequence[tuple[Mapping[str, Any], float, int]]) -> TrafficSeen | None:
    """The traffic the project's experiments have seen, from each one's latest results: (its API
    description, days its results cover, its exposures). The busiest covering a day or more."""
    rates = [
        TrafficSeen(round(exposures / days / (experiment.get("rollout_percentage", 100) / 100)), experiment["key"])
        for experiment, days, exposures in latest
        if days >= 1 and experiment.get("rollout_percentage", 100) > 0
    ]
    return max(rates, default=None)
