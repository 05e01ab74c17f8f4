"""docs/api.md's "Accepted, not used" kept true (issue 31): every input PostHog's SDKs send that
Abacus takes without acting on it is listed there, and each listed one does what its row says.

- The request models: a field of FlagsRequest either is read by the code (outside its own
  declaration) or is listed as ignored; a listed /flags/ body input is no field the code reads.
  /assign's and /events' models refuse what they do not take, and read every field they take.
- The SDKs: each listed input is in the source of an SDK its row names (the versions
  tests/sdk-js and the venv pin), so the table documents nothing the SDKs do not send.
- The behaviour, row by row: an ignored input, sent and not sent, gives the same answer and stores
  the same assignments; a dropped one is not stored; a stored one is stored and changes nothing
  else (the person's properties, the exposure, a group's targeting).
"""

import ast
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import posthog
import pytest
from pydantic import BaseModel

from abacus.assignment.spec import AssignRequest
from abacus.core import keys
from abacus.core.event_properties import SDK_STATE_PROPERTIES, is_stored
from abacus.experiments import definitions
from abacus.ingestion.spec import EventBatch, EventSpec
from abacus.posthog.flags import FlagsRequest
from abacus.storage import events, persons
from abacus_local.template import ROOT
from tests.conftest import TOKEN, answer, function_of, invoke, sample_event, stored_assignment, stored_assignments

API_DOC = ROOT / "docs" / "api.md"
ABACUS = ROOT / "layers" / "shared" / "abacus"
SDK_JS = ROOT / "tests" / "sdk-js" / "node_modules"

# The Where column's words, each checked below in its own way.
FLAGS_BODY = "`/flags/`, `/decide/` body"
FLAGS_BODY_IN_PART = "`/flags/`, `/decide/` body, in part"
FLAGS_QUERY = "`/flags/`, `/decide/` query"
POSTHOG_QUERY = "PostHog routes' query"
DEFINITIONS_QUERY = "`/flags/definitions` query"
HEADER = "header"
CAPTURE_BODY = "capture body"
CAPTURE_EVENT = "capture event"
EVENTS_EVENT = "`/events` event"
EVENT_PROPERTY = "event property"
GROUPIDENTIFY_PROPERTY = "`$groupidentify` property"
FLAG_CALLED_PROPERTY = "`$feature_flag_called` property"


@dataclass(frozen=True)
class Row:
    inputs: tuple[str, ...]  # the names in backticks in the Input column
    where: str
    sent_by: str
    does: str

    @property
    def id(self) -> str:
        return f"{self.where}: {', '.join(self.inputs)}"


def _cells(line: str) -> list[str]:
    """A Markdown table row's cells (a `|` inside backticks does not occur in this table)."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


@cache
def documented() -> tuple[Row, ...]:
    """The rows of docs/api.md's "Accepted, not used" table."""
    text = API_DOC.read_text()
    start = text.index("\n## Accepted, not used\n")
    end = text.index("\n## ", start + 1)
    lines = [line for line in text[start:end].splitlines() if line.startswith("|")]
    assert _cells(lines[0]) == ["Input", "Where", "Sent by", "What Abacus does", "Why, and what would use it"]
    rows = []
    for line in lines[2:]:  # after the header and its separator
        name_cell, where, sent_by, does, _why = _cells(line)
        rows.append(Row(tuple(re.findall(r"`([^`]+)`", name_cell)), where, sent_by, does))
    return tuple(rows)


def rows_where(where: str) -> list[Row]:
    return [row for row in documented() if row.where == where]


def names_where(where: str) -> set[str]:
    return {name for row in rows_where(where) for name in row.inputs}


# --- The request models ---------------------------------------------------------------------------


def field_names(model: type[BaseModel]) -> dict[str, str]:
    """{attribute name: the name it is sent as} of a model's fields."""
    return {name: field.alias or name for name, field in model.model_fields.items()}


def attributes_read(model: type[BaseModel]) -> set[str]:
    """The attribute names read (`x.name`) in the modules of the shared layer that name the model:
    its fields among them are read somewhere besides their declaration (a declaration is an
    annotated assignment, never an attribute read)."""
    read: set[str] = set()
    for path in ABACUS.rglob("*.py"):
        source = path.read_text()
        if re.search(rf"\b{model.__name__}\b", source):
            read |= {node.attr for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Attribute)}
    return read


# What each Where's inputs may be said to be (What Abacus does, up to its first colon): what its
# check below verifies.
IGNORED, DROPPED, STORED = "ignored", "dropped", "stored, not read"
MAY_BE = {
    FLAGS_BODY: {IGNORED},
    FLAGS_BODY_IN_PART: {"ignored (the rest is targeted)"},
    FLAGS_QUERY: {IGNORED},
    POSTHOG_QUERY: {IGNORED},
    DEFINITIONS_QUERY: {IGNORED},
    HEADER: {IGNORED},
    CAPTURE_BODY: {IGNORED},
    CAPTURE_EVENT: {DROPPED},
    EVENTS_EVENT: {DROPPED},
    EVENT_PROPERTY: {DROPPED, STORED},
    GROUPIDENTIFY_PROPERTY: {STORED},
    FLAG_CALLED_PROPERTY: {STORED},
}


def test_the_table_names_its_inputs_and_says_what_is_done_with_them():
    assert len(documented()) >= 20
    for row in documented():
        assert row.inputs, f"a row names no input in backticks: {row}"
        assert row.where in MAY_BE, f"no check for the Where {row.where!r}: add one to this test"
        assert row.does.split(":")[0] in MAY_BE[row.where], row


def test_every_field_of_a_flags_request_is_read_or_listed_as_ignored():
    """A field the code starts reading must leave the table; one it declares and does not read
    must be in it; an input listed as ignored is accepted (extra fields are ignored, not refused)."""
    fields = field_names(FlagsRequest)
    read = attributes_read(FlagsRequest)
    ignored = names_where(FLAGS_BODY)
    for name, sent_as in fields.items():
        if name in read:
            assert sent_as not in ignored, f"FlagsRequest.{name} is read: take `{sent_as}` out of the table"
        else:
            assert sent_as in ignored, f"FlagsRequest.{name} is read nowhere: list `{sent_as}` in the table"
    assert FlagsRequest.model_config.get("extra") == "ignore", "the table's /flags/ inputs would be refused"
    # Those the code reads in part are fields it reads.
    for name in names_where(FLAGS_BODY_IN_PART):
        attribute = next(attribute for attribute, sent_as in fields.items() if sent_as == name)
        assert attribute in read


@pytest.mark.parametrize("model", [AssignRequest, EventBatch, EventSpec])
def test_assign_and_events_read_every_field_they_take(model: type[BaseModel]):
    read = attributes_read(model)
    assert {name for name in field_names(model) if name not in read} == set()


def test_assign_and_the_events_envelope_refuse_what_they_do_not_take():
    assert AssignRequest.model_config.get("extra") == "forbid"
    assert EventBatch.model_config.get("extra") == "forbid"
    # An event of /events takes more than it reads: the table says what is dropped.
    assert EventSpec.model_config.get("extra") == "ignore"
    assert rows_where(EVENTS_EVENT)


def test_the_sdk_state_listed_is_what_ingestion_drops():
    (row,) = [row for row in rows_where(EVENT_PROPERTY) if row.does.startswith("dropped")]
    exact = {name for name in row.inputs if "*" not in name}
    # `distinct_id` among the properties is read (the event's id when it has none) before it is dropped.
    assert exact == SDK_STATE_PROPERTIES - {"distinct_id"}


# --- The SDKs -------------------------------------------------------------------------------------

PYTHON_SDK = Path(posthog.__file__).parent
CORE = SDK_JS / "@posthog" / "core" / "dist"
SDK_SOURCES = {
    "posthog-python": [PYTHON_SDK],
    "posthog-js": [SDK_JS / "posthog-js" / "lib" / "src", SDK_JS / "@posthog" / "browser-common" / "dist", CORE],
    "posthog-node": [SDK_JS / "posthog-node" / "dist", CORE],
    "@posthog/core": [CORE],
}


@cache
def sdk_source(sdk: str) -> str:
    files = [
        path
        for directory in SDK_SOURCES[sdk]
        for path in sorted(directory.rglob("*"))
        # What the SDK runs: not its own tests, which name what they test for.
        if path.suffix in (".py", ".js")
        and path.is_file()
        and not {"test", "tests", "__tests__"} & set(path.relative_to(directory).parts)
    ]
    if not files:
        pytest.fail(f"{sdk}'s source is not installed ({SDK_SOURCES[sdk][0]}): run `make sdk-js` (or `make venv`)")
    return "\n".join(path.read_text(errors="replace") for path in files)


def senders(row: Row) -> list[str]:
    """The pinned SDKs a row names as senders (none for older SDKs and apps)."""
    if row.sent_by.startswith(("older", "apps")):
        return []
    named = [sdk for sdk in SDK_SOURCES if sdk in row.sent_by]
    assert named, f"{row.id}: name the SDK that sends it ({', '.join(SDK_SOURCES)}), or say `older`"
    return named


@pytest.mark.parametrize("row", documented(), ids=lambda row: row.id)
def test_each_input_listed_is_sent_by_an_sdk_its_row_names(row: Row):
    for name in row.inputs:
        if not senders(row):
            continue
        # A whole name (`$set` is not `$set_once`); a wildcard's fixed part; headers in any case.
        literal = name.replace("*", "")
        whole = re.escape(literal) if "*" in name else rf"(?<![\w$]){re.escape(literal)}(?!\w)"
        pattern = re.compile(whole, re.IGNORECASE if row.where == HEADER else 0)
        assert any(pattern.search(sdk_source(sdk)) for sdk in senders(row)), (
            f"`{name}` is in none of {senders(row)}'s source: the table says they send it"
        )


# --- The behaviour --------------------------------------------------------------------------------

KEY, GROUP_KEY = "new-checkout", "team-plan"
# What an SDK sends for each input (a value that would change the answer if it were read).
SAMPLES: dict[str, Any] = {
    "timezone": "Pacific/Auckland",
    "$device_id": "0193a0f0-device",
    "device_id": "0193a0f0-device",
    "flag_keys": ["some-other-flag"],  # were it read, the answer would lack both experiments
    "evaluation_contexts": ["marketing-site"],  # were it read: no experiment is tagged with it
    "evaluation_runtime": "client",
    "geoip_disable": False,
    "disable_flags": True,  # were it read, the answer would hold no flag
    "sent_at": "2020-01-01T00:00:00+00:00",
    "v": "2",
    "config": "true",
    "only_evaluate_survey_feature_flags": "true",  # were it read: only survey flags, none of these
    "ip": "1",
    "_": "1795608000000",
    "ver": "1.100.0",
    "send_cohorts": "",
    "User-Agent": "posthog-node/5.70.0",
    "Content-Type": "text/plain",
    "historical_migration": True,
    "$unset": ["plan"],
    "type": "capture",
    "library": "posthog-node",
    "library_version": "5.70.0",
    "$set": {"plan": "team"},
    "$set_once": {"first_seen": "2026-11-01"},
    "offset": 3_600_000,  # were it read, the event would be stamped an hour earlier
    "$process_person_profile": False,
    "$geoip_disable": True,
    "$feature_flag_error": "flag_missing,errors_while_computing_flags",
    "$used_bootstrap_value": True,
    "$feature_flag_has_experiment": False,
    "$feature_flag_bootstrapped_response": "control",
    "$feature_flag_payload": None,
    "locally_evaluated": True,
    "$feature_flag_version": 7,
}


def sample(name: str) -> Any:
    """The value an SDK sends for `name` ("sent by the SDK" for any other property)."""
    return SAMPLES.get(name, "sent by the SDK")


def call(name: str, body: dict | None = None, query: dict[str, str] | None = None, **headers) -> tuple[int, dict]:
    event = sample_event(name, body=body, **headers)
    if query is not None:
        event["queryStringParameters"] = query or None
        event["rawQueryString"] = "&".join(f"{key}={value}" if value else key for key, value in query.items())
    return answer(invoke(function_of(event), event))


@pytest.fixture
def running(project) -> datetime:
    """A person experiment targeting users with a `plan`, and a group experiment targeting
    companies on the enterprise plan, launched an hour ago."""
    base = json.loads(sample_event("create_experiment")["body"])
    person = base | {"targeting": [{"conditions": [{"property": "plan", "operator": "is_set"}]}]}
    group = base | {
        "key": GROUP_KEY,
        "group_type": "company",
        "targeting": [{"conditions": [{"property": "plan", "operator": "eq", "value": "enterprise"}]}],
    }
    started = datetime.now(UTC) - timedelta(hours=1)
    for body in (person, group):
        status, created = call("create_experiment", body=body)
        assert status == 201, created
        definitions.apply("test", body["key"], "launch", started)
    return started


def flags_body(user: str, **more: Any) -> dict:
    """A flags request that both experiments answer with a variant."""
    return {
        "api_key": TOKEN,
        "distinct_id": user,
        "person_properties": {"plan": "pro"},
        "groups": {"company": f"company-of-{user}"},
        "group_properties": {"company": {"plan": "enterprise"}},
        **more,
    }


def comparable(route: str, found: dict) -> dict:
    """The answer less what differs between any two requests (the v4 answer's request id)."""
    return {key: value for key, value in found.items() if key != "requestId"} if route == "posthog_flags" else found


def stored_now() -> dict[str, list[tuple[str, str, object]]]:
    """Every stored assignment of both experiments: (unit, variant, exposed at)."""
    return {
        key: sorted((item.distinct_id, item.variant, item.exposed_at) for item in stored_assignments(key))
        for key in (KEY, GROUP_KEY)
    }


def assert_changes_nothing(user: str, with_it: dict, without: dict | None = None) -> None:
    """A flags request of a new user sent with an input first, then without it: the same answer
    (every experiment, each with its variant), and the first request stored what the second would."""
    without = without or {}
    for route in ("posthog_flags", "posthog_decide"):
        routed_user = f"{route}-{user}"
        sent = {**with_it, "body": flags_body(routed_user, **with_it.get("body", {}))}
        status, first = call(route, **sent)
        assert status == 200, first
        stored_first = stored_now()
        status, second = call(route, **{**without, "body": flags_body(routed_user, **without.get("body", {}))})
        assert status == 200, second
        assert comparable(route, first) == comparable(route, second)
        assert stored_now() == stored_first
        values = (
            {key: flag["value"] for key, flag in first["flags"].items()}
            if route == "posthog_flags"
            else first["featureFlags"]
        )
        assert set(values) == {KEY, GROUP_KEY} and all(isinstance(value, str) for value in values.values()), values
        assert stored_assignment(KEY, routed_user).variant == values[KEY]


def check_flags_body(row: Row, running: datetime) -> None:
    for name in row.inputs:
        assert_changes_nothing(f"body-{name}", {"body": {name: sample(name)}})


def check_flags_body_in_part(row: Row, running: datetime) -> None:
    """What /flags/ cannot target is as if it were not sent; the same, targetable, is targeted."""
    assert set(row.inputs) == {"person_properties", "group_properties", "groups"}
    filler = {f"p{n}": n for n in range(200)}
    for number, person_properties in enumerate(
        [{"plan": ["pro"]}, {"plan": {"tier": "pro"}}, {**filler, "plan": "pro"}, {}]
    ):
        user = f"part-{number}"
        body = flags_body(user, person_properties=person_properties)
        assert call("posthog_flags", body=body)[1]["flags"][KEY]["value"] is False, person_properties
    assert isinstance(call("posthog_flags", body=flags_body("part-scalar"))[1]["flags"][KEY]["value"], str)
    not_an_object = flags_body("part-group", group_properties={"company": "enterprise"})
    assert call("posthog_flags", body=not_an_object)[1]["flags"][GROUP_KEY]["value"] is False
    no_key = flags_body("part-key", groups={"company": True})
    assert call("posthog_flags", body=no_key)[1]["flags"][GROUP_KEY]["value"] is False
    twenty_first = flags_body("part-types", groups={**{f"type-{n}": "x" for n in range(20)}, "company": "acme"})
    assert call("posthog_flags", body=twenty_first)[1]["flags"][GROUP_KEY]["value"] is False


def check_flags_query(row: Row, running: datetime) -> None:
    for name in row.inputs:
        assert_changes_nothing(f"query-{name}", {"query": {name: sample(name)}}, {"query": {}})


def capture(*events: dict, **envelope: Any) -> dict:
    status, outcome = call("posthog_batch", body={"api_key": TOKEN, "batch": list(events), **envelope})
    assert status == 200, outcome
    return outcome


def an_event(name: str, user: str, properties: dict[str, Any], at: datetime | None = None) -> dict:
    """A PostHog event (without a timestamp unless `at` is given: stamped when received)."""
    sent = {"event": name, "distinct_id": user, "uuid": str(uuid.uuid4()), "properties": properties}
    if at is not None:
        sent["timestamp"] = at.isoformat()
    return sent


def stored_event(sent: dict) -> events.EventItem:
    (item,) = events.stored([(keys.user_id("test", sent["distinct_id"]), sent["uuid"])]).values()
    return item


def check_posthog_query(row: Row, running: datetime) -> None:
    check_flags_query(row, running)
    for name in row.inputs:
        sent = an_event("purchase", f"query-{name}", {"amount": 3}, datetime.now(UTC))
        status, outcome = call("posthog_batch", body={"api_key": TOKEN, "batch": [sent]}, query={name: sample(name)})
        assert status == 200 and outcome["accepted"] == 1, outcome
        assert stored_event(sent).event_properties() == {"amount": 3}


def check_definitions_query(row: Row, running: datetime) -> None:
    def definitions_answer(query: dict[str, str]) -> tuple[int, dict, str]:
        event = sample_event("posthog_flag_definitions")
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{key}={value}" if value else key for key, value in query.items())
        response = invoke(function_of(event), event)
        return response["statusCode"], json.loads(response["body"]), response["headers"]["ETag"]

    for name in row.inputs:
        without = definitions_answer({"token": TOKEN})
        assert without[0] == 200 and without[1]["flags"]
        assert definitions_answer({"token": TOKEN, name: sample(name)}) == without


def check_header(row: Row, running: datetime) -> None:
    # Without: no User-Agent, and the JSON Content-Type the sample events carry.
    without = {"user-agent": None, "content-type": "application/json"}
    for name in row.inputs:
        header = name.lower()
        assert_changes_nothing(f"header-{name}", {header: sample(name)}, {header: without[header]})


def check_capture_body(row: Row, running: datetime) -> None:
    for name in row.inputs:
        now = datetime.now(UTC)
        plain = an_event("purchase", "migrated-plain", {"amount": 1}, now)
        marked = an_event("purchase", "migrated-marked", {"amount": 1}, now)
        assert capture(plain) == capture(marked, **{name: sample(name)})
        assert stored_event(plain).event_properties() == stored_event(marked).event_properties()
        # A migration's old events are refused as any others are.
        old = an_event("purchase", "migrated-old", {"amount": 1}, now - timedelta(days=15))
        outcome = capture(old, **{name: sample(name)})
        assert outcome["accepted"] == 0 and "too late to count" in outcome["rejected"][0]["error"], outcome


def person_properties(user: str) -> dict:
    return persons.person("test", user, consistent=True).properties


def check_beside_an_event(row: Row, running: datetime, send: Callable[[dict], dict]) -> None:
    """Two users set their plan, then send the same `$set` event, one of them with the input beside
    its fields (sent with no timestamp: an `offset` would move it): the same event stored, the same
    person."""
    for name in row.inputs:
        plain_user, with_user = f"plain-{name}", f"with-{name}"
        for user in (plain_user, with_user):
            send(an_event("$set", user, {"$set": {"plan": "pro"}}, datetime.now(UTC)))
        plain = an_event("$set", plain_user, {"$set": {"seats": 3}})
        beside = an_event("$set", with_user, {"$set": {"seats": 3}}) | {name: sample(name)}
        assert send(plain) == send(beside)
        stored_plain, stored_beside = stored_event(plain), stored_event(beside)
        assert stored_beside.event_properties() == stored_plain.event_properties() == {"$set": {"seats": 3}}
        assert abs(stored_beside.timestamp - stored_plain.timestamp) < timedelta(minutes=1)
        assert person_properties(with_user) == person_properties(plain_user) == {"plan": "pro", "seats": 3}


def check_capture_event(row: Row, running: datetime) -> None:
    check_beside_an_event(row, running, capture)


def check_events_event(row: Row, running: datetime) -> None:
    def post_events(sent: dict) -> dict:
        status, outcome = call("post_events", body={"token": TOKEN, "events": [sent]})
        assert status == 200, outcome
        return outcome

    check_beside_an_event(row, running, post_events)


def check_event_property(row: Row, running: datetime) -> None:
    """Dropped: not stored. Stored, not read: stored, and a `$set` event carrying it sets the
    person as one without it does."""
    for name in row.inputs:
        concrete = name.replace("*", "new-checkout" if name.startswith("$feature/") else "heatmaps")
        plain_user, with_user = f"plain-{concrete}", f"with-{concrete}"
        plain = an_event("$set", plain_user, {"$set": {"plan": "pro"}}, datetime.now(UTC))
        carrying = an_event("$set", with_user, {"$set": {"plan": "pro"}, concrete: sample(name)}, datetime.now(UTC))
        assert capture(plain) == capture(carrying)
        properties = stored_event(carrying).event_properties()
        if row.does.startswith("dropped"):
            assert not is_stored(concrete) and concrete not in properties
        else:
            assert properties[concrete] == sample(name)
        assert person_properties(with_user) == person_properties(plain_user) == {"plan": "pro"}


def check_groupidentify_property(row: Row, running: datetime) -> None:
    """The group's properties sent by `$groupidentify` are stored with it, and target nothing: a
    flags request naming the group without its properties is outside the group experiment."""
    assert set(row.inputs) == {"$group_type", "$group_key", "$group_set"}
    group_set = {"$group_type": "company", "$group_key": "acme", "$group_set": {"plan": "enterprise"}}
    identify = an_event("$groupidentify", "member-1", group_set, datetime.now(UTC))
    assert capture(identify)["accepted"] == 1
    assert stored_event(identify).event_properties()["$group_set"] == {"plan": "enterprise"}
    body = flags_body("member-1", groups={"company": "acme"}, group_properties={})
    assert call("posthog_flags", body=body)[1]["flags"][GROUP_KEY]["value"] is False
    with_properties = flags_body("member-1", groups={"company": "acme"})
    assert isinstance(call("posthog_flags", body=with_properties)[1]["flags"][GROUP_KEY]["value"], str)


def check_flag_called_property(row: Row, running: datetime) -> None:
    """An exposure carrying every one of them counts as one without any."""
    at = running + timedelta(minutes=5)
    plain_user, with_user = "exposed-plain", "exposed-with"
    for user in (plain_user, with_user):
        assert call("posthog_flags", body=flags_body(user))[0] == 200
    variant = {user: stored_assignment(KEY, user).variant for user in (plain_user, with_user)}
    extras = {name: sample(name) for name in row.inputs}
    plain = an_event(
        "$feature_flag_called", plain_user, {"$feature_flag": KEY, "$feature_flag_response": variant[plain_user]}, at
    )
    carrying = an_event(
        "$feature_flag_called",
        with_user,
        {"$feature_flag": KEY, "$feature_flag_response": variant[with_user], **extras},
        at,
    )
    assert (
        capture(plain)
        == capture(carrying)
        == {
            "status": 1,
            "accepted": 1,
            "duplicates": 0,
            "rejected": [],
            "refused_exposures": 0,
            "refused_exposure_reasons": {},
        }
    )
    for user in (plain_user, with_user):
        assert stored_assignment(KEY, user).exposed_at is not None
    properties = stored_event(carrying).event_properties()
    assert {name: properties[name] for name in row.inputs} == extras


CHECKS: dict[str, Callable[[Row, datetime], None]] = {
    FLAGS_BODY: check_flags_body,
    FLAGS_BODY_IN_PART: check_flags_body_in_part,
    FLAGS_QUERY: check_flags_query,
    POSTHOG_QUERY: check_posthog_query,
    DEFINITIONS_QUERY: check_definitions_query,
    HEADER: check_header,
    CAPTURE_BODY: check_capture_body,
    CAPTURE_EVENT: check_capture_event,
    EVENTS_EVENT: check_events_event,
    EVENT_PROPERTY: check_event_property,
    GROUPIDENTIFY_PROPERTY: check_groupidentify_property,
    FLAG_CALLED_PROPERTY: check_flag_called_property,
}


@pytest.mark.parametrize("row", documented(), ids=lambda row: row.id)
def test_each_row_does_what_it_says(row: Row, running: datetime):
    CHECKS[row.where](row, running)
