"""One webhook POST: to the address destinations.check found public (TLS still checks the
certificate against the URL's host), no redirect followed, at most TIMEOUT_SECONDS. A 2xx is
delivered; anything else (another status, no answer) is a failure the queue retries."""

import http.client
import socket
import ssl
from dataclasses import dataclass

from abacus.alerts.destinations import Destination

TIMEOUT_SECONDS = 10
ANSWER_READ = 1024  # of a receiver's answer: enough for an error's first words


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _PinnedHTTPS(http.client.HTTPSConnection):
    """Connects to the checked address, not to whatever the host resolves to now."""

    def __init__(self, destination: Destination, timeout: float):
        super().__init__(destination.host, destination.port, timeout=timeout, context=ssl.create_default_context())
        self._address = destination.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(destination: Destination, body: bytes, headers: dict[str, str], timeout: float = TIMEOUT_SECONDS) -> Outcome:
    connection: http.client.HTTPConnection = (
        _PinnedHTTPS(destination, timeout)
        if destination.scheme == "https"
        else http.client.HTTPConnection(destination.address, destination.port, timeout=timeout)
    )
    try:
        connection.request(
            "POST",
            destination.path,
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": "Abacus-Webhooks/1", **headers},
        )
        answer = connection.getresponse()
        text = answer.read(ANSWER_READ).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as error:
        return Outcome(None, f"{type(error).__name__}: {error}"[:300])
    finally:
        connection.close()
    if 200 <= answer.status < 300:
        return Outcome(answer.status, None)
    return Outcome(answer.status, f"answered {answer.status}: {text.strip()[:200]}")
