"""SnapStart and provisioned concurrency (issue 33): the public functions are published behind an
alias `live` that the API, the nightly schedule and the outputs name, with SnapStart a parameter
(on by default) and AssignFunction's provisioned concurrency another (0 by default), never both on
one version. Checked on the template SAM deploys (samtranslator, as `sam validate` runs it), and on
the handlers' import: it registers the restore hook and draws nothing random a snapshot would keep."""

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from abacus_local.iam import sam_transform
from abacus_local.template import ROOT, Template

PUBLIC = ("AssignFunction", "IngestFunction", "ResultsFunction")
ALIAS = "live"


@cache
def deployed(shared_layer_key: str = "shared.zip") -> dict[str, Any]:
    """The template as SAM transforms it, the shared layer's code at `shared_layer_key`."""
    document = copy.deepcopy(Template().document)
    document["Resources"]["SharedLayer"]["Properties"]["ContentUri"] = {"Bucket": "code", "Key": shared_layer_key}
    return sam_transform(Template(document))


def alias_of(function: str) -> str:
    return f"{function}Alias{ALIAS}"


def test_the_public_functions_are_published_behind_the_alias_live_with_snapstart():
    resources = deployed()["Resources"]
    for function in PUBLIC:
        alias = resources[alias_of(function)]
        assert alias["Type"] == "AWS::Lambda::Alias" and alias["Properties"]["Name"] == ALIAS
        version = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        assert resources[version]["Type"] == "AWS::Lambda::Version"
        assert resources[version]["DeletionPolicy"] == "Delete", "an old version would keep its snapshot, charged"
        assert "ApplyOn" in resources[function]["Properties"]["SnapStart"]
    # The worker and the automation function take SQS batches and schedules: no alias, no SnapStart.
    for function in ("NightlyWorkerFunction", "AutomationFunction"):
        assert alias_of(function) not in resources and "SnapStart" not in resources[function]["Properties"]


def test_every_route_the_schedule_and_their_permissions_invoke_the_alias():
    resources = deployed()["Resources"]
    (api,) = (r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api")
    routes = {route.route_key: route.function for route in Template().routes()}
    for path, methods in api["Properties"]["Body"]["paths"].items():
        for method, operation in methods.items():
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            assert f"${{{alias_of(routes[f'{method.upper()} {path}'])}}}" in uri, (method, path)
    nightly = resources["ResultsFunctionNightly"]["Properties"]["Targets"]
    assert [target["Arn"] for target in nightly] == [{"Ref": alias_of("ResultsFunction")}]
    permissions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    invoked = {json.dumps(permission["FunctionName"]) for permission in permissions}
    for function in PUBLIC:
        assert json.dumps({"Ref": function}) not in invoked and json.dumps({"Ref": alias_of(function)}) in invoked


def test_the_outputs_name_the_results_alias_for_a_recompute():
    outputs = deployed()["Outputs"]
    assert outputs["ResultsFunctionAliasArn"]["Value"] == {"Ref": alias_of("ResultsFunction")}
    assert outputs["ResultsFunctionName"]["Value"] == {"Ref": "ResultsFunction"}


def test_a_new_shared_layer_publishes_new_versions():
    """The rules live in the shared layer: a deploy that changes only it must move the alias."""

    def versions(key: str) -> set[str]:
        return {name for name, r in deployed(key)["Resources"].items() if r["Type"] == "AWS::Lambda::Version"}

    assert versions("shared-1.zip").isdisjoint(versions("shared-2.zip"))
    assert len(versions("shared-1.zip")) == len(PUBLIC)


# ------------------------------------------------------------------ the parameters, evaluated
class Evaluation:
    """CloudFormation's own evaluation of the intrinsics these properties use, for given parameters."""

    def __init__(self, parameters: dict[str, str], conditions: dict[str, Any]):
        self.parameters, self.conditions = parameters, conditions
        self.functions: dict[str, Callable[[Any], Any]] = {
            "Ref": self.ref,
            "Fn::Sub": self.sub,
            "Fn::If": self.if_,
            "Fn::Equals": lambda pair: str(self(pair[0])) == str(self(pair[1])),
            "Fn::Not": lambda operand: not self(operand[0]),
        }

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in map(self, value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1 and (function := self.functions.get(next(iter(value)))) is not None:
            return function(next(iter(value.values())))
        return {key: item for key, item in ((k, self(v)) for k, v in value.items()) if item is not NO_VALUE}

    def ref(self, name: str) -> Any:  # a parameter's value; a resource's stays a reference
        return NO_VALUE if name == "AWS::NoValue" else self.parameters.get(name, {"Ref": name})

    def sub(self, text: str) -> str:
        for name, parameter in self.parameters.items():
            text = text.replace(f"${{{name}}}", parameter)
        return text

    def if_(self, argument: list[Any]) -> Any:
        condition, when_true, when_false = argument
        return self(when_true if self(self.conditions[condition]) else when_false)


NO_VALUE = object()


def stack(parameters: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per public function: its SnapStart, its version's description, its alias's provisioned concurrency."""
    template = deployed()
    values = {name: str(p.get("Default")) for name, p in template["Parameters"].items()} | parameters
    resources, evaluate = template["Resources"], Evaluation(values, template["Conditions"])
    found = {}
    for function in PUBLIC:
        alias = evaluate(resources[alias_of(function)]["Properties"])
        provisioned = alias.get("ProvisionedConcurrencyConfig", {}).get("ProvisionedConcurrentExecutions")
        version = resources[resources[alias_of(function)]["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]]
        found[function] = {
            "snapstart": evaluate(resources[function]["Properties"]["SnapStart"])["ApplyOn"],
            "version description": evaluate(version["Properties"]["Description"]),
            "provisioned": None if provisioned is None else int(provisioned),
        }
    return found


def test_snapstart_is_on_by_default_and_a_parameter_turns_it_off():
    parameter = deployed()["Parameters"]["SnapStart"]
    assert parameter["Default"] == "PublishedVersions" and parameter["AllowedValues"] == ["PublishedVersions", "None"]
    assert {f: s["snapstart"] for f, s in stack({}).items()} == dict.fromkeys(PUBLIC, "PublishedVersions")
    assert {f: s["snapstart"] for f, s in stack({"SnapStart": "None"}).items()} == dict.fromkeys(PUBLIC, "None")


def test_provisioned_concurrency_is_0_by_default_and_assigns_alone():
    parameter = deployed()["Parameters"]["AssignProvisionedConcurrency"]
    assert parameter["Default"] == 0 and parameter["MinValue"] == 0
    assert {f: s["provisioned"] for f, s in stack({}).items()} == dict.fromkeys(PUBLIC)
    provisioned = stack({"AssignProvisionedConcurrency": "5"})
    assert provisioned["AssignFunction"]["provisioned"] == 5
    assert provisioned["IngestFunction"]["provisioned"] is None
    assert provisioned["ResultsFunction"]["provisioned"] is None


@pytest.mark.parametrize("snapstart", ["PublishedVersions", "None"])
@pytest.mark.parametrize("provisioned", ["0", "1", "25"])
def test_no_version_has_snapstart_and_provisioned_concurrency_and_each_change_of_snapstart_publishes_one(
    snapstart, provisioned
):
    """Lambda refuses provisioned concurrency on a version published with SnapStart. A version's
    description is its SnapStart (CloudFormation replaces a version whose description changes):
    so the version the alias points to has the SnapStart the template says, never a stale one."""
    for function, state in stack({"SnapStart": snapstart, "AssignProvisionedConcurrency": provisioned}).items():
        assert not (state["provisioned"] and state["snapstart"] != "None"), function
        assert state["version description"] == f"SnapStart {state['snapstart']}", function
        if function == "AssignFunction" and provisioned != "0":
            assert state["snapstart"] == "None" and state["provisioned"] == int(provisioned)
        else:
            assert state["snapstart"] == snapstart


# ------------------------------------------------------------------ the handlers' import
PROBE = """
import importlib.util, json, random, secrets, sys, uuid
drawn = []
def counted(module, name):
    original = getattr(module, name)
    def draw(*args, **kwargs):
        drawn.append(f"{module.__name__}.{name}")
        return original(*args, **kwargs)
    setattr(module, name, draw)
for name in ("uuid1", "uuid4"):
    counted(uuid, name)
for name in ("token_bytes", "token_hex", "token_urlsafe", "randbelow", "randbits", "choice"):
    counted(secrets, name)
state = random.getstate()
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
import snapshot_restore_py
hooks = [f"{hook.__module__}.{hook.__qualname__}" for hook, _, _ in snapshot_restore_py.get_after_restore()]
print(json.dumps({"random drawn": random.getstate() != state, "drawn": drawn, "hooks": hooks}))
"""


@pytest.mark.parametrize("function", PUBLIC)
def test_importing_a_public_handler_registers_the_restore_hook_and_draws_nothing_random(function):
    spec = Template().functions()[function]
    probed = subprocess.run(
        [sys.executable, "-c", PROBE, str(spec.code_dir / f"{spec.module}.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"},
    )
    found = json.loads(probed.stdout.strip().splitlines()[-1])
    assert found == {"random drawn": False, "drawn": [], "hooks": ["abacus.http.snapstart.restored"]}
