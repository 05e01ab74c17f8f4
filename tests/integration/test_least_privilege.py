"""Least privilege, proven by use. Every test runs each function under its own policy (tests/
conftest.py, abacus_local/iam.py): a call the policy does not grant fails there, as IAM would
refuse it. This test is the other half: a workload that reaches every path (every route's sample
request, the nightly job with a retry and a final merge, a recompute, the console's actions, the
flag definitions) while each call is recorded as IAM names it, and each statement the template
grants must have been used: nothing is granted that no path needs. The alerts are part of it:
a webhook (created, listed, its secret rotated, deleted), each snapshot followed up, an alert put on
the bus and delivered to a receiver that fails once, a scheduled launch."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from botocore.client import BaseClient

from abacus_local import iam
from abacus_local.template import Template
from tests.conftest import answer, function_policies, invoke, running_function, sample_event
from tests.integration.test_alerts import local_webhooks, receiving  # noqa: F401 - a fixture, used by name
from tests.integration.test_template import FUNCTIONS, statements

# The sample requests in an order where each succeeds: (function, sample event, status).
WORKLOAD = [
    ("ResultsFunction", "create_experiment", 201),
    ("ResultsFunction", "list_experiments", 200),
    ("ResultsFunction", "get_experiment", 200),
    ("ResultsFunction", "update_experiment", 200),
    ("ResultsFunction", "launch_experiment", 200),
    ("AssignFunction", "assign", 200),
    # The targeting changed under an exposed user: their variant is read back (sticky).
    ("ResultsFunction", "update_experiment:targeting", 200),
    ("AssignFunction", "assign", 200),
    ("AssignFunction", "posthog_flags", 200),
    ("AssignFunction", "posthog_decide", 200),
    # posthog-js's reload after identify: the anonymous id joins the signed-in one first.
    ("AssignFunction", "posthog_flags:identify", 200),
    # A PostHog server SDK polling the flag definitions with the flags key.
    ("AssignFunction", "posthog_flag_definitions", 200),
    ("AssignFunction", "posthog_local_evaluation", 200),
    ("AssignFunction", "posthog_local_evaluation_node", 200),
    # posthog-js's bundle for PostHog's HTML snippet: no AWS call at all.
    ("AssignFunction", "posthog_array_js", 200),
    ("IngestFunction", "post_events", 200),
    ("IngestFunction", "posthog_batch", 200),
    # An $identify joining an exposed id's person to another's, with person properties ($set).
    ("IngestFunction", "posthog_batch:identify", 200),
    ("IngestFunction", "posthog_capture", 200),
    ("IngestFunction", "posthog_e", 200),
    ("IngestFunction", "posthog_i_v0_e", 200),
    # A webhook taking every alert kind, on a receiver that fails its first POST (retried after its
    # backoff: the message's visibility changed): listed, its secret rotated.
    ("ResultsFunction", "create_webhook", 201),
    ("ResultsFunction", "list_webhooks", 200),
    ("ResultsFunction", "rotate_webhook_secret", 200),
    # Each snapshot the nightly worker stores is followed up (AlertsQueue, AutomationFunction).
    ("ResultsFunction", "nightly", None),
    # EventBridge delivers at least once, and Lambda retries a failed planner: the same night again.
    ("ResultsFunction", "nightly", None),
    ("ResultsFunction", "get_results", 200),
    ("ResultsFunction", "get_results_history", 200),
    ("ResultsFunction", "recompute_results", 200),
    ("ResultsFunction", "create_report_link", 201),
    ("ResultsFunction", "get_report", 200),
    ("ResultsFunction", "get_openapi_document", 200),
    # The console: signed in, its pages read with the session cookie, signed out with the CSRF token.
    ("ResultsFunction", "console_sign_in", 303),
    ("ResultsFunction", "console_experiments", 200),
    ("ResultsFunction", "console_experiment", 200),
    ("ResultsFunction", "console_results_csv", 200),  # the Results page's Download CSV
    # The Implementation page and its live check (the counters /assign and /events added above).
    ("ResultsFunction", "console_implementation", 200),
    ("ResultsFunction", "console_live_check", 200),
    # A draft created, checked and edited from the Creation form, and launched from its page.
    ("ResultsFunction", "console_new_form", 200),
    ("ResultsFunction", "console_check", 200),
    ("ResultsFunction", "console_create:draft", 303),
    ("ResultsFunction", "console_edit_form:draft", 200),
    ("ResultsFunction", "console_edit:draft", 303),
    # Recomputed, then stopped from the console's results page (confirmed): the admin routes' writes.
    ("ResultsFunction", "console_experiment_action:recompute", 303),
    ("ResultsFunction", "console_experiment_action", 303),
    # Long after the stop, no late event can change a window: the final merge marks it so.
    ("ResultsFunction", "nightly:final", None),
    # Its final alert, as sent (the bus, the webhook), with its deliveries.
    ("ResultsFunction", "get_experiment_alerts", 200),
    # A draft scheduled to launch, launched by the schedule once its starts_at has come (in a layer).
    ("ResultsFunction", "create_experiment:scheduled", 201),
    ("AutomationFunction", "schedule", None),
    # The console's draft put in a layer, launched from the console and stopped through the API:
    # the layer's allocations and the experiment, written in one transaction each time.
    ("ResultsFunction", "update_experiment:layered", 200),
    ("ResultsFunction", "console_experiment_action:launch-layered", 303),
    ("ResultsFunction", "stop_experiment:layered", 200),
    ("ResultsFunction", "console_experiment_action:ship-layered", 303),
    ("ResultsFunction", "console_experiment_action:archive-layered", 303),
    ("ResultsFunction", "ship_experiment", 200),
    ("ResultsFunction", "archive_experiment", 200),
    # Its definition copied into a new draft; its key taken at once by a new draft (the archived
    # one retired, in one transaction), which is deleted again.
    ("ResultsFunction", "duplicate_experiment", 201),
    ("ResultsFunction", "create_experiment:replace-archived", 201),
    ("ResultsFunction", "delete_experiment", 204),
    ("ResultsFunction", "console_sign_out", 303),
    ("ResultsFunction", "delete_webhook", 204),
]
SCHEDULED = "scheduled-launch"


def a_bandit_that_reweights_tonight() -> None:
    """A running bandit whose variant b converted every user and control none: tonight's worker
    reweights it (its next phase and the experiment, in one transaction). Stored directly: the
    setup, not a call of any function."""
    from abacus.experiments import definitions
    from abacus.experiments.spec import ExperimentCreate
    from abacus.storage import assignments
    from tests.integration.test_bandits import _purchases

    body = json.loads(sample_event("create_experiment")["body"]) | {
        "key": "bandit-arms",
        "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
        "primary_metric": {"event": "buy", "window_days": 7},
        "secondary_metrics": [],
        "guardrail_metrics": [],
        "allocation": {"kind": "bandit", "burn_in": 1},
    }
    now = datetime.now(UTC)
    definitions.create("test", ExperimentCreate.model_validate(body), now - timedelta(days=2))
    item = definitions.apply("test", "bandit-arms", "launch", now, started_at=now - timedelta(days=1))
    exposed = now - timedelta(hours=12)
    for n, variant in enumerate(["control", "b"] * 3):
        assignments.assign(item.assignment_partition(f"arm-{n}"), f"arm-{n}", variant, exposed, expose=True)
    _purchases([(f"arm-{n}", exposed + timedelta(hours=1)) for n in range(1, 6, 2)])


def granted(template: Template, function: str) -> set[tuple[str, str]]:
    """The (action, resource ARN) pairs the function's own statements in template.yaml grant (the
    managed policies SAM adds, such as the SQS poller's, are AWS's and not ours to trim)."""
    resources = iam.LocalResources(template)
    pairs = set()
    for statement in iam.statements_of({"Statement": statements(template.resources[function])}, resources.resolve):
        pairs |= {(action, resource) for action in statement.actions for resource in statement.resources}
    return pairs


def covers(grant: tuple[str, str], call: tuple[str, str]) -> bool:
    """Whether a granted (action, resource) allows a call: a resource may hold IAM's wildcards
    (a secret's ARN ends in 6 random characters)."""
    statement = iam.Statement("Allow", (grant[0],), (grant[1],))
    return statement.concerns(*call)


# The workloads whose sample body takes (or changes to) these fields.
BODY_CHANGES: dict[str, dict[str, object]] = {
    "ship_experiment": {"variant": "control"},
    "create_experiment:replace-archived": {"replace_archived": True},
    # In a layer of its own (its allocations written as it launches); its starts_at ahead when set,
    # moved to the past before the schedule runs (backdate_schedule).
    "create_experiment:scheduled": {
        "key": SCHEDULED,
        "layer": {"key": "scheduled", "share": 50},
        "starts_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    },
}


def prepared(name: str, console: dict[str, str]) -> dict:
    """The workload's event `name` (a sample event, `sample:variant` for a changed one). `console`
    holds what earlier answers gave: the console's cookie and CSRF token, the webhook's URL and id."""
    event = scheduled_event(name) if name.startswith(("nightly", "schedule")) else sample_event(name.split(":")[0])
    for_the_webhook(name, event, console)
    if name == "update_experiment:targeting":
        elsewhere = [{"conditions": [{"property": "country", "operator": "eq", "value": "FR"}]}]
        event["body"] = json.dumps({"targeting": elsewhere})
    if name == "launch_experiment":  # running since yesterday: the sample exposures are from its run
        event["body"] = json.dumps({"started_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()})
    if name.endswith(":identify"):
        signing_in(event)
    if name in BODY_CHANGES:
        event["body"] = json.dumps(json.loads(event.get("body") or "{}") | BODY_CHANGES[name])
    if name.startswith("console_") and name != "console_sign_in":
        event["cookies"] = [console["cookie"]]
    if "from-the-page" in event.get("body", ""):
        event["body"] = event["body"].replace("from-the-page", console["csrf_token"])
    if name.endswith(":draft") or name.endswith("layered"):
        of_a_draft(event)
    return in_a_layer(name, event)


def signing_in(event: dict) -> None:
    """A flags request after identify (the anonymous id joins the signed-in one first), or an
    $identify joining an exposed id's person to another's, with person properties ($set)."""
    body = json.loads(event["body"])
    if "batch" in body:
        identify = {"$anon_distinct_id": "user-42", "distinct_id": "other-device-42"}
        body["batch"] = [
            {"event": "$identify", "distinct_id": "other-device-42", "properties": identify, "$set": {"plan": "pro"}}
        ]
    else:
        body |= {"distinct_id": "signed-in-42", "$anon_distinct_id": "user-42"}
    event["body"] = json.dumps(body)


def nightly_event(name: str) -> dict:
    """Tonight's scheduled event (a day after the launch: there is a day to analyse)."""
    if name == "nightly:final":  # an experiment stopped long enough ago to be final tonight
        backdate_stop("new-checkout", days=40)
    return sample_event("nightly") | {"time": (datetime.now(UTC) + timedelta(days=1)).isoformat()}


def backdate_stop(key: str, days: int) -> None:
    """The stopped experiment ran `days` earlier: its windows and the 14 days of late events after
    them are over, so tonight's merge is its final one (the planner's clock is the real one)."""
    from abacus.storage.experiments import ExperimentItem

    experiment = ExperimentItem.get("test", key)
    assert experiment.started_at is not None and experiment.stopped_at is not None
    experiment.update(
        actions=[
            ExperimentItem.started_at.set(experiment.started_at - timedelta(days=days)),
            ExperimentItem.stopped_at.set(experiment.stopped_at - timedelta(days=days)),
        ]
    )


def scheduled_event(name: str) -> dict:
    """EventBridge's Scheduled Event: tonight's (nightly_event), or the schedules' (ScheduleRate),
    once the scheduled draft's starts_at has come."""
    if name == "schedule":
        backdate_schedule(SCHEDULED)
        return sample_event("nightly")
    return nightly_event(name)


def for_the_webhook(name: str, event: dict, console: dict[str, str]) -> None:
    """A webhook taking every kind, to the local receiver; then that webhook's rotation and deletion."""
    if name == "create_webhook":
        event["body"] = json.dumps({"url": console["webhook_url"]})
    if "webhook_id" in (event.get("pathParameters") or {}):
        event["rawPath"] = event["requestContext"]["http"]["path"] = event["rawPath"].replace(
            "wh_0123456789ab", console["webhook_id"]
        )
        event["pathParameters"] = {"webhook_id": console["webhook_id"]}


def backdate_schedule(key: str) -> None:
    """The draft's starts_at has come: a minute ago (a new one must be ahead when set)."""
    from abacus.storage.experiments import ExperimentItem

    draft = ExperimentItem.get("test", key)
    draft.definition = {**draft.definition, "starts_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
    draft.save()  # its by-due keys follow the definition (ExperimentItem.serialize)


def in_a_layer(name: str, event: dict) -> dict:
    """The console's draft put in a layer, launched, shipped and archived from the console's page;
    the running experiment recomputed from it."""
    if name == "update_experiment:layered":
        event["body"] = json.dumps({"layer": {"key": "page", "share": 50}})
    action = {"launch-layered": "launch", "ship-layered": "ship&variant=control", "archive-layered": "archive"}
    action["recompute"] = "recompute"
    for suffix, replacement in action.items():
        if name == f"console_experiment_action:{suffix}":
            event["body"] = event["body"].replace("action=stop", f"action={replacement}")
    return event


def of_a_draft(event: dict) -> None:
    """A console event pointed at a draft of its own (new-checkout is running by then)."""
    if "body" in event:
        event["body"] = event["body"].replace("key=new-checkout", "key=console-draft")
    event["rawPath"] = event["rawPath"].replace("new-checkout", "console-draft")
    if "pathParameters" in event:
        event["pathParameters"] = {"key": "console-draft"}


def remember_console(name: str, response: dict, console: dict[str, str]) -> None:
    """The console's session cookie once signed in, and a page's CSRF token; the webhook's id."""
    if name == "create_webhook":
        console["webhook_id"] = answer(response)[1]["id"]
    if name == "console_sign_in":
        console["cookie"] = response["cookies"][0].split(";", 1)[0]
    if name == "console_experiments":
        found = re.search(r'name="csrf_token" value="(\w+)"', response["body"])
        assert found is not None
        console["csrf_token"] = found.group(1)


@pytest.fixture
def recorded_calls(monkeypatch):
    """Every call a function makes (its handler's threads and its queue's polling included), as
    IAM names it: {function: {(action, resource ARN)}}."""
    calls: dict[str, set[tuple[str, str]]] = {function: set() for function in FUNCTIONS}
    # botocore-stubs leave out this private method, which every client call goes through.
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def recording(client, operation, params):
        function = running_function()
        if function:
            service, region = client.meta.service_model.service_name, client.meta.region_name
            calls[function] |= set(iam.requested(service, operation, params, region))
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return calls


@pytest.mark.usefixtures("local_webhooks")  # the receiver is on 127.0.0.1, as the local stack allows
def test_each_function_is_allowed_exactly_the_calls_it_makes(template, project, recorded_calls, monkeypatch):
    from abacus.http import api
    from abacus.http.rate_limit import RateLimiter
    from abacus.nightly import computation

    monkeypatch.setattr(api, "rate_limiter", RateLimiter(1_000_000, share_every_seconds=0))
    # Pages of one user: a shard of the sample's users takes more than one, so the worker sends the next on.
    monkeypatch.setattr(computation, "PAGE_USERS", 1)
    calls = recorded_calls
    a_bandit_that_reweights_tonight()
    with receiving(failures=1) as receiver:
        console: dict[str, str] = {"webhook_url": receiver.url}
        for function, name, status in WORKLOAD:
            response = invoke(function, prepared(name, console))
            if status is not None:
                assert response["statusCode"] == status, (
                    name,
                    response if name.startswith("console_") else answer(response),
                )
            remember_console(name, response, console)
            if name == "schedule":
                assert response["launched"] == [f"test/{SCHEDULED}"], response
    # The paths were taken: the final alert failed once, then was delivered.
    finals = [body for body in receiver.bodies() if body["kind"] == "final"]
    assert len(finals) == 2 and finals[0]["id"] == finals[1]["id"], receiver.bodies()
    unused: dict[str, set[tuple[str, str]]] = {}
    for function in sorted(FUNCTIONS):
        made, policy = calls[function], function_policies()[function]
        assert made, f"no call of {function} was recorded"
        # The conftest's check refused any other already (and failed the test); checked again here.
        assert {(a, r) for a, r in made if not policy.allows(a, r)} == set(), f"{function} would be denied these"
        grants = granted(template, function)
        unused[function] = {grant for grant in grants if not any(covers(grant, call) for call in made)}
    # Every function's at once: a grant left over names its function.
    assert {function: grants for function, grants in unused.items() if grants} == {}, "granted but never used"
