"""Running the template's functions locally as Lambda runs them: each function has execution
environments, each a process of its own (`abacus_local.runtime`: own memory, own cold start, the
function's own environment variables and layers) that takes one invocation at a time. A busy
function gets another environment, up to a concurrency limit; an invocation that outlives the
function's Timeout (times `timeout_slack`, below) is stopped and its environment discarded, as
Lambda does."""

import importlib.util
import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from abacus_local import frames
from abacus_local.template import ROOT, FunctionSpec

ACCOUNT_ID = "123456789012"
# Lambda gives a function's initialisation 10 s; a local machine under load may need more.
INIT_LIMIT_S = 120
# How long an environment told to end may take before it is killed.
STOP_GRACE_S = 5


@dataclass
class LocalContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    region: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self.started)) * 1000))


class FunctionError(Exception):
    """The function failed: its handler raised, it timed out or its process died. `payload` is
    what Lambda returns for it ({"errorMessage", "errorType", ...})."""

    def __init__(self, payload: dict[str, Any]):
        super().__init__(f"{payload.get('errorType')}: {payload.get('errorMessage')}")
        self.payload = payload


def lambda_environment(spec: FunctionSpec, region: str, variables: dict[str, str]) -> dict[str, str]:
    """The environment a deployed function's process gets: Lambda's own variables, then the
    function's (template and local settings). Nothing else of this process's environment but
    what a Python process needs to start."""
    passed = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    return {
        **passed,
        "PYTHONPATH": str(ROOT),  # for abacus_local.runtime itself; it takes the project off the path
        "TZ": ":UTC",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.logical_id}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        **variables,
    }


class ExecutionEnvironment:
    """One process running one function; `invoke` sends it one event at a time."""

    def __init__(
        self,
        spec: FunctionSpec,
        region: str,
        environment: dict[str, str],
        policy: dict[str, Any] | None = None,
        timeout_slack: float = 1.0,
    ):
        self.spec = spec
        self.region = region
        # The handler sees its Timeout (the context's remaining time); it is stopped after this.
        self.limit_s = spec.timeout * timeout_slack
        requests_read, self._requests = os.pipe()
        self._responses, responses_write = os.pipe()
        description = {
            "name": spec.logical_id,
            "handler": f"{spec.module}.{spec.attribute}",
            "code_dir": str(spec.code_dir),
            "layers": [str(layer) for layer in spec.layers],
            "memory_mb": spec.memory_mb,
            "timeout_s": spec.timeout,
            "region": region,
            # Its execution role's policy (abacus_local.iam), which every AWS call it makes must pass.
            "policy": policy,
        }
        command = [sys.executable, "-m", "abacus_local.runtime"]
        command += ["--requests", str(requests_read), "--responses", str(responses_write)]
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            env={**environment, "ABACUS_LOCAL_FUNCTION": json.dumps(description)},
            cwd=spec.code_dir,
            stdin=subprocess.DEVNULL,
            pass_fds=(requests_read, responses_write),
        )
        os.close(requests_read)
        os.close(responses_write)
        self.alive = True
        try:
            self._receive(INIT_LIMIT_S, "initialisation")
        except FunctionError:
            self.close()
            raise

    def invoke(self, event: Any) -> Any:
        request_id = str(uuid.uuid4())
        try:
            frames.write(self._requests, {"event": event, "request_id": request_id})
        except OSError:
            self.close()
            raise FunctionError(self._exit_error()) from None
        answer = self._receive(self.limit_s, request_id)
        if "error" in answer:
            raise FunctionError(answer["error"])
        return answer["result"]

    def _receive(self, limit_s: float, request_id: str) -> dict[str, Any]:
        ready, _, _ = select.select([self._responses], [], [], limit_s)
        if not ready:
            self.process.kill()  # as Lambda stops a function that outlives its timeout
            self.close()
            message = f"{request_id} Task timed out after {limit_s:.2f} seconds"
            raise FunctionError({"errorMessage": message, "errorType": "Sandbox.Timedout"})
        answer = frames.read(self._responses)
        if answer is None:
            self.close()
            raise FunctionError(self._exit_error())
        return answer

    def _exit_error(self) -> dict[str, Any]:
        code = self.process.wait(timeout=10)
        return {"errorMessage": f"RequestId: the runtime exited with status {code}", "errorType": "Runtime.ExitError"}

    def close(self) -> None:
        """Ends the process (Lambda's shutdown of an environment)."""
        self.end()
        self.reap(time.monotonic() + STOP_GRACE_S)

    def end(self) -> None:
        """Tells the process to end: its runtime's loop stops at the closed request pipe."""
        if self.alive:
            self.alive = False
            os.close(self._requests)

    def reap(self, deadline: float) -> None:
        """Waits for the process to end until `deadline` (time.monotonic()), then kills it."""
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._responses >= 0:
            os.close(self._responses)
            self._responses = -1


class LocalFunction:
    """A function of the template and its execution environments (at most `max_environments`;
    an invocation that finds them all busy waits for one). `timeout_slack` stretches only the
    point where an invocation is stopped (abacus_local.stack says why the local stack needs it);
    the handler's context still counts down its own Timeout."""

    def __init__(
        self,
        spec: FunctionSpec,
        region: str,
        environment: dict[str, str],
        max_environments: int = 4,
        policy: dict[str, Any] | None = None,
        timeout_slack: float = 1.0,
    ):
        self.spec = spec
        self.timeout_slack = timeout_slack
        self.region = region
        self.policy = policy
        self.environment = lambda_environment(spec, region, environment)
        self.max_environments = max_environments
        self._idle: list[ExecutionEnvironment] = []
        self._all: set[ExecutionEnvironment] = set()
        self._starting = 0
        self._changed = threading.Condition()
        self._closed = False

    def invoke(self, event: Any) -> Any:
        """The handler's result, or FunctionError."""
        environment = self._acquire()
        try:
            return environment.invoke(event)
        finally:
            self._release(environment)

    def _acquire(self) -> ExecutionEnvironment:
        with self._changed:
            while not self._idle and len(self._all) + self._starting >= self.max_environments:
                self._changed.wait()
            if self._idle:
                return self._idle.pop()  # the most recently used: warm
            self._starting += 1
        try:
            # A cold start, outside the lock: other invocations go on meanwhile.
            environment = ExecutionEnvironment(
                self.spec, self.region, self.environment, self.policy, self.timeout_slack
            )
        finally:
            with self._changed:
                self._starting -= 1
                self._changed.notify()
        with self._changed:
            self._all.add(environment)
        return environment

    def _release(self, environment: ExecutionEnvironment) -> None:
        with self._changed:
            if environment.alive and not self._closed:
                self._idle.append(environment)
            else:
                environment.close()
                self._all.discard(environment)
            self._changed.notify()

    def close(self) -> list[ExecutionEnvironment]:
        """Tells every idle environment to end and returns them, to be reaped (busy ones end when
        their invocation does)."""
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            for environment in idle:
                self._all.discard(environment)
        for environment in idle:
            environment.end()
        return idle


def close_all(functions: list[LocalFunction]) -> None:
    """Ends every idle environment of the functions, all at once rather than one after another."""
    ending = [environment for function in functions for environment in function.close()]
    deadline = time.monotonic() + STOP_GRACE_S
    for environment in ending:
        environment.reap(deadline)


def load_handler(spec: FunctionSpec) -> Callable[[Any, Any], Any]:
    """The handler callable of `spec`, imported into this process (for tests and benchmarks that
    drive a handler directly under moto's in-process mock)."""
    path = spec.code_dir / f"{spec.module.replace('.', '/')}.py"
    module_spec = importlib.util.spec_from_file_location(f"{spec.logical_id}_{spec.module}", path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"no Python module at {path}")
    module: ModuleType = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    handler: Callable[[Any, Any], Any] = getattr(module, spec.attribute)
    return handler
