"""Where a webhook may point (abacus.alerts.destinations): https on a host whose every address is
public; never a private, loopback, link-local, metadata, shared, documentation, multicast or
reserved address, however it is written; http only to 127.0.0.1, and only where the local stack
allows it. IP literals go through the real resolver (getaddrinfo reads them without a lookup);
names through a resolver of the test's, so that nothing here touches the network."""

import re
import socket

import pytest

from abacus.alerts import destinations
from abacus.alerts.destinations import Refused, check, well_formed

PUBLIC_V4, PUBLIC_V6 = "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


class ResolvingTo:
    """A resolver answering `addresses` for any host, recording what it was asked."""

    def __init__(self, *addresses: str):
        self.addresses = list(addresses)
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return list(self.addresses)


ACCEPTED = [
    # (url, resolved to, expected (host, port, path, address))
    (f"https://{PUBLIC_V4}/abacus", None, (PUBLIC_V4, 443, "/abacus", PUBLIC_V4)),
    (f"HTTPS://{PUBLIC_V4}", None, (PUBLIC_V4, 443, "/", PUBLIC_V4)),
    ("https://[2606:4700:4700::1111]/x", None, ("2606:4700:4700::1111", 443, "/x", "2606:4700:4700::1111")),
    (
        "https://hooks.slack.com/services/T000/B000/XXXX",
        [PUBLIC_V4, PUBLIC_V6],
        ("hooks.slack.com", 443, "/services/T000/B000/XXXX", PUBLIC_V4),
    ),
    ("https://hooks.example.com:8443/a?b=c%20d", ["8.8.8.8"], ("hooks.example.com", 8443, "/a?b=c%20d", "8.8.8.8")),
]


@pytest.mark.parametrize(("url", "addresses", "expected"), ACCEPTED, ids=[case[0] for case in ACCEPTED])
def test_a_public_https_url_is_accepted_with_the_address_it_was_checked_at(url, addresses, expected):
    resolver = ResolvingTo(*addresses) if addresses is not None else None
    destination = check(url, allow_local=False, resolver=resolver)
    assert (destination.host, destination.port, destination.path, destination.address) == expected
    assert destination.scheme == "https" and destination.url == url
    if resolver is not None:
        assert resolver.asked == [(expected[0], expected[1])]
        assert destination.address in addresses


REFUSED_ADDRESSES = {
    "private 10/8": "https://10.0.0.1/",
    "private 172.16/12": "https://172.16.0.1/",
    "private 172.16/12, its end": "https://172.31.255.255/",
    "private 192.168/16": "https://192.168.1.1/",
    "loopback": "https://127.0.0.1/",
    "loopback, short form": "https://127.1/",
    "loopback, decimal": "https://2130706433/",
    "loopback, hexadecimal": "https://0x7f000001/",
    "loopback, octal": "https://0177.0.0.1/",
    "loopback v6": "https://[::1]/",
    "link-local": "https://169.254.1.1/",
    "instance metadata": "https://169.254.169.254/latest/meta-data/",
    "instance metadata v6": "https://[fd00:ec2::254]/latest/meta-data/",
    "link-local v6": "https://[fe80::1]/",
    "shared (CGNAT) 100.64/10": "https://100.64.0.1/",
    "shared (CGNAT), its end": "https://100.127.255.254/",
    "unique local fc00::/7": "https://[fc00::1]/",
    "unique local fd00::/8": "https://[fd12:3456::1]/",
    "documentation TEST-NET-1": "https://192.0.2.1/",
    "documentation TEST-NET-2": "https://198.51.100.7/",
    "documentation TEST-NET-3": "https://203.0.113.9/",
    "documentation v6": "https://[2001:db8::1]/",
    "multicast": "https://224.0.0.1/",
    "multicast SSDP": "https://239.255.255.250/",
    "multicast v6": "https://[ff02::1]/",
    "unspecified": "https://0.0.0.0/",
    "unspecified v6": "https://[::]/",
    "broadcast": "https://255.255.255.255/",
    "reserved 240/4": "https://240.0.0.1/",
    "benchmarking 198.18/15": "https://198.18.0.1/",
    "IPv4-mapped private": "https://[::ffff:10.0.0.1]/",
    "IPv4-mapped loopback": "https://[::ffff:127.0.0.1]/",
    "IPv4-mapped metadata": "https://[::ffff:169.254.169.254]/",
    "IPv4-compatible loopback": "https://[::127.0.0.1]/",
    "NAT64 of a private address": "https://[64:ff9b::a00:1]/",
}


@pytest.mark.parametrize("url", REFUSED_ADDRESSES.values(), ids=REFUSED_ADDRESSES.keys())
def test_a_private_or_special_address_is_refused_however_it_is_written(url):
    for allow_local in (False, True):  # the local allowance is http://127.0.0.1 alone
        with pytest.raises(Refused, match="not a public address"):
            check(url, allow_local)


REFUSED_URLS = {
    "http": (f"http://{PUBLIC_V4}/", "expected an https URL, not http"),
    "http to the metadata service": ("http://169.254.169.254/latest/meta-data/", "expected an https URL"),
    "file": ("file:///etc/passwd", "with a host"),
    "gopher": (f"gopher://{PUBLIC_V4}:70/_", "not gopher"),
    "ftp": (f"ftp://{PUBLIC_V4}/", "not ftp"),
    "javascript": ("javascript:alert(1)", "with a host"),
    "no scheme": (f"{PUBLIC_V4}/hook", "with a host"),
    "empty": ("", "with a host"),
    "no host": ("https:///x", "with a host"),
    "user and password": (f"https://user:pass@{PUBLIC_V4}/", "no user or password"),
    "user": (f"https://user@{PUBLIC_V4}/", "no user or password"),
    "password": (f"https://:pass@{PUBLIC_V4}/", "no user or password"),
    "empty user information": (f"https://@{PUBLIC_V4}/", "no user or password"),
    "a backslash hiding a private host": (f"https://{PUBLIC_V4}\\@10.0.0.1/", "no user or password"),
    "too long": (f"https://{PUBLIC_V4}/" + "a" * destinations.MAX_URL_LENGTH, "at most 2048"),
    "port out of range": (f"https://{PUBLIC_V4}:99999/", "not a URL"),
    "port 0": (f"https://{PUBLIC_V4}:0/", "port 0"),
    "unclosed IPv6 literal": ("https://[::1/", "not a URL"),
    # An HTTP request line cannot carry these: such a webhook could never be delivered to.
    "a space": (f"https://{PUBLIC_V4}/a b", "no space"),
    "a line break": (f"https://{PUBLIC_V4}/a\r\nX-Injected: 1", "no space, control"),
    "a NUL": (f"https://{PUBLIC_V4}/a\x00", "control"),
    "non-ASCII path": (f"https://{PUBLIC_V4}/café", "non-ASCII"),
    "non-ASCII host": ("https://bücher.example/", "xn-- form"),
}


@pytest.mark.parametrize(("url", "reason"), REFUSED_URLS.values(), ids=REFUSED_URLS.keys())
def test_what_is_no_https_url_of_a_receiver_is_refused_saying_why(url, reason, monkeypatch):
    def no_lookup(*args):
        raise AssertionError("refused without resolving the host")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    with pytest.raises(Refused, match=reason):
        check(url, allow_local=False, resolver=no_lookup)
    with pytest.raises(Refused, match=reason):
        well_formed(url, allow_local=False)


@pytest.mark.parametrize(
    ("addresses", "named"),
    [
        ([PUBLIC_V4, "10.0.0.1"], "10.0.0.1"),
        (["127.0.0.1", PUBLIC_V4], "127.0.0.1"),
        ([PUBLIC_V6, "::1"], "::1"),
        ([PUBLIC_V4, "169.254.169.254"], "169.254.169.254"),
        ([PUBLIC_V4, "::ffff:192.168.0.1"], "::ffff:192.168.0.1"),
        ([PUBLIC_V4, "fe80::1%eth0"], "fe80::1%eth0"),  # link-local with its zone, as getaddrinfo gives it
        (["100.64.0.7"], "100.64.0.7"),
    ],
)
def test_a_host_resolving_to_any_private_address_is_refused_naming_it(addresses, named):
    """One private address among public ones is enough: a connection could reach any of them."""
    with pytest.raises(Refused, match="not a public address") as refused:
        check("https://hooks.example.com/", allow_local=False, resolver=ResolvingTo(*addresses))
    assert named in str(refused.value) and "hooks.example.com" in str(refused.value)


def test_a_host_resolving_to_nothing_is_refused():
    with pytest.raises(Refused, match="resolves to no address"):
        check("https://hooks.example.com/", allow_local=False, resolver=ResolvingTo())


def test_a_host_that_does_not_resolve_is_refused_saying_so(monkeypatch):
    def unknown(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    with pytest.raises(Refused, match=re.escape("'nowhere.example' does not resolve")):
        check("https://nowhere.example/", allow_local=False)


def test_resolve_answers_every_address_of_the_host_once(monkeypatch):
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_V4, 443)),
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (PUBLIC_V6, 443, 0, 0)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_V4, 443)),
    ]
    asked = []

    def getaddrinfo(host: str, port: int, **kwargs: object) -> list:
        asked.append((host, port))
        return answers

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert destinations.resolve("hooks.example.com", 443) == sorted(["10.0.0.1", PUBLIC_V4, PUBLIC_V6])
    assert asked == [("hooks.example.com", 443)]
    # Through check, the module's resolve (what the integration tests replace) is the default.
    with pytest.raises(Refused, match=re.escape("10.0.0.1")):
        check("https://hooks.example.com/", allow_local=False)


LOCAL = [
    ("http://127.0.0.1:8080/hook", 8080, "/hook"),
    ("http://127.0.0.1/", 80, "/"),
    ("http://127.0.0.1:9000/a?b=1", 9000, "/a?b=1"),
]


@pytest.mark.parametrize(("url", "port", "path"), LOCAL, ids=[case[0] for case in LOCAL])
def test_the_local_stack_alone_may_send_to_http_on_127_0_0_1(url, port, path):
    destination = check(url, allow_local=True, resolver=ResolvingTo())  # never resolved
    assert (destination.scheme, destination.host, destination.port, destination.path) == (
        "http",
        "127.0.0.1",
        port,
        path,
    )
    assert destination.address == "127.0.0.1"
    well_formed(url, allow_local=True)
    with pytest.raises(Refused, match="expected an https URL, not http"):
        check(url, allow_local=False)
    with pytest.raises(Refused, match="expected an https URL, not http"):
        well_formed(url, allow_local=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/",  # a name: it could resolve anywhere
        "http://127.0.0.2:8080/",
        "http://2130706433:8080/",  # 127.0.0.1 written otherwise
        "http://[::1]:8080/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        f"http://{PUBLIC_V4}/",
        "http://user:pass@127.0.0.1:8080/",
    ],
)
def test_the_local_allowance_is_http_127_0_0_1_and_nothing_else(url):
    with pytest.raises(Refused):
        check(url, allow_local=True)
    if "@" not in url:
        with pytest.raises(Refused, match="expected an https URL, not http"):
            well_formed(url, allow_local=True)


def test_well_formed_never_resolves_the_host(monkeypatch):
    """What a request's validation runs before its admin key is checked: no DNS lookup."""

    def no_lookup(*args, **kwargs):
        raise AssertionError("well_formed looked the host up")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    monkeypatch.setattr(destinations, "resolve", no_lookup)
    well_formed("https://hooks.slack.com/services/T000/B000/XXXX", allow_local=False)
    well_formed("https://internal.example.com/", allow_local=False)  # resolved, and refused, by check alone
    with pytest.raises(AssertionError, match="looked the host up"):
        check("https://internal.example.com/", allow_local=False)
