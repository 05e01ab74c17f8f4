"""The API's answers are written once each. abacus.core.documents's TypedDicts are what the code
builds; abacus.http.responses documents them in the OpenAPI document. Where responses.py
generates a shape from its TypedDict there is nothing to check; where it keeps a pydantic model
of its own (because generating it would change the document), each pair is checked here: the
same fields, the same required/optional split, and compatible types, except for the differences
listed with the pair (each one a choice the document makes, said why). A field added to one and
not the other fails, as the deliberately mismatched pairs at the end show."""

from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

import pytest
from pydantic import BaseModel, TypeAdapter

from abacus.core import answers, documents
from abacus.experiments.spec import ExperimentFields
from abacus.http import responses

type Schema = dict[str, Any]


@dataclass(frozen=True)
class Pair:
    """A response model and the TypedDict whose answers it documents, with their known differences."""

    model: type[BaseModel]
    shape: Any  # a TypedDict of abacus.core.documents
    model_only: frozenset[str] = frozenset()  # fields the document lists that this shape lacks
    shape_only: frozenset[str] = frozenset()  # fields an open model leaves undocumented
    optional: frozenset[str] = frozenset()  # required in the shape, optional in the document
    loose: frozenset[str] = frozenset()  # types the document states more narrowly or broadly
    why: str = field(default="", compare=False)


# Fields that have defaults in the request (ExperimentFields), so the document has them optional.
REQUEST_DEFAULTS = frozenset(name for name, spec in ExperimentFields.model_fields.items() if not spec.is_required())
READY_ONLY = frozenset({"date", "cutoff", "covers", "computed_at", "final", "variants", "verdict", "secondary_metrics"})

PAIRS = [
    Pair(responses.ErrorDetail, answers.ErrorDetail),
    Pair(responses.ErrorBody, answers.ErrorBody),
    Pair(
        responses.HistoryEntry,
        answers.HistoryEntry,
        shape_only=frozenset({"changes"}),
        why="an open object: the changes are its further fields",
    ),
    Pair(
        responses.Experiment,
        answers.Experiment,
        model_only=frozenset({"history", "bandit_phases"}),
        optional=REQUEST_DEFAULTS,
        loose=frozenset({"allocation"}),
        why="history, bandit_phases: GET /experiments/{key}'s (ExperimentWithHistory); the request's defaults make "
        "fields optional; allocation is the request's discriminated union (by kind) of the two TypedDicts",
    ),
    Pair(
        responses.Experiment,
        answers.ExperimentWithHistory,
        optional=REQUEST_DEFAULTS | {"history", "bandit_phases"},
        loose=frozenset({"allocation"}),
        why="the other routes answer an experiment without its history; allocation: a discriminated union",
    ),
    Pair(responses.ExperimentPage, answers.ExperimentPage),
    Pair(responses.FlagsAnswer, answers.FlagsAnswer, shape_only=frozenset({"requestId"}), why="an open object"),
    Pair(
        responses.DecideAnswer,
        answers.DecideAnswer,
        shape_only=frozenset({"featureFlagPayloads", "errorsWhileComputingFlags"}),
        why="an open object",
    ),
    Pair(responses.Verdict, documents.Verdict),
    Pair(
        responses.VariantResult,
        documents.VariantAnalysis,
        shape_only=frozenset(documents.VariantAnalysis.__annotations__) - {"key", "exposures", "mean"},
        why="an open object: its statistics depend on the metric and the design",
    ),
    Pair(responses.AppliedCap, documents.CapReport),
    Pair(responses.FunnelStepResult, documents.FunnelStepCounts),
    Pair(
        responses.SegmentResult,
        documents.Segment,
        loose=frozenset({"value"}),
        why="a property's value at first exposure is documented as a scalar",
    ),
    Pair(responses.BreakdownResult, documents.Breakdown),
    Pair(responses.GuardrailResult, documents.GuardrailResult),
    Pair(
        responses.Analysis,
        documents.MetricAnalysis,
        shape_only=frozenset({"control", "alpha", "sequential"}),
        why="an open object",
    ),
    Pair(
        responses.Results,
        documents.ReadyResults,
        model_only=frozenset({"message"}),
        shape_only=frozenset(documents.MetricAnalysis.__annotations__) - set(responses.Results.model_fields),
        optional=READY_ONLY,
        why="one open object for both answers: the ready one's fields are optional, message is the pending one's",
    ),
    Pair(
        responses.Results,
        documents.PendingResults,
        model_only=frozenset(responses.Results.model_fields) - {"status", "experiment", "message", "warnings"},
        optional=frozenset({"message"}),
        why="one open object for both answers",
    ),
    Pair(responses.ResultsHistory, documents.ResultsHistory),
    Pair(
        responses.Day,
        documents.HistoryDay,
        why="an open object; its variants' fields are not documented",
    ),
]

# Schemas that document a TypedDict under another name: the pairs above, and the request's own
# models for the experiment's fields (abacus.experiments.spec owns them; documents has them as JSON).
SAME_SHAPE = {(pair.model.__name__, pair.shape.__name__) for pair in PAIRS} | {
    ("VariantSpec", "VariantJson"),
    ("MetricSpec", "MetricJson"),
    ("Cuped", "CupedSummary"),
}


DOCUMENTATION = ("title", "description", "default", "examples")
# What a request's model checks of a value, which a TypedDict cannot say.
CONSTRAINTS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "ge", "le", "minLength", "maxLength", "pattern"}
) | {"minItems", "maxItems", "uniqueItems"}


def _definitions(schema: Schema) -> dict[str, Schema]:
    definitions: dict[str, Schema] = schema.get("$defs", {})
    return definitions


def _normalised(schema: Schema) -> Schema:
    """A field's schema without what only documents it (titles, descriptions, defaults)."""
    return {
        key: [_normalised(s) for s in value] if key == "anyOf" else value
        for key, value in schema.items()
        if key not in DOCUMENTATION and key not in CONSTRAINTS
    }


def _without_null(schema: Schema) -> tuple[Schema, bool]:
    """The schema with null taken out of it, and whether it allowed null."""
    options = schema.get("anyOf")
    if options is None:
        return schema, schema.get("type") == "null"
    rest = [option for option in options if option.get("type") != "null"]
    nullable = len(rest) < len(options)
    if len(rest) == 1:
        return rest[0], nullable
    return {**schema, "anyOf": rest}, nullable


def _is_any_object(schema: Schema, definitions: dict[str, Schema]) -> bool:
    """An object of any fields: `dict[str, Any]`, or a model that may carry more than it lists
    (responses.Open and its kind), whose fields another pair checks where there is one."""
    if "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[1]]
    if schema.get("type") != "object":
        return False
    extra = schema.get("additionalProperties", True)
    return extra is True or extra == {} or not schema.get("properties")


def compatible(document: Schema, shape: Schema, model_defs: dict[str, Schema], shape_defs: dict[str, Schema]) -> bool:
    """Whether the document's schema of a field describes the values the shape's schema allows."""
    document, shape = _normalised(document), _normalised(shape)
    if document == shape or not document or not shape:
        return True
    document, document_null = _without_null(document)
    shape, shape_null = _without_null(shape)
    if shape_null and not document_null:
        return False  # the code may answer null where the document promises a value
    return _alike(document, shape, model_defs, shape_defs) or _alike_within(document, shape, model_defs, shape_defs)


def _alike(document: Schema, shape: Schema, model_defs: dict[str, Schema], shape_defs: dict[str, Schema]) -> bool:
    """The same schema, the same shape under two names, an object of any fields, or scalars of one kind."""
    if document == shape:
        return True
    if "$ref" in document and "$ref" in shape:
        names = (document["$ref"].rsplit("/", 1)[1], shape["$ref"].rsplit("/", 1)[1])
        if names[0] == names[1] or names in SAME_SHAPE or (names[0].split("-")[0], names[1]) in SAME_SHAPE:
            return True
    if _is_any_object(document, model_defs) and (shape.get("type") == "object" or "$ref" in shape):
        return True
    if _is_any_object(shape, shape_defs) and (document.get("type") == "object" or "$ref" in document):
        return True
    kinds = (_kind(document), _kind(shape))
    return kinds == ("string", "string") or kinds in (("number", "number"), ("number", "integer"))


def _alike_within(
    document: Schema, shape: Schema, model_defs: dict[str, Schema], shape_defs: dict[str, Schema]
) -> bool:
    """Unions, arrays and maps whose parts are compatible."""
    if "anyOf" in shape:
        return all(compatible(document, option, model_defs, shape_defs) for option in shape["anyOf"])
    if "anyOf" in document:
        return any(compatible(option, shape, model_defs, shape_defs) for option in document["anyOf"])
    if document.get("type") == shape.get("type") == "array":
        return compatible(document.get("items", {}), shape.get("items", {}), model_defs, shape_defs)
    if document.get("type") == shape.get("type") == "object":
        return compatible(
            document.get("additionalProperties", {}), shape.get("additionalProperties", {}), model_defs, shape_defs
        )
    return False


def _kind(schema: Schema) -> str | None:
    """A scalar's JSON type, counting a literal (`const`, `enum`) as its values' type."""
    if "type" in schema and schema["type"] in ("string", "number", "integer", "boolean"):
        kind: str = schema["type"]
        return kind
    values = schema.get("enum", [schema["const"]] if "const" in schema else [])
    if values and all(isinstance(value, str) for value in values):
        return "string"
    return None


def differences(pair: Pair) -> list[str]:
    """How the model and the TypedDict differ beyond the differences the pair lists."""
    model_schema = pair.model.model_json_schema(mode="serialization")
    shape_schema = TypeAdapter(pair.shape).json_schema(mode="serialization")
    model_fields, shape_fields = model_schema["properties"], shape_schema["properties"]
    found = [
        f"{name}: only in {pair.model.__name__}" for name in set(model_fields) - set(shape_fields) - pair.model_only
    ]
    found += [
        f"{name}: only in {pair.shape.__name__}" for name in set(shape_fields) - set(model_fields) - pair.shape_only
    ]
    found += [
        f"{name}: listed as a difference, but in both"
        for name in (pair.model_only | pair.shape_only) & set(model_fields) & set(shape_fields)
    ]
    model_required, shape_required = set(model_schema.get("required", ())), set(shape_schema.get("required", ()))
    for name in sorted(set(model_fields) & set(shape_fields)):
        required = (name in model_required, name in shape_required)
        if required[0] != required[1] and not (name in pair.optional and required == (False, True)):
            found.append(
                f"{name}: required {required[0]} in {pair.model.__name__}, {required[1]} in {pair.shape.__name__}"
            )
        if name not in pair.loose and not compatible(
            model_fields[name], shape_fields[name], _definitions(model_schema), _definitions(shape_schema)
        ):
            found.append(f"{name}: {model_fields[name]} does not describe {shape_fields[name]}")
    return sorted(found)


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{p.model.__name__}-{p.shape.__name__}" for p in PAIRS])
def test_response_model_agrees_with_its_shape(pair: Pair) -> None:
    assert differences(pair) == []


GENERATED = [
    (responses.FieldError, answers.FieldError),
    (responses.IngestOutcome, answers.IngestOutcome),
    (responses.CaptureOutcome, answers.IngestOutcome),
    (responses.Cuped, documents.CupedSummary),
    (responses.RatioTotals, documents.RatioTotals),
    (responses.DecisionCard, documents.DecisionCard),
]


@pytest.mark.parametrize("generated, shape", GENERATED, ids=[generated.__name__ for generated, _ in GENERATED])
def test_generated_models_have_their_shapes_fields(generated: Any, shape: Any) -> None:
    """These answers are documented from their TypedDict: no field list of their own to drift
    (answers.Rejected is documented as it is, within IngestOutcome)."""
    assert set(shape.__annotations__) <= set(TypeAdapter(generated).json_schema()["properties"])
    assert set(generated.__annotations__) - set(shape.__annotations__) <= {"status"}  # CaptureOutcome's
    assert answers.Rejected.__name__ in TypeAdapter(responses.IngestOutcome).json_schema()["$defs"]


class _Shape(TypedDict):
    key: str
    count: int
    note: NotRequired[str]


class _Model(responses.Open):
    key: str
    count: int
    note: str | None = None


class _ModelWithMore(_Model):
    added: int


class _ShapeWithMore(_Shape):
    added: int


class _ModelRequiring(responses.Open):
    key: str
    count: int
    note: str


class _ModelOtherwise(responses.Open):
    key: str
    count: Literal["many"]
    note: str | None = None


def test_a_matched_pair_has_no_differences() -> None:
    assert differences(Pair(_Model, _Shape)) == []


def test_a_field_added_to_the_model_alone_is_a_difference() -> None:
    assert differences(Pair(_ModelWithMore, _Shape)) == ["added: only in _ModelWithMore"]


def test_a_field_added_to_the_shape_alone_is_a_difference() -> None:
    assert differences(Pair(_Model, _ShapeWithMore)) == ["added: only in _ShapeWithMore"]


def test_a_field_required_in_one_alone_is_a_difference() -> None:
    assert differences(Pair(_ModelRequiring, _Shape)) == ["note: required True in _ModelRequiring, False in _Shape"]


def test_a_field_of_another_type_is_a_difference() -> None:
    assert [found.split(":")[0] for found in differences(Pair(_ModelOtherwise, _Shape))] == ["count"]


def test_a_listed_difference_that_is_gone_is_a_difference() -> None:
    assert differences(Pair(_Model, _Shape, shape_only=frozenset({"note"}))) == [
        "note: listed as a difference, but in both"
    ]
