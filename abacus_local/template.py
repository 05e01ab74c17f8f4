"""Reading template.yaml: its tables, functions, routes and environment, as the local stack needs them."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class QueueMapping:
    """An SQS event of a function in the template."""

    function: str
    queue: str  # the queue's logical id
    batch_size: int
    maximum_concurrency: int
    report_batch_item_failures: bool


ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"


# libyaml's parser where PyYAML was built with it (the same document, eight times faster: every
# Template() of the local stack and the tests parses template.yaml).
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """A YAML loader that reads CloudFormation's short tags (!Ref, !GetAtt, !Sub...) as their long form."""


def _construct_tag(loader: yaml.SafeLoader | yaml.CSafeLoader, tag_suffix: str, node: yaml.Node) -> dict:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)  # YAML has no fourth kind of node
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass(frozen=True)
class Route:
    function: str
    method: str
    path: str
    pattern: re.Pattern = field(compare=False)

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    module: str
    attribute: str
    timeout: int
    memory_mb: int
    environment: dict[str, str]
    # The source folders of its layers, in order (each is what the layer puts in /opt/python).
    layers: tuple[Path, ...] = ()


@dataclass(frozen=True)
class CorsPolicy:
    """An HttpApi's CorsConfiguration, as API Gateway applies it to every route."""

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.allow_origins or origin.lower() in (o.lower() for o in self.allow_origins)


class Template:
    def __init__(self, document: dict | None = None):
        self.document = document if document is not None else load_template()
        self.resources: dict = self.document["Resources"]
        self.parameters: dict = self.document.get("Parameters", {})

    def resolve(self, value):
        """Resolves the intrinsics the local stack meets: Ref to a parameter (its default) or to a
        resource (its logical id, which is the local physical name). Anything else stays None."""
        if isinstance(value, dict) and "Ref" in value:
            name = value["Ref"]
            if name in self.parameters:
                return str(self.parameters[name].get("Default", ""))
            return name if name in self.resources else None
        return None if isinstance(value, dict) else value

    def of_type(self, resource_type: str) -> dict:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def tables(self) -> dict:
        return self.of_type("AWS::DynamoDB::Table")

    def functions(self) -> dict[str, FunctionSpec]:
        globals_ = self.document.get("Globals", {}).get("Function", {})
        specs = {}
        for name, resource in self.of_type("AWS::Serverless::Function").items():
            props = {**globals_, **resource["Properties"]}
            # SAM appends a function's Layers to the global ones.
            layers = [*globals_.get("Layers", []), *resource["Properties"].get("Layers", [])]
            variables = {
                **globals_.get("Environment", {}).get("Variables", {}),
                **resource["Properties"].get("Environment", {}).get("Variables", {}),
            }
            module, _, attribute = props["Handler"].rpartition(".")
            specs[name] = FunctionSpec(
                logical_id=name,
                code_dir=ROOT / props["CodeUri"],
                module=module,
                attribute=attribute,
                timeout=int(props.get("Timeout", 3)),
                memory_mb=int(props.get("MemorySize", 128)),
                environment={
                    k: str(v) for k, v in ((k, self.resolve(v)) for k, v in variables.items()) if v is not None
                },
                layers=tuple(self.layer_source(layer) for layer in layers),
            )
        return specs

    def outputs(self, api_url: str) -> dict[str, str]:
        """The stack's Outputs as the local stack has them: references resolved to local names,
        and the API's URL (a `!Sub` of the HttpApi) the local gateway's."""
        resolved = {}
        for name, output in self.document.get("Outputs", {}).items():
            value = output["Value"]
            if isinstance(value, dict) and "${HttpApi}" in str(value.get("Fn::Sub", "")):
                resolved[name] = api_url.rstrip("/") + "/"
            elif (local := self.resolve(value)) is not None:
                resolved[name] = str(local)
        return resolved

    def layer_source(self, reference: dict) -> Path:
        """The source folder of a layer the template references (`!Ref SomeLayer`)."""
        return ROOT / self.resources[reference["Ref"]]["Properties"]["ContentUri"]

    def cors(self, allowed_origins: str | None = None) -> CorsPolicy | None:
        """The HttpApi's CORS configuration (None without one); `allowed_origins` (comma-separated)
        overrides the origins as a parameter override would."""
        apis = self.of_type("AWS::Serverless::HttpApi")
        config = next(iter(apis.values()))["Properties"].get("CorsConfiguration") if apis else None
        if not config:
            return None
        origins = config.get("AllowOrigins", [])
        if isinstance(origins, dict):  # a Ref to a CommaDelimitedList parameter
            origins = (self.resolve(origins) or "").split(",")
        if allowed_origins:
            origins = allowed_origins.split(",")

        def names(key: str) -> tuple[str, ...]:
            return tuple(str(v).strip().lower() for v in config.get(key, []))

        return CorsPolicy(
            allow_origins=tuple(o.strip() for o in origins if o.strip()),
            allow_methods=tuple(m.upper() for m in names("AllowMethods")),
            allow_headers=names("AllowHeaders"),
            expose_headers=names("ExposeHeaders"),
            max_age=int(config["MaxAge"]) if "MaxAge" in config else None,
            allow_credentials=bool(config.get("AllowCredentials", False)),
        )

    def routes(self) -> list[Route]:
        """Every HttpApi route, the most specific first (fewest path parameters)."""
        routes = []
        for name, resource in self.of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] != "HttpApi":
                    continue
                path, method = event["Properties"]["Path"], event["Properties"]["Method"].upper()
                routes.append(Route(name, method, path, _path_pattern(path)))
        return sorted(routes, key=lambda r: (r.path.count("{"), -len(r.path)))

    def queue_mappings(self) -> list[QueueMapping]:
        """Every function's SQS event (its event source mapping), with Lambda's defaults."""
        found = []
        for name, resource in self.of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] != "SQS":
                    continue
                props = event["Properties"]
                concurrency = (props.get("ScalingConfig") or {}).get("MaximumConcurrency", 2)
                found.append(
                    QueueMapping(
                        function=name,
                        queue=str(props["Queue"]["Fn::GetAtt"][0]),
                        batch_size=int(props.get("BatchSize", 10)),
                        maximum_concurrency=int(self.resolve(concurrency) or 2),
                        report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                    )
                )
        return found

    def schedules(self) -> dict[str, dict]:
        """{function logical id: its Schedule event's properties}."""
        found = {}
        for name, resource in self.of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] == "Schedule":
                    found[name] = event["Properties"]
        return found


def _path_pattern(path: str) -> re.Pattern:
    """/experiments/{key} -> a regex with a named group per parameter; {name+} is greedy."""
    regex = ""
    for literal, name, greedy in re.findall(r"([^{]*)(?:\{(\w+)(\+?)\})?", path):
        regex += re.escape(literal)
        if name:
            regex += f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)"
    return re.compile(f"^{regex}$")
