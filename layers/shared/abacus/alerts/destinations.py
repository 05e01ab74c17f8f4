"""Where a webhook may point: an `https` URL whose host resolves only to public addresses. A URL
that names or resolves to a private, loopback, link-local (the instance metadata service,
169.254.169.254), shared, multicast or reserved address is refused, when the webhook is created
and again at every delivery (delivery connects to the address checked then, so a name that
resolves elsewhere between the check and the connection cannot reach inside: DNS rebinding).

Only the local stack (ABACUS_ALLOW_LOCAL_WEBHOOKS) allows `http://127.0.0.1:<port>`, for a
receiver on the developer's machine."""

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

type Resolver = Callable[[str, int], list[str]]
MAX_URL_LENGTH = 2048
# What an HTTP request line cannot carry (http.client refuses it, or fails encoding it): such a URL
# could never be delivered to, so it is refused when the webhook is created.
_UNSENDABLE = re.compile(r"[^\x21-\x7e]")


class Refused(ValueError):
    """The URL may not be a webhook's: the message says why."""


@dataclass(frozen=True)
class Destination:
    url: str
    scheme: str
    host: str  # as written: the TLS server name and the Host header
    port: int
    path: str  # with its query
    address: str  # the checked address to connect to


def resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (socket.getaddrinfo)."""
    try:
        answers = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise Refused(f"its host '{host}' does not resolve ({error})") from error
    return sorted({str(answer[4][0]) for answer in answers})


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_loopback)


def _parts(url: str) -> tuple[str, str, int | None, str]:
    """The URL's scheme, host, port and path (with its query); Refused for what is no URL of a receiver."""
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"at most {MAX_URL_LENGTH} characters")
    unsendable = _UNSENDABLE.search(url)
    if unsendable is not None:
        raise Refused(
            f"no space, control or non-ASCII character ({unsendable.group()!r} at {unsendable.start()}): "
            "percent-encode it (an internationalized host in its xn-- form)"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Refused(f"not a URL ({error})") from error
    if parts.username is not None or parts.password is not None:
        raise Refused("no user or password in the URL: the signature authenticates Abacus")
    if not parts.hostname:
        raise Refused("expected an https URL with a host, such as https://hooks.slack.com/services/...")
    if port == 0:
        raise Refused("port 0 is no port to connect to")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, path


def _sendable(url: str, allow_local: bool) -> tuple[str, str, int, str]:
    """The scheme, host, port and path of a URL a webhook may have, its host not resolved yet."""
    scheme, host, port, path = _parts(url)
    if allow_local and scheme == "http" and host == "127.0.0.1":
        return "http", host, port or 80, path
    if scheme != "https":
        raise Refused(f"expected an https URL, not {scheme or 'no'} scheme")
    return "https", host, port or 443, path


def well_formed(url: str, allow_local: bool) -> None:
    """Refused unless the URL could be a webhook's, as far as can be told without resolving its
    host (no lookup: what a request's validation may do before its credentials are checked)."""
    _sendable(url, allow_local)


def check(url: str, allow_local: bool, resolver: Resolver | None = None) -> Destination:
    """The URL's destination, its host resolved and every address public; Refused saying why."""
    scheme, host, port, path = _sendable(url, allow_local)
    if scheme == "http":  # the local stack's receiver on 127.0.0.1 (allow_local)
        return Destination(url, scheme, host, port, path, host)
    addresses = (resolver or resolve)(host, port)
    if not addresses:
        raise Refused(f"its host '{host}' resolves to no address")
    private = [address for address in addresses if not _public(address)]
    if private:
        raise Refused(
            f"its host '{host}' resolves to {', '.join(private)}, which is not a public address "
            "(private, loopback, link-local or reserved addresses are refused)"
        )
    return Destination(url, "https", host, port, path, addresses[0])
