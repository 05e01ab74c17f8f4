"""One execution environment of a function: a process of its own, as in Lambda.

`python -m abacus_local.runtime` is started by `abacus_local.lambdas` with the function's
environment variables. It puts the function's code and layers on the path (and only those of the
project's folders: AssignFunction cannot import the stats layer here either), imports the
handler (the cold start), says it is ready, then takes one invocation at a time from its request
pipe and writes each answer to its response pipe, until the pipe closes. Logs go to stdout and
stderr, as a function's go to CloudWatch.
"""

import argparse
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from abacus_local import frames, iam
from abacus_local.lambdas import LocalContext
from abacus_local.template import ROOT

Handler = Callable[[Any, LocalContext], Any]


def isolate_path(code_dir: Path, layers: list[Path]) -> None:
    """sys.path as Lambda builds it for this function: its code, then its layers, then the
    runtime's packages. The development venv puts every layer and the project root on the path;
    those entries go, so that an import the deployed function could not make fails here too."""
    development = {ROOT, *(ROOT / "layers").iterdir()}
    installed = [entry for entry in sys.path if entry and Path(entry).resolve() not in development]
    sys.path[:] = [str(code_dir), *(str(layer) for layer in layers), *installed]


def error_payload(error: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """An error as Lambda's runtime reports it."""
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "stackTrace": traceback.format_exception(error)[1:],
    }


def load_handler(handler: str) -> Handler:
    module_name, _, attribute = handler.rpartition(".")
    module = importlib.import_module(module_name)
    found: Handler = getattr(module, attribute)
    return found


def answer(handler: Handler, request: dict[str, Any], function: dict[str, Any]) -> dict[str, Any]:
    context = LocalContext(
        function["name"], function["memory_mb"], function["timeout_s"], function["region"], request["request_id"]
    )
    try:
        result = handler(request["event"], context)
    except Exception as error:  # noqa: BLE001 - reported to the caller, as Lambda reports it
        traceback.print_exc()
        return {"error": error_payload(error)}
    try:
        return {"result": json.loads(json.dumps(result))}
    except (TypeError, ValueError) as error:
        return {"error": error_payload(error, "Runtime.MarshalError")}


def enforce_policy(function: dict[str, Any]) -> None:
    """Every AWS call of this environment passes its function's IAM policy, or fails as IAM
    refuses it; each refusal is reported on stdout, where the function's logs go."""
    if function.get("policy") is None:
        return
    policy = iam.FunctionPolicy.from_json(function["policy"])
    iam.install(lambda: {policy.function: policy}, report=lambda denial: print(denial, flush=True))
    iam.act_as_process(policy.function)


def serve(requests: int, responses: int, function: dict[str, Any]) -> None:
    enforce_policy(function)  # before the project's folders leave the path, and before the handler's init
    isolate_path(Path(function["code_dir"]), [Path(layer) for layer in function["layers"]])
    try:
        handler: Handler | None = load_handler(function["handler"])
        init_error = None
    except Exception as error:  # noqa: BLE001 - every invocation answers it, as Lambda does
        traceback.print_exc()
        handler, init_error = None, error_payload(error, "Runtime.ImportModuleError")
    frames.write(responses, {"ready": True})
    while (request := frames.read(requests)) is not None:
        if handler is None:
            frames.write(responses, {"error": init_error})
            continue
        frames.write(responses, answer(handler, request, function))
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m abacus_local.runtime")
    parser.add_argument("--requests", type=int, required=True, help="file descriptor invocations arrive on")
    parser.add_argument("--responses", type=int, required=True, help="file descriptor answers go to")
    args = parser.parse_args()
    function = json.loads(os.environ.pop("ABACUS_LOCAL_FUNCTION"))
    serve(args.requests, args.responses, function)
    # Lambda ends an environment without the interpreter's teardown, which takes seconds on a busy
    # machine; nothing is left to save once the output is flushed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
