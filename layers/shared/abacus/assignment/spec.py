"""The request body of POST /assign (validated at the edge by Powertools, with pydantic), and the
user it names, whom events name too."""

from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool

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
    experiments: Annotated[list[Slug] | None, Field(max_length=100)] = None
    properties: Properties = {}
    expose: StrictBool = True
    payloads: StrictBool = Field(
        default=False, description="Also answer each experiment's variant payload (`payloads`: key to payload or null)"
    )
