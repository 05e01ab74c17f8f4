"""template.yaml: what the SAM application must declare, and least privilege."""

import json

import pytest

from tests.conftest import EVENTS_DIR

FUNCTIONS = {"AssignFunction", "IngestFunction", "ResultsFunction", "NightlyWorkerFunction", "AutomationFunction"}
# Where the nightly job keeps its runs' partial sums: rebuilt by running the night again.
SCRATCH_TABLES = {"NightlyRunsTable"}


def statements(resource: dict) -> list[dict]:
    found = []
    for policy in resource["Properties"].get("Policies", []):
        assert isinstance(policy, dict) and "Statement" in policy, "only inline statements, no managed templates"
        found.extend(policy["Statement"])
    return found


def test_python313_functions_with_thin_handlers(template):
    functions = template.of_type("AWS::Serverless::Function")
    assert set(functions) == FUNCTIONS
    assert template.document["Globals"]["Function"]["Runtime"] == "python3.13"
    for name, spec in template.functions().items():
        handler = spec.code_dir / f"{spec.module}.py"
        assert handler.exists(), name
        assert len(handler.read_text().splitlines()) < 100, f"{name}'s handler should stay thin"


def test_layers_are_built_by_sam_from_their_folders(template):
    layers = template.of_type("AWS::Serverless::LayerVersion")
    assert set(layers) == {"SharedLayer", "StatsLayer", "PostHogJsLayer"}
    for layer in layers.values():
        assert layer["Metadata"]["BuildMethod"] in {"makefile", "python3.13"}
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
        assert layer["Properties"]["ContentUri"].startswith("layers/")
    for name in ("ResultsFunction", "NightlyWorkerFunction", "AutomationFunction"):
        assert {"Ref": "StatsLayer"} in template.resources[name]["Properties"]["Layers"]
    # assign and ingest never load scipy; posthog-js's bundles are assign's alone (it serves them).
    assert template.resources["AssignFunction"]["Properties"]["Layers"] == [{"Ref": "PostHogJsLayer"}]
    assert "Layers" not in template.resources["IngestFunction"]["Properties"]


def test_every_route_has_a_sample_event(template):
    route_keys = {route.route_key for route in template.routes()}
    sample_keys = {
        json.loads(path.read_text()).get("routeKey") for path in EVENTS_DIR.glob("*.json") if path.stem != "nightly"
    }
    assert route_keys == sample_keys
    for route in template.routes():
        assert route.function in FUNCTIONS


def test_nightly_schedule_is_a_parameter_defaulting_to_3am(template):
    schedules = template.schedules()
    assert set(schedules) == {"ResultsFunction", "AutomationFunction"}
    assert schedules["ResultsFunction"]["Schedule"] == {"Ref": "NightlySchedule"}
    assert template.parameters["NightlySchedule"]["Default"] == "cron(0 3 * * ? *)"
    # Scheduled launches and stops (starts_at, ends_at): every minute by default.
    assert schedules["AutomationFunction"]["Schedule"] == {"Ref": "ScheduleRate"}
    assert template.parameters["ScheduleRate"]["Default"] == "rate(1 minute)"
    nightly = json.loads((EVENTS_DIR / "nightly.json").read_text())
    assert nightly["source"] == "aws.events" and nightly["detail-type"] == "Scheduled Event"


def test_tables_are_on_demand_recoverable_and_retained(template):
    tables = template.tables()
    assert set(tables) == {
        "ProjectsTable",
        "CredentialsTable",
        "ExperimentsTable",
        "AssignmentsTable",
        "EventsTable",
        "ResultsTable",
        "PersonsTable",
        "AlertsTable",
        *SCRATCH_TABLES,
    }
    for name, table in tables.items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        if name in SCRATCH_TABLES:
            assert table["DeletionPolicy"] == "Delete" and "PointInTimeRecoverySpecification" not in props, name
            continue
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain", name
    for name in ("EventsTable", "NightlyRunsTable", "PersonsTable", "AlertsTable"):
        assert tables[name]["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "ConditionCheckItem", "PartiQLInsert")


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_no_function_can_mint_or_change_a_credential(function):
    """Issue 28: the keys are the operator's alone to write (python -m abacus project ...): no
    function's role, as SAM deploys it, may write the credentials table, whatever its code does;
    and the role behind /assign, /flags and the bundles writes no experiment either."""
    from abacus_local.iam import ACCOUNT_ID, REGION
    from tests.conftest import function_policies

    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/"
    policy = function_policies()[function]
    for action in WRITES:
        assert not policy.allows(f"dynamodb:{action}", table + "CredentialsTable"), (function, action)
        if function == "AssignFunction":
            assert not policy.allows(f"dynamodb:{action}", table + "ExperimentsTable"), action


def test_models_match_the_tables_key_schema(template, tables):
    from abacus.storage import (
        alerts,
        assignments,
        credentials,
        events,
        experiments,
        nightly_runs,
        persons,
        project_items,
        results,
        webhooks,
    )

    models = [
        ("NightlyRunsTable", nightly_runs.RunPartItem),
        ("ProjectsTable", project_items.ProjectItem),
        ("ProjectsTable", webhooks.WebhooksItem),
        ("CredentialsTable", credentials.CredentialItem),
        ("ExperimentsTable", experiments.ExperimentItem),
        ("AssignmentsTable", assignments.AssignmentItem),
        ("EventsTable", events.EventItem),
        ("ResultsTable", results.SnapshotItem),
        ("PersonsTable", persons.PersonIdItem),
        ("AlertsTable", alerts.AlertItem),
        ("AlertsTable", alerts.DeliveryItem),
    ]
    for name, model in models:
        declared = {k["AttributeName"]: k["KeyType"] for k in template.tables()[name]["Properties"]["KeySchema"]}
        schema = model._get_schema()
        modelled = {k["AttributeName"]: k["KeyType"] for k in schema["key_schema"]}
        assert modelled == declared, name
        assert model.Meta.table_name == name


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_policies_name_actions_and_tables_no_wildcards(template, function):
    for statement in statements(template.resources[function]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all("*" not in action for action in actions), actions
        for resource in resources:
            assert isinstance(resource, dict), f"{function}: {resource}"
            if "Fn::Sub" in resource:  # a table's index, named: ${Table.Arn}/index/name
                table, _, index = resource["Fn::Sub"].partition(".Arn}/index/")
                assert table.removeprefix("${") in template.tables() and index and "*" not in index
            elif "Ref" in resource:  # a secret (its !Ref is its ARN), read and nothing else
                assert resource["Ref"] in template.of_type("AWS::SecretsManager::Secret"), f"{function}: {resource}"
                assert actions == ["secretsmanager:GetSecretValue"], f"{function}: {actions}"
            else:
                queues, buses = template.of_type("AWS::SQS::Queue"), template.of_type("AWS::Events::EventBus")
                assert resource["Fn::GetAtt"][0] in {*template.tables(), *queues, *buses}, f"{function}: {resource}"


def table_of(resource: dict) -> str:
    """The table a policy resource names: !GetAtt Table.Arn, or !Sub ${Table.Arn}/index/name."""
    if "Fn::Sub" in resource:
        return resource["Fn::Sub"].partition(".Arn}")[0].removeprefix("${")
    if "Ref" in resource:
        return resource["Ref"]
    return resource["Fn::GetAtt"][0]


def test_each_function_reaches_only_the_tables_it_uses(template):
    reached = {
        function: {
            table_of(resource)
            for statement in statements(template.resources[function])
            for resource in (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
        }
        for function in FUNCTIONS
    }
    keys = {"CredentialsTable"}  # read by every function that checks a key; written by none
    # The persons table: the person of an id is looked up, and joined, where ids arrive.
    persons = "PersonsTable"
    assert reached["AssignFunction"] == {*keys, "ProjectsTable", "ExperimentsTable", "AssignmentsTable", persons}
    assert reached["IngestFunction"] == {
        *keys,
        "ProjectsTable",
        "ExperimentsTable",
        "EventsTable",
        "AssignmentsTable",
        persons,
    }
    # The admin routes, the console, the planner and the results API; the worker computes (users,
    # their events, the receipt shard counts the events were stored with) and merges.
    assert reached["ResultsFunction"] == {
        *keys,
        "ProjectsTable",
        "ExperimentsTable",
        "ResultsTable",
        "NightlyRunsTable",
        "NightlyWorkQueue",
        "SigningSecret",  # sessions and report links are signed here alone
        "AlertsTable",  # an experiment's alerts, read (GET /experiments/{key}/alerts, the console)
    }
    assert reached["NightlyWorkerFunction"] == {
        "ProjectsTable",
        "ExperimentsTable",
        "AssignmentsTable",
        "EventsTable",
        "ResultsTable",
        "NightlyRunsTable",
        "NightlyWorkQueue",
        "PersonsTable",  # a person's ids, to read the events of each
        "AlertsQueue",  # each stored snapshot, to be followed up
    }
    # The follow-ups (alerts, webhooks, automatic actions) and the scheduled launches and stops:
    # no credential, no user's assignment or event, no signing secret.
    assert reached["AutomationFunction"] == {
        "AlertsTable",
        "ProjectsTable",  # the project's webhooks
        "ExperimentsTable",
        "ResultsTable",
        "AlertsBus",
        "AlertsQueue",
        "NightlyRunsTable",  # a bandit's scheduled recompute: its run's header
        "NightlyWorkQueue",  # and its first units
    }


def test_powertools_settings_and_api_url_output(template):
    variables = template.document["Globals"]["Function"]["Environment"]["Variables"]
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE"} <= set(variables)
    assert "ApiUrl" in template.document["Outputs"]
    assert len(template.of_type("AWS::Serverless::HttpApi")) == 1


APP_ROUTE_PREFIXES = (
    "/assign",
    "/array/",
    "/flags/",
    "/api/feature_flag/",
    "/decide/",
    "/events",
    "/batch/",
    "/capture/",
    "/e/",
    "/i/v0/e/",
    "/static/",  # posthog-js's bundles, loaded by every page of an app
)


def expected_throttle(path: str) -> str:
    """Each route's throttling parameter: production traffic, people's admin routes, the console,
    and the console's sign-in (the one admin route without a credential)."""
    if path.startswith(APP_ROUTE_PREFIXES):
        return "AppRouteRateLimit"
    if path == "/console/sign-in":
        return "SignInRouteRateLimit"
    return "ConsoleRouteRateLimit" if path.startswith("/console") else "AdminRouteRateLimit"


def test_every_route_is_throttled_app_routes_for_production_admin_routes_for_people(template):
    api = template.resources["HttpApi"]["Properties"]
    settings = api["RouteSettings"]
    for route in template.routes():
        limits = settings[f"{route.method} {route.path}"]
        expected = expected_throttle(route.path)
        assert limits == {"ThrottlingRateLimit": {"Ref": expected}, "ThrottlingBurstLimit": {"Ref": expected}}
    assert set(settings) == {f"{route.method} {route.path}" for route in template.routes()}
    assert api["DefaultRouteSettings"]["ThrottlingRateLimit"] <= 10
    defaults = {name: p["Default"] for name, p in template.document["Parameters"].items()}
    assert defaults["SignInRouteRateLimit"] < defaults["AdminRouteRateLimit"] < defaults["AppRouteRateLimit"]
    assert defaults["ConsoleRouteRateLimit"] < defaults["AppRouteRateLimit"]


def test_the_token_rate_limit_is_a_parameter_and_its_counters_expire(template):
    variables = template.document["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["ABACUS_TOKEN_RATE_LIMIT_PER_MINUTE"] == {"Ref": "TokenRateLimitPerMinute"}
    assert variables["ABACUS_UNKNOWN_KEY_RATE_LIMIT_PER_MINUTE"] == {"Ref": "UnknownKeyRateLimitPerMinute"}
    ttl = template.resources["ProjectsTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}


def test_access_logs_hold_no_headers(template):
    log_format = template.resources["HttpApi"]["Properties"]["AccessLogSettings"]["Format"]
    assert "$context.requestId" in log_format and "header" not in log_format.lower()


def test_browsers_may_call_the_app_routes_but_never_send_an_admin_key(template):
    parameter = template.parameters["AllowedOrigins"]
    assert parameter["Type"] == "CommaDelimitedList" and parameter["Default"] == "*"
    cors = template.resources["HttpApi"]["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == {"Ref": "AllowedOrigins"}
    assert sorted(cors["AllowMethods"]) == ["GET", "POST"]
    # The admin key travels in Authorization: a header no other origin may send.
    assert [header.lower() for header in cors["AllowHeaders"]] == ["content-type"]
    assert cors.get("AllowCredentials", False) is False


def test_the_signing_secret_is_generated_and_only_the_results_function_reads_it(template):
    """Issue 28: sessions and report links are keyed by a secret outside the tables, a random value
    Secrets Manager generates, which the results function alone may read (and not change)."""
    secret = template.resources["SigningSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["PasswordLength"] >= 32 and "SecretString" not in secret["Properties"]
    results = template.resources["ResultsFunction"]["Properties"]
    assert results["Environment"]["Variables"]["SIGNING_SECRET"] == {"Ref": "SigningSecret"}
    readers = {
        function
        for function in FUNCTIONS
        for statement in statements(template.resources[function])
        if {"Ref": "SigningSecret"}
        in (statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]])
    }
    assert readers == {"ResultsFunction"}
