"""Each function's IAM policy, as deployed, enforced on every AWS call it makes locally.

In AWS a function's calls are signed with its execution role, and IAM refuses whatever the role's
policies do not allow. moto lets any call through, so without this a function here could call
anything and a missing grant would show only once deployed. So:

- `function_policies` transforms template.yaml with SAM's own translator (samtranslator, which
  `sam build` and `sam validate` run): the execution roles it generates hold each function's
  inline statements, SAM's policy templates (DynamoDBReadPolicy, SQSSendMessagePolicy...)
  expanded to their documented actions, the DeadLetterQueue's SendMessage, and the managed
  policies an event adds (AWSLambdaSQSQueueExecutionRole for an SQS event), whose documents come
  from moto's copy of AWS's managed policies. Their intrinsics (`!GetAtt T.Arn`, `!Sub`, `!Ref`)
  are resolved to the local resources' ARNs.
- `install` wraps botocore's one entry point for API calls: while a thread (or the whole process,
  in a local execution environment) acts as a function, each call is named as IAM names it (the
  action, `dynamodb:UpdateItem`, and the resource's ARN: a table, an index, a queue, a secret) and
  checked against that function's policy: an explicit Deny wins, then an Allow, else denied. A
  call outside the policy fails as AWS fails it (AccessDeniedException), and is reported with its
  function, action and resource, also where the product catches the error (the live counters).
"""

import copy
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from abacus_local.template import Template

ACCOUNT_ID = "123456789012"  # moto's account, where the local resources live
REGION = "us-east-1"

# Calls whose IAM action is another's: SQS's batches need the single message's action.
_SQS_ACTION_OF = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
# A transaction needs each of its writes' own actions (DynamoDB's "Using IAM with transactions").
_TRANSACTION_ACTION_OF = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


# ------------------------------------------------------------------ policies
@dataclass(frozen=True)
class Statement:
    effect: str  # Allow or Deny
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_actions: bool = False
    not_resources: bool = False
    conditional: bool = False  # a Condition: not evaluated here, so it never allows

    def concerns(self, action: str, resource: str) -> bool:
        action_matches = any(_matches(pattern, action, ignore_case=True) for pattern in self.actions)
        resource_matches = any(_matches(pattern, resource, ignore_case=False) for pattern in self.resources)
        return action_matches != self.not_actions and resource_matches != self.not_resources


@dataclass(frozen=True)
class FunctionPolicy:
    """What a function's execution role allows: its statements, inline and managed."""

    function: str
    role: str  # the role's logical id, its local name
    statements: tuple[Statement, ...]
    _decisions: dict[tuple[str, str], bool] = field(default_factory=dict, compare=False, repr=False)

    def allows(self, action: str, resource: str) -> bool:
        """IAM's evaluation of one identity policy set: an explicit Deny wins, then an Allow."""
        decided = self._decisions.get((action, resource))
        if decided is None:
            concerned = [s for s in self.statements if s.concerns(action, resource)]
            denied = any(s.effect == "Deny" and not s.conditional for s in concerned)
            allowed = any(s.effect == "Allow" and not s.conditional for s in concerned)
            decided = self._decisions[(action, resource)] = allowed and not denied
        return decided

    @property
    def principal(self) -> str:
        return f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{self.role}/{self.function}"

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "role": self.role,
            "statements": [s.__dict__ for s in self.statements],
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "FunctionPolicy":
        statements = tuple(
            Statement(**{**s, "actions": tuple(s["actions"]), "resources": tuple(s["resources"])})
            for s in body["statements"]
        )
        return cls(body["function"], body["role"], statements)


@cache
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards: * any run of characters (across / and :), ? one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _matches(pattern: str, value: str, ignore_case: bool) -> bool:
    return _pattern(pattern, ignore_case).match(value) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements_of(document: dict[str, Any], resolve: Callable[[Any], str]) -> list[Statement]:
    """A policy document's statements, their resources resolved to ARNs."""
    found = []
    for statement in _as_list(document.get("Statement", [])):
        not_actions, not_resources = "NotAction" in statement, "NotResource" in statement
        actions = _as_list(statement["NotAction" if not_actions else "Action"])
        resources = _as_list(statement["NotResource" if not_resources else "Resource"])
        found.append(
            Statement(
                effect=statement["Effect"],
                actions=tuple(str(a) for a in actions),
                resources=tuple(resolve(r) for r in resources),
                not_actions=not_actions,
                not_resources=not_resources,
                conditional="Condition" in statement,
            )
        )
    return found


# ------------------------------------------------------------------ the local resources' names
class LocalResources:
    """What CloudFormation's intrinsics give for the template's resources as the local stack
    creates them: named by their logical ids (or their Name) in moto's account. A secret's ARN
    ends in a random suffix of 6 characters, which `?` stands for here."""

    def __init__(self, template: Template, region: str = REGION):
        self.template = template
        self.region = region

    def ref(self, name: str) -> str:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": ACCOUNT_ID, "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        if name in {"AWS::URLSuffix", "AWS::StackName"}:
            return {"AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "local"}[name]
        if name in self.template.parameters:
            return str(self.template.parameters[name].get("Default", ""))
        kind = self.template.resources[name]["Type"]
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT_ID}/{name}"
        if kind == "AWS::SecretsManager::Secret":
            return self._arn(kind, name)
        return name  # tables, functions, buses...: their name

    def get_att(self, name: str, attribute: str) -> str:
        kind = self.template.resources[name]["Type"]
        if attribute == "Arn":
            return self._arn(kind, name)
        if attribute in {"QueueName", "Name"}:
            return name
        if attribute == "StreamArn":
            return f"{self._arn(kind, name)}/stream/*"
        raise ValueError(f"abacus_local.iam cannot resolve !GetAtt {name}.{attribute}")

    def _arn(self, kind: str, name: str) -> str:
        prefix = {
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{self.region}:{ACCOUNT_ID}:table/",
            "AWS::SQS::Queue": f"arn:aws:sqs:{self.region}:{ACCOUNT_ID}:",
            "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{self.region}:{ACCOUNT_ID}:secret:",
            "AWS::Events::EventBus": f"arn:aws:events:{self.region}:{ACCOUNT_ID}:event-bus/",
            "AWS::Lambda::Function": f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:",
        }.get(kind)
        if prefix is None:
            raise ValueError(f"abacus_local.iam does not know the ARN of a {kind} ({name})")
        if kind == "AWS::SecretsManager::Secret":
            return f"{prefix}{secret_name(self.template, name)}-??????"
        return prefix + name

    def resolve(self, value: Any) -> str:
        """A policy's Resource, intrinsics resolved."""
        if isinstance(value, str):
            return value
        ((function, argument),) = value.items()
        if function == "Ref":
            return self.ref(argument)
        if function == "Fn::GetAtt":
            name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(name, attribute)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return self._substitute(text, {k: self.resolve(v) for k, v in variables.items()})
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(self.resolve(part) for part in parts)
        raise ValueError(f"abacus_local.iam cannot resolve {function} in a policy's resource")

    def _substitute(self, text: str, variables: dict[str, str]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return variables[name]
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return self.get_att(resource, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", one, text)


def secret_name(template: Template, logical_id: str) -> str:
    """A secret's local name: its Name (resolved), else its logical id, as tables are named."""
    name = (template.resources[logical_id].get("Properties") or {}).get("Name")
    return LocalResources(template).resolve(name) if name is not None else logical_id


# ------------------------------------------------------------------ SAM's execution roles
def sam_transform(template: Template, region: str = REGION) -> dict[str, Any]:
    """The CloudFormation template SAM deploys (its generated roles among it). Code locations
    become placeholders, as `sam validate` makes them: the translator only checks their form."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    document = copy.deepcopy(template.document)
    for resource in document["Resources"].values():
        properties = resource.get("Properties") or {}
        for location in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(location), str):
                properties[location] = "s3://local/code.zip"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    managed_arns = {name: _managed_arn(name, policy) for name, policy in managed_policies().items()}
    translated: dict[str, Any] = translator.translate(document, {}, get_managed_policy_map=lambda: managed_arns)
    return translated


@cache
def managed_policies() -> dict[str, Any]:
    """AWS's managed policies by name, as moto keeps them (its aws_managed_policies module is
    only a JSON string: read from its file, without importing the rest of moto's IAM)."""
    spec = find_spec("moto")
    assert spec is not None and spec.origin is not None, "moto is installed with the dev dependencies"
    source = (Path(spec.origin).parent / "iam" / "aws_managed_policies.py").read_text()
    namespace: dict[str, Any] = {}
    exec(compile(source, "aws_managed_policies.py", "exec"), namespace)  # noqa: S102 - moto's own data module
    policies: dict[str, Any] = json.loads(namespace["aws_managed_policies_data"])
    return policies


def _managed_arn(name: str, policy: dict[str, Any]) -> str:
    return f"arn:aws:iam::aws:policy{policy.get('Path', '/')}{name}"


def _managed_document(arn: Any) -> dict[str, Any]:
    name = str(arn).rsplit("/", 1)[-1]
    policy = managed_policies().get(name)
    if policy is None:
        raise ValueError(f"abacus_local.iam has no document for the managed policy {arn}")
    document: dict[str, Any] = policy["Document"]
    return document


def function_policies(template: Template, region: str = REGION) -> dict[str, FunctionPolicy]:
    """{function logical id: its execution role's policy}, as SAM generates the roles."""
    transformed = sam_transform(template, region)
    resources = LocalResources(template, region)
    policies = {}
    for name, resource in transformed["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role_name = resource["Properties"]["Role"]["Fn::GetAtt"][0]
        role = transformed["Resources"][role_name]["Properties"]
        documents = [policy["PolicyDocument"] for policy in role.get("Policies", [])]
        documents += [_managed_document(arn) for arn in role.get("ManagedPolicyArns", [])]
        statements = [s for document in documents for s in statements_of(document, resources.resolve)]
        policies[name] = FunctionPolicy(name, role_name, tuple(statements))
    return policies


# ------------------------------------------------------------------ a call, as IAM names it
class UnknownCall(LookupError):
    """A call of a service whose resources this module cannot name: it is never let through unchecked."""


def requested(service: str, operation: str, params: dict[str, Any], region: str) -> list[tuple[str, str]]:
    """The (action, resource ARN) pairs IAM checks for one API call."""
    if service == "dynamodb":
        return _dynamodb(operation, params, region)
    if service == "sqs":
        return [(f"sqs:{_SQS_ACTION_OF.get(operation, operation)}", _queue_arn(params, region))]
    if service == "secretsmanager":
        return [(f"secretsmanager:{operation}", _secret_arn(str(params.get("SecretId", "*")), region))]
    if service == "events":
        bus = str(params.get("Name") or "default")
        buses = {str(e.get("EventBusName") or "default") for e in params.get("Entries", [])} or {bus}
        return [(f"events:{operation}", _bus_arn(name, region)) for name in sorted(buses)]
    raise UnknownCall(f"abacus_local.iam does not know how IAM names {service}:{operation}'s resource: teach it")


def _table_arn(table: str, region: str) -> str:
    return table if table.startswith("arn:") else f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{table}"


def _dynamodb(operation: str, params: dict[str, Any], region: str) -> list[tuple[str, str]]:
    if operation in {"TransactWriteItems", "TransactGetItems"}:
        pairs = []
        for item in params["TransactItems"]:
            ((kind, request),) = item.items()
            pairs.append((f"dynamodb:{_TRANSACTION_ACTION_OF[kind]}", _table_arn(request["TableName"], region)))
        return sorted(set(pairs))
    if "RequestItems" in params:
        return [(f"dynamodb:{operation}", _table_arn(table, region)) for table in sorted(params["RequestItems"])]
    if "TableName" not in params:
        return [(f"dynamodb:{operation}", "*")]  # ListTables and the like: on no resource
    table = _table_arn(params["TableName"], region)
    resource = f"{table}/index/{params['IndexName']}" if params.get("IndexName") else table
    return [(f"dynamodb:{operation}", resource)]


def _queue_arn(params: dict[str, Any], region: str) -> str:
    if "QueueUrl" in params:
        account, name = urlparse(params["QueueUrl"]).path.strip("/").split("/")[-2:]
        return f"arn:aws:sqs:{region}:{account}:{name}"
    if "QueueName" in params:
        return f"arn:aws:sqs:{region}:{params.get('QueueOwnerAWSAccountId', ACCOUNT_ID)}:{params['QueueName']}"
    return "*"


# A secret asked for by name is checked by its ARN, as IAM does: the ARNs of the secrets created.
_secret_arns: dict[str, str] = {}


def register_secret(arn: str) -> None:
    """Records a created secret's ARN (name-suffix), so that a call naming it by name is checked by it."""
    _secret_arns[arn.rsplit(":", 1)[-1].rsplit("-", 1)[0]] = arn


def _secret_arn(secret_id: str, region: str) -> str:
    if secret_id.startswith("arn:"):
        return secret_id
    return _secret_arns.get(secret_id, f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:{secret_id}")


def _bus_arn(name: str, region: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:events:{region}:{ACCOUNT_ID}:event-bus/{name}"


# ------------------------------------------------------------------ who is calling
_acting = threading.local()
_process_function: str | None = None


def current() -> str | None:
    """The function this thread acts as: its own, else the process's (a local execution
    environment is one function's), else None (a test or the stack itself: not checked)."""
    return getattr(_acting, "function", None) or _process_function


@contextmanager
def acting_as(function: str | None) -> Iterator[None]:
    """Calls made in this block are `function`'s (None: nobody's, unchecked)."""
    outer = getattr(_acting, "function", None)
    _acting.function = function
    try:
        yield
    finally:
        _acting.function = outer


def act_as_process(function: str) -> None:
    """Every call of this process (every thread) is `function`'s: a local execution environment."""
    global _process_function
    _process_function = function


def threads_inherit_identity() -> None:
    """A thread started while acting as a function acts as it too (a handler's pools of requests):
    for tests, where handlers of several functions share one process."""
    original_start = threading.Thread.start
    if getattr(original_start, "inherits_identity", False):
        return

    def start(thread: threading.Thread) -> None:
        creator, run = getattr(_acting, "function", None), thread.run

        def run_as_creator() -> None:
            with acting_as(creator):
                run()

        thread.run = run_as_creator  # type: ignore[method-assign]
        original_start(thread)

    start.inherits_identity = True  # type: ignore[attr-defined]
    threading.Thread.start = start  # type: ignore[method-assign, assignment]


# ------------------------------------------------------------------ enforcement
@dataclass(frozen=True)
class Denial:
    function: str
    action: str
    resource: str

    def __str__(self) -> str:
        return (
            f"AccessDenied: {self.function} may not {self.action} on {self.resource} (template.yaml does not grant it)"
        )


denials: list[Denial] = []  # every call refused in this process, in order
_denials_lock = threading.Lock()


def access_denied(policy: FunctionPolicy, action: str, resource: str, operation: str) -> Exception:
    """The error AWS gives for a call IAM refuses."""
    from botocore.exceptions import ClientError

    service = action.split(":", 1)[0]
    code, status = ("AccessDenied", 403) if service == "sqs" else ("AccessDeniedException", 400)
    message = (
        f"User: {policy.principal} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


def install(
    policies: Callable[[], dict[str, FunctionPolicy]],
    report: Callable[[Denial], None] = lambda denial: print(denial, file=sys.stderr, flush=True),
) -> None:
    """Checks every botocore call made while acting as a function against its policy (from
    `policies()`, read at the first checked call). Installed once per process."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call  # type: ignore[attr-defined]
    if getattr(original, "checks_iam", False):
        return

    def checked(client: Any, operation: str, params: dict[str, Any]) -> Any:
        function = current()
        if function is not None:
            policy = policies().get(function)
            if policy is None:
                raise LookupError(f"template.yaml has no function {function}")
            service, region = client.meta.service_model.service_name, client.meta.region_name or REGION
            for action, resource in requested(service, operation, params, region):
                if not policy.allows(action, resource):
                    denial = Denial(function, action, resource)
                    with _denials_lock:
                        denials.append(denial)
                    report(denial)
                    raise access_denied(policy, action, resource, operation)
        return original(client, operation, params)

    checked.checks_iam = True  # type: ignore[attr-defined]
    BaseClient._make_api_call = checked  # type: ignore[attr-defined]
