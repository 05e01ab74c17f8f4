"""The request body of POST /assign (validated at the edge by Powertools, with pydantic), and the
user it names, whom events name too."""

from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from abacus.experiments.metrics_spec import Scalar, Strict
from abacus.experiments.spec import Slug

DistinctId = Annotated[str, Field(min_length=1, max_length=200)]


Properties = Annotated[dict[Annotated[str, Field(max_length=200)], Scalar | list[Scalar] | None], Field(max_length=200)]


class AssignRequest(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"token": "phc_project_token", "distinct_id": "user-42", "properties": {"plan": "pro"}}]
        }
    )
    token: Annotated[str, Field(min_length=1, max_length=200)]
    distinct_id: DistinctId
    anon_distinct_id: DistinctId | None = Field(
        default=None,
        alias="$anon_distinct_id",
        description="The id the user had before signing in: joined to `distinct_id` into one person first, "
        "who keeps the variant shown to either (as posthog-js sends it after identify)",
    )
    expose: StrictBool | None = Field(
        default=None,
        description="Record the user's first exposure to each experiment named in `experiments` (default: true "
        "when `experiments` is given, false without it). A request without `experiments` answers every running "
        "experiment's variant but exposes the user to none: exposing everyone to every experiment would dilute "
        "them all, so `expose: true` without `experiments` is refused (422 naming `experiments`).",
    )
    experiments: Annotated[list[Slug] | None, Field(max_length=100, validate_default=True)] = None
    properties: Properties = {}
    groups: Annotated[
        dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(min_length=1, max_length=200)] | int],
        Field(
            max_length=20,
            description='The user\'s group of each type ({"company": "acme"}): a group '
            "experiment randomises and counts by its type's group, as PostHog's group flags",
        ),
    ] = {}
    group_properties: Annotated[
        dict[Annotated[str, Field(max_length=64)], Properties],
        Field(max_length=20, description="Per group type, the group's properties a group experiment targets"),
    ] = {}
    payloads: StrictBool = Field(
        default=False, description="Also answer each experiment's variant payload (`payloads`: key to payload or null)"
    )

    @field_validator("experiments")
    @classmethod
    def exposure_names_its_experiments(cls, experiments: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if experiments is None and info.data.get("expose"):
            raise ValueError(
                "name the experiments the user is shown to expose them (expose: true); without the list every "
                "running experiment would count an exposure the app never showed, diluting them all. Send "
                "experiments: [...], or leave expose out to read variants without exposing"
            )
        return experiments

    @property
    def exposes(self) -> bool:
        """Whether the request records exposures: by default only when it names its experiments."""
        return self.expose if self.expose is not None else self.experiments is not None
