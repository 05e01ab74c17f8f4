"""Running the functions' handlers in this process. Like Lambda, each function has execution
environments that take one invocation at a time; a busy function gets another environment (its
handler module imported afresh: a cold start) up to a concurrency limit."""

import importlib.util
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from types import ModuleType

from abacus_local.template import FunctionSpec

ACCOUNT_ID = "123456789012"


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


class LocalFunction:
    """A function of the template, its handler imported from its CodeUri."""

    def __init__(self, spec: FunctionSpec, region: str, max_environments: int = 4):
        self.spec = spec
        self.region = region
        self.max_environments = max_environments
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._created = 0
        self._lock = threading.Lock()

    def _load(self):
        path = self.spec.code_dir / f"{self.spec.module.replace('.', '/')}.py"
        name = f"{self.spec.logical_id}_{self.spec.module}_{self._created}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"no Python module at {path}")
        module: ModuleType = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return getattr(module, self.spec.attribute)

    def _acquire(self):
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._created < self.max_environments:
                self._created += 1
                return self._load()
        return self._idle.get()

    def invoke(self, event: dict):
        handler = self._acquire()
        try:
            context = LocalContext(self.spec.logical_id, self.spec.memory_mb, self.spec.timeout, self.region)
            return handler(event, context)
        finally:
            self._idle.put(handler)


def load_handler(spec: FunctionSpec):
    """The handler callable of `spec`, imported fresh (for tests)."""
    return LocalFunction(spec, region="us-east-1")._load()
