"""PostHog's feature-flag API (`POST /flags/?v=4`, and `/decide/` for older SDKs), answered from
Abacus experiments, so that `Posthog(project_api_key=token, host=api_url).get_feature_flag(key,
distinct_id)` returns the user's variant.

Every experiment of the project but archived ones is evaluated as a flag of the same key, for the
user's person (identity/: `$anon_distinct_id`, sent after identify, joins that id first), with the
person's stored properties and the request's `person_properties` over them as targeting
properties. No exposure is recorded here: the PostHog SDK reports one itself, as a
`$feature_flag_called` event, when the app uses the flag.
"""

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from abacus.assignment import sticky
from abacus.assignment.spec import AssignRequest, DistinctId
from abacus.core.answers import DecideAnswer, Flag, FlagsAnswer
from abacus.experiments import definitions, lifecycle, units
from abacus.experiments.metrics_spec import Scalar
from abacus.experiments.spec import payload_text


class FlagsRequest(BaseModel):
    """The part of PostHog's /flags request body that Abacus reads; the rest is ignored."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"api_key": "phc_project_token", "distinct_id": "user-42"}]},
    )
    api_key: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    token: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    distinct_id: DistinctId
    # posthog-js sends it on the reload after identify: the id joins `distinct_id` into one person.
    anon_distinct_id: DistinctId | None = Field(default=None, alias="$anon_distinct_id")
    person_properties: dict[str, Any] = {}
    # The user's group of each type ({"company": "acme"}, after posthog.group()) and their properties.
    groups: dict[str, Any] = {}
    group_properties: dict[str, Any] = {}
    flag_keys_to_evaluate: list[str] | None = None

    @property
    def project_token(self) -> str | None:
        return self.api_key or self.token

    @property
    def token_field(self) -> str:
        """The field the project token came in, for errors to name."""
        return "api_key" if self.api_key else "token"


def evaluate(project_id: str, request: FlagsRequest, now: datetime) -> dict[str, str | None]:
    """{flag key: variant, or None when the user is not in it}."""
    known = definitions.project_experiments(project_id)
    wanted = request.flag_keys_to_evaluate
    properties = targetable(request.person_properties)
    groups = named_groups(request.groups)
    group_properties = {
        group_type: targetable(given)
        for group_type, given in list(request.group_properties.items())[:MAX_GROUP_TYPES]
        if len(group_type) <= MAX_GROUP_TYPE_LENGTH and isinstance(given, dict)
    }
    assign_request = AssignRequest(
        token=request.project_token or "-",
        distinct_id=request.distinct_id,
        properties=properties,
        expose=False,
        groups=groups,
        group_properties=group_properties,
    )
    person = sticky.person_of(project_id, request.distinct_id, request.anon_distinct_id, now)
    return {
        key: sticky.variant_for(project_id, item, assign_request, now, person)
        for key, item in known.items()
        if item.status != lifecycle.ARCHIVED and (wanted is None or key in wanted)
    }


# What /assign takes (assignment/spec.py): beyond it, a flags request's extra is ignored, as PostHog
# ignores what it cannot use, rather than refused (the SDKs send whatever the app set).
MAX_PROPERTIES, MAX_PROPERTY_NAME = 200, 200
MAX_GROUP_TYPES, MAX_GROUP_TYPE_LENGTH = 20, 64


def targetable(given: dict[str, Any]) -> dict[str, Scalar | list[Scalar] | None]:
    """The properties targeting can test: flat scalars, named in at most MAX_PROPERTY_NAME
    characters, the first MAX_PROPERTIES of them."""
    kept = {
        name: value
        for name, value in given.items()
        if len(name) <= MAX_PROPERTY_NAME and isinstance(value, str | int | float | bool | type(None))
    }
    return dict(list(kept.items())[:MAX_PROPERTIES])


def named_groups(given: dict[str, Any]) -> dict[str, str | int]:
    """{group type: group key} of the groups a request names usably (units.group_key), the first
    MAX_GROUP_TYPES of them."""
    found: dict[str, str | int] = {
        group_type: key
        for group_type in given
        if len(group_type) <= MAX_GROUP_TYPE_LENGTH and (key := units.group_key(given, group_type)) is not None
    }
    return dict(list(found.items())[:MAX_GROUP_TYPES])


def flags_v4(values: dict[str, str | None], versions: dict[str, int], payloads: dict[str, JsonValue]) -> FlagsAnswer:
    """The /flags?v=4 answer: one typed record per flag, its variant's payload as PostHog sends it
    (a JSON document in a string)."""
    records: dict[str, Flag] = {}
    for key, variant in values.items():
        matched = variant is not None
        payload = payloads.get(key)
        records[key] = {
            "key": key,
            "enabled": matched,
            "variant": variant,
            "value": variant if variant is not None else False,
            "failed": False,
            "reason": {
                "code": "condition_match" if matched else "no_condition_match",
                "description": "in the experiment" if matched else "not in the experiment",
                "condition_index": 0 if matched else None,
            },
            "metadata": {
                "id": None,
                "version": versions.get(key),
                "payload": payload_text(payload) if payload is not None else None,
                "has_experiment": True,
            },
        }
    return {"flags": records, "errorsWhileComputingFlags": False, "requestId": str(uuid.uuid4())}


def decide(values: dict[str, str | None], payloads: dict[str, JsonValue]) -> DecideAnswer:
    """The older /decide answer: {"featureFlags": {key: variant or false}, "featureFlagPayloads"}."""
    return {
        "featureFlags": {key: variant if variant is not None else False for key, variant in values.items()},
        "featureFlagPayloads": {key: payload_text(payload) for key, payload in payloads.items() if payload is not None},
        "errorsWhileComputingFlags": False,
    }
