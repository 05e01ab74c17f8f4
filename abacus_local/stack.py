"""Starting the whole local stack: moto as DynamoDB, SQS and Secrets Manager, the tables, queues and
secrets, a project, the gateway, and the functions' SQS event source mappings."""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from abacus.storage.local_endpoint import LOCAL_CREDENTIALS, LOCAL_REGION
from abacus_local import iam
from abacus_local.event_sources import QueuePoller
from abacus_local.gateway import Gateway
from abacus_local.lambdas import LocalFunction, close_all
from abacus_local.queues import create_queues
from abacus_local.schedules import RateSchedule, rate_schedules
from abacus_local.secretsmanager import create_secrets
from abacus_local.template import FunctionSpec, Template

REGION = LOCAL_REGION
PR_SET_PDEATHSIG = 1
# Documented in the README's quickstart and docs/local-stack.md; override with ABACUS_TOKEN, ABACUS_ADMIN_KEY
# and ABACUS_FLAGS_KEY.
DEV_TOKEN = "phc_local_dev"  # noqa: S105 - the documented local development token
DEV_ADMIN_KEY = "abacus_local_admin"
DEV_FLAGS_KEY = "phs_local_dev"
DEV_PROJECT_ID = "local"
# How many times its Timeout a function may run here before it is stopped. The local DynamoDB is
# moto: about 15 ms of CPU a request (an exposure's UpdateItem, measured), one request at a time,
# where DynamoDB answers in a few ms, in parallel. A POST /events of 190 first exposures takes
# 2.4 s here on an idle machine, and more than the 10 s Timeout when two other processes keep
# both cores busy (a test run's other worker), though it takes well under a second in AWS. The
# handler still sees its own Timeout (the context's remaining time), so work that budgets by
# it behaves as deployed; an invocation that never ends is still stopped.
TIMEOUT_SLACK = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _end_with_parent() -> None:
    """Linux: the moto server gets SIGTERM when the stack's process dies, even by SIGKILL."""
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Credentials:
    project_id: str
    token: str
    admin_key: str
    flags_key: str


class LocalStack:
    """`with LocalStack(port) as stack:` runs everything on loopback until the block ends."""

    def __init__(
        self,
        port: int | None = None,
        log_level: str | None = None,
        metrics: bool = True,
        cache_seconds: int | None = None,
    ):
        self.port = port if port is not None else int(os.environ.get("ABACUS_PORT", "3000"))
        self.log_level = log_level or os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO")
        # Changes show at once locally (no cache), unless said otherwise here or in ABACUS_CACHE_SECONDS.
        self.cache_seconds = (
            str(cache_seconds) if cache_seconds is not None else os.environ.get("ABACUS_CACHE_SECONDS", "0")
        )
        self.metrics = metrics
        self.template = Template()
        self.credentials = Credentials(
            DEV_PROJECT_ID,
            os.environ.get("ABACUS_TOKEN", DEV_TOKEN),
            os.environ.get("ABACUS_ADMIN_KEY", DEV_ADMIN_KEY),
            os.environ.get("ABACUS_FLAGS_KEY", DEV_FLAGS_KEY),
        )
        self._moto: subprocess.Popen[bytes] | None = None
        self.queue_urls: dict[str, str] = {}
        self.secret_arns: dict[str, str] = {}
        self.pollers: list[QueuePoller] = []
        self.schedules: list[RateSchedule] = []
        self.gateway: Gateway | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.dynamodb_url = ""

    @property
    def url(self) -> str:
        assert self.gateway is not None, "the stack is not started"
        return self.gateway.url

    def client_environment(self) -> dict[str, str]:
        """What an AWS tool or SDK (the AWS CLI, boto3, `python -m abacus`) needs to reach this stack:
        its region, placeholder credentials (moto and the local Invoke API take any), the
        endpoints of its DynamoDB, SQS and Lambda Invoke API, and the nightly job's queue (where
        `python -m abacus results --recompute` sends its work)."""
        return {
            "AWS_REGION": REGION,  # the AWS CLI v2's and Lambda's
            "AWS_DEFAULT_REGION": REGION,  # boto3's and the AWS CLI v1's
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_url,
            "AWS_ENDPOINT_URL_SQS": self.dynamodb_url,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.dynamodb_url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": self.dynamodb_url,
            "AWS_ENDPOINT_URL_LAMBDA": self.url,
            "NIGHTLY_QUEUE_URL": self.queue_urls["NightlyWorkQueue"],
        }

    def outputs(self) -> dict[str, str]:
        """The template's Outputs for this stack (ApiUrl, the tables' and functions' names), as
        CloudFormation gives them for a deployed one."""
        return self.template.outputs(self.url)

    def __enter__(self) -> "LocalStack":
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        moto_port = free_port()
        self.dynamodb_url = f"http://127.0.0.1:{moto_port}"
        # Its own process: moto then does not share this process's interpreter lock with the functions.
        self._moto = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "abacus_local.moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_end_with_parent,
        )
        self._wait_for_moto()
        self._create_queues()
        self._create_buses()
        self._create_secrets()
        self._configure_environment()
        self._create_tables()
        self._create_project()
        # Each function runs under its execution role's policy, as SAM deploys it (abacus_local.iam).
        policies = iam.function_policies(self.template, REGION)
        iam.install(lambda: policies, report=lambda denial: print(denial, flush=True))  # the queues' pollers
        self.functions = {
            name: LocalFunction(
                spec,
                REGION,
                {**self._variables(spec), **self._local_settings()},
                policy=policies[name].to_json(),
                timeout_slack=TIMEOUT_SLACK,
            )
            for name, spec in self.template.functions().items()
        }
        self._start_event_sources()
        cors_policy = self.template.cors(os.environ.get("ABACUS_ALLOWED_ORIGINS"))
        self.gateway = Gateway(("127.0.0.1", self.port), self.template.routes(), self.functions, cors_policy)
        threading.Thread(target=self.gateway.serve_forever, name="abacus-gateway", daemon=True).start()

    def stop(self) -> None:
        for schedule in self.schedules:
            schedule.stop()
        for poller in self.pollers:
            poller.stop()
        if self.gateway is not None:
            self.gateway.shutdown()
            self.gateway.server_close()
        close_all(list(self.functions.values()))
        if self._moto is not None:
            self._moto.terminate()
            try:
                self._moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # moto's SIGTERM handler exits through the interpreter, which waits for requests
                # still being answered (a long Query on a busy machine); its data dies with it anyway.
                self._moto.kill()
                self._moto.wait(timeout=10)

    def wait_for_queues(self, timeout_s: float = 300) -> None:
        """Waits until every queue's work is done (the nightly job's runs, after its planner)."""
        for poller in self.pollers:
            poller.wait_until_idle(timeout_s)

    def _wait_for_moto(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        assert self._moto is not None, "moto is not started"
        while time.monotonic() < deadline:
            if self._moto.poll() is not None:
                raise RuntimeError("the moto server exited at start")
            try:
                urllib.request.urlopen(self.dynamodb_url + "/moto-api/", timeout=1).close()  # noqa: S310
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the moto server did not answer on {self.dynamodb_url}")

    def _local_settings(self) -> dict[str, str]:
        """What the local stack sets on top of the template's variables: the local moto server as
        DynamoDB, its credentials, and the settings a developer may override."""
        return {
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_url,
            "AWS_ENDPOINT_URL_SQS": self.dynamodb_url,  # moto's server answers every service
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.dynamodb_url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": self.dynamodb_url,
            # Alerts link to the console here, and may go to a receiver on this machine (http://127.0.0.1).
            "ABACUS_API_URL": f"http://127.0.0.1:{self.port}",
            "ABACUS_ALLOW_LOCAL_WEBHOOKS": "true",
            "ABACUS_CACHE_SECONDS": self.cache_seconds,
            # How far ahead a bandit's new phase begins (experiments/bandit_weights.py), when set.
            **({"ABACUS_BANDIT_LEAD_SECONDS": lead} if (lead := os.environ.get("ABACUS_BANDIT_LEAD_SECONDS")) else {}),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": self.log_level,
            "POWERTOOLS_METRICS_DISABLED": "false" if self.metrics else "true",
        }

    def _configure_environment(self) -> None:
        """This process creates the tables and the project: it needs the table names and the local
        endpoint too (the functions get theirs in their own processes)."""
        for spec in self.template.functions().values():
            os.environ.update(self._variables(spec))
        os.environ.update({"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, **self._local_settings()})

    def _variables(self, spec: FunctionSpec) -> dict[str, str]:
        """A function's template variables, a `!Ref` to a queue made its local URL and one to a
        secret its ARN (as deployed)."""
        local = {**self.queue_urls, **self.secret_arns}
        return {name: local.get(value, value) for name, value in spec.environment.items()}

    def _sqs(self) -> Any:
        import boto3

        return boto3.client(
            "sqs",
            region_name=REGION,
            endpoint_url=self.dynamodb_url,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def _secretsmanager(self) -> Any:
        import boto3

        return boto3.client(
            "secretsmanager",
            region_name=REGION,
            endpoint_url=self.dynamodb_url,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def _create_queues(self) -> None:
        self.queue_urls = create_queues(self.template, self._sqs(), REGION)

    def _create_buses(self) -> None:
        import boto3

        from abacus_local.buses import create_buses

        create_buses(
            self.template,
            boto3.client(
                "events",
                region_name=REGION,
                endpoint_url=self.dynamodb_url,
                aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            ),
        )

    def _create_secrets(self) -> None:
        self.secret_arns = create_secrets(self.template, self._secretsmanager())

    def _start_event_sources(self) -> None:
        """Each SQS event of the template polled as Lambda's event source mapping polls it, at most
        as many at once as its MaximumConcurrency or the function's local environments allow; and
        each rate(...) Schedule event fired (abacus_local.schedules)."""

        def report(name: str) -> Callable[[Exception], None]:
            return lambda error: print(f"{name}: {error}", file=sys.stderr, flush=True)

        for mapping in self.template.queue_mappings():
            function = self.functions[mapping.function]
            concurrency = min(mapping.maximum_concurrency, function.max_environments)
            poller = QueuePoller(
                replace(mapping, maximum_concurrency=concurrency),
                self._sqs(),
                self.queue_urls[mapping.queue],
                REGION,
                function.invoke,
                on_error=report(mapping.function),
            )
            self.pollers.append(poller.start())
        # The rate(...) schedules fire as EventBridge fires them (ABACUS_LOCAL_RATE_SECONDS: more often).
        every = os.environ.get("ABACUS_LOCAL_RATE_SECONDS")
        expressions = {
            name: str(self.template.resolve(props["Schedule"])) for name, props in self.template.schedules().items()
        }
        invokers = {name: function.invoke for name, function in self.functions.items()}
        self.schedules = rate_schedules(expressions, REGION, invokers, float(every) if every else None, report)
        for schedule in self.schedules:
            schedule.start()

    def _create_tables(self) -> None:
        import boto3

        from abacus_local.dynamodb import create_tables

        create_tables(self.template, boto3.client("dynamodb", region_name=REGION, endpoint_url=self.dynamodb_url))

    def _create_project(self) -> None:
        # Imported only now: abacus reads table names and the endpoint from the environment.
        from abacus import projects

        projects.create(
            "Local development",
            project_id=self.credentials.project_id,
            token=self.credentials.token,
            admin_key=self.credentials.admin_key,
            flags_key=self.credentials.flags_key,
        )
