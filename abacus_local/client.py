"""A small HTTP client for the Abacus API (used by the demo and the end-to-end tests)."""

import json
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config

from abacus.core.timeouts import GATEWAY_TIMEOUT_SECONDS

# How long a client waits for an answer. API Gateway answers every request within its timeout (a
# recompute waits RECOMPUTE_WAIT_SECONDS of it for its run); the local stack cuts no request off
# there, so a loaded machine gets as long again before a client gives up.
REQUEST_TIMEOUT_S = 2 * GATEWAY_TIMEOUT_SECONDS


class ApiError(Exception):
    def __init__(self, status: int, body: dict):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class AbacusClient:
    def __init__(
        self,
        base_url: str,
        admin_key: str | None = None,
        token: str | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
    ):
        self.base_url = base_url.rstrip("/")
        self.admin_key = admin_key
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict | None = None, admin: bool = False) -> tuple[int, dict]:
        """(status, decoded JSON body) of one request; never raises for an HTTP error status."""
        headers = {"content-type": "application/json"}
        if admin and self.admin_key:
            headers["authorization"] = f"Bearer {self.admin_key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - our own URL
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def call(self, method: str, path: str, body: dict | None = None, admin: bool = False) -> dict:
        """The decoded body of a 2xx answer; ApiError otherwise."""
        status, answer = self.request(method, path, body, admin)
        if not 200 <= status < 300:
            raise ApiError(status, answer)
        return answer

    # Admin
    def create_experiment(self, spec: dict) -> dict:
        return self.call("POST", "/experiments", spec, admin=True)

    def launch(self, key: str, started_at: datetime | None = None) -> dict:
        body = {"started_at": started_at.isoformat()} if started_at else None
        return self.call("POST", f"/experiments/{key}/launch", body, admin=True)

    def stop(self, key: str) -> dict:
        return self.call("POST", f"/experiments/{key}/stop", admin=True)

    def results(self, key: str) -> dict:
        return self.call("GET", f"/experiments/{key}/results", admin=True)

    # Apps
    def assign(
        self,
        distinct_id: str,
        experiments: list[str] | None = None,
        expose: bool | None = None,
        properties: dict | None = None,
    ) -> dict:
        """The variants; exposed (by default) to the experiments named, to none without them."""
        body: dict[str, Any] = {"token": self.token, "distinct_id": distinct_id, "properties": properties or {}}
        if expose is not None:
            body["expose"] = expose
        if experiments is not None:
            body["experiments"] = experiments
        return self.call("POST", "/assign", body)["assignments"]

    def send_events(self, events: list[dict]) -> dict:
        return self.call("POST", "/events", {"token": self.token, "events": events})


def lambda_client(url: str | None) -> Any:
    """A Lambda client that waits as long as a function may run (ResultsFunction's Timeout) and
    never retries: a retry would run the invocation twice. With a URL, the local stack's Invoke
    API (it checks no signature); without, AWS's, with the environment's credentials."""
    config = Config(read_timeout=900, retries={"total_max_attempts": 1})
    if url is None:
        return boto3.client("lambda", config=config)
    return boto3.client(
        "lambda",
        region_name="us-east-1",
        endpoint_url=url,
        config=config,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local stack checks no signature
    )
