"""The console's session cookie and CSRF token: valid for their project and lifetime alone, signed
with a key that needs the stack's secret (not only what the projects table holds), never ending
later than a session started now would, and void once the admin key or the secret is rotated. And
which requests a browser sent from another site."""

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from abacus.console import sessions
from abacus.console.sessions import COOKIE
from abacus.results import signing

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
SECRET = "the-stack-signing-secret"
HASHES = {"acme": "hash-of-acme-admin-key", "other": "hash-of-other-admin-key"}
KEYS = {project: signing.derive(SECRET, admin_hash) for project, admin_hash in HASHES.items()}


def cookie_of(cookie: object) -> str:
    """What a browser sends back for a Set-Cookie header."""
    return str(cookie).split(";", 1)[0]


def parts_of(cookie: object) -> list[str]:
    return cookie_of(cookie).split("=", 1)[1].split(".")


def test_a_session_is_read_back_with_its_csrf_token():
    session, cookie = sessions.start("acme", KEYS["acme"], NOW)
    header = str(cookie)
    assert header.startswith(f"{COOKIE}=acme.")
    for attribute in ("Path=/", "HttpOnly", "Secure", "SameSite=Strict", "Max-Age=28800"):
        assert attribute in header.split("; "), header
    assert HASHES["acme"] not in header and SECRET not in header, "the cookie carries a signature, no key"
    read = sessions.from_cookies(["theme=dark", cookie_of(header)], KEYS.get, NOW + timedelta(hours=1))
    assert read == session
    assert sessions.csrf_holds(read, session.csrf_token)
    assert not sessions.csrf_holds(read, None) and not sessions.csrf_holds(read, "0" * 64)


def test_each_session_has_its_own_id_and_csrf_token():
    first, _ = sessions.start("acme", KEYS["acme"], NOW)
    second, _ = sessions.start("acme", KEYS["acme"], NOW)
    assert first.session_id != second.session_id and first.csrf_token != second.csrf_token


def test_an_expired_session_is_none():
    _, header = sessions.start("acme", KEYS["acme"], NOW)
    later = NOW + sessions.LIFETIME
    assert sessions.from_cookies([cookie_of(header)], KEYS.get, later) is None
    assert sessions.from_cookies([cookie_of(header)], KEYS.get, later - timedelta(seconds=1)) is not None


def test_a_session_ending_later_than_its_lifetime_allows_is_none_whatever_signed_it():
    """The cap does not rest on the signature: a cookie dated 2100, signed with the right key, is
    refused; so is one ending a few minutes beyond a session started now."""
    in_2100 = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())
    _, dated_2100 = sessions.signed("acme", "a" * 32, in_2100, KEYS["acme"])
    assert sessions.from_cookies([cookie_of(dated_2100)], KEYS.get, NOW) is None
    too_long = int((NOW + sessions.LIFETIME + sessions.CLOCK_SKEW).timestamp()) + 1
    _, header = sessions.signed("acme", "a" * 32, too_long, KEYS["acme"])
    assert sessions.from_cookies([cookie_of(header)], KEYS.get, NOW) is None
    # Another environment's clock a little behind still takes a session just started.
    _, header = sessions.start("acme", KEYS["acme"], NOW)
    assert sessions.from_cookies([cookie_of(header)], KEYS.get, NOW - timedelta(seconds=30)) is not None


def test_a_session_forged_from_the_projects_table_is_none():
    """What a read of the projects table gives (the admin key's hash) does not sign a session: the
    old cookies, keyed by that hash alone, and the new format keyed by it, are both refused."""
    admin_hash = HASHES["acme"]
    expires = int((NOW + timedelta(hours=1)).timestamp())
    old_style = hmac.new(admin_hash.encode(), f"session\nacme\n{expires}".encode(), hashlib.sha256).hexdigest()
    by_hash = signing.mac(admin_hash.encode(), "session", "acme", "a" * 32, expires)
    forged = [f"{COOKIE}=acme.{expires}.{old_style}", f"{COOKIE}=acme.{'a' * 32}.{expires}.{by_hash}"]
    for cookie in forged:
        assert sessions.from_cookies([cookie], KEYS.get, NOW) is None, cookie


def test_rotating_the_admin_key_or_the_secret_voids_the_session():
    _, header = sessions.start("acme", KEYS["acme"], NOW)
    rotated_key = {**KEYS, "acme": signing.derive(SECRET, "hash-of-the-new-key")}
    assert sessions.from_cookies([cookie_of(header)], rotated_key.get, NOW) is None
    rotated_secret = {**KEYS, "acme": signing.derive("a-new-secret", HASHES["acme"])}
    assert sessions.from_cookies([cookie_of(header)], rotated_secret.get, NOW) is None


def test_a_forged_or_moved_session_is_none():
    _, header = sessions.start("acme", KEYS["acme"], NOW)
    _, session_id, expires, signature = parts_of(header)
    forged = [
        f"{COOKIE}=other.{session_id}.{expires}.{signature}",  # another project's name on acme's signature
        f"{COOKIE}=acme.{'b' * 32}.{expires}.{signature}",  # another session's id
        f"{COOKIE}=acme.{session_id}.{int(expires) - 60}.{signature}",  # another end
        f"{COOKIE}=acme.{session_id}.{expires}.{'0' * 64}",
        f"{COOKIE}=acme.{session_id}.{expires}",
        f"{COOKIE}=acme.{expires}.{signature}",
        f"{COOKIE}=",
        f"{COOKIE}=acme.{session_id}.soon.{signature}",
        f"{COOKIE}=nobody.{session_id}.{expires}.{signature}",  # no such project
    ]
    for cookie in forged:
        assert sessions.from_cookies([cookie], KEYS.get, NOW) is None, cookie
    assert sessions.from_cookies([], KEYS.get, NOW) is None


def test_sessions_of_two_projects_have_different_csrf_tokens():
    acme, _ = sessions.start("acme", KEYS["acme"], NOW)
    other, _ = sessions.start("other", KEYS["other"], NOW)
    assert acme.csrf_token != other.csrf_token
    assert not sessions.csrf_holds(other, acme.csrf_token)


def test_signing_out_clears_the_cookie():
    header = str(sessions.cleared_cookie())
    assert header.startswith(f"{COOKIE}=;") and "Max-Age=0" in header.split("; "), header


OWN = "https://abc123.execute-api.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    ("headers", "elsewhere"),
    [
        ({}, False),  # curl, an old browser: nothing says where it came from
        ({"sec-fetch-site": "same-origin", "origin": OWN}, False),
        ({"sec-fetch-site": "none"}, False),  # typed in, a bookmark
        ({"origin": OWN}, False),
        ({"origin": OWN.upper()}, False),
        # The browser's own word wins: behind a CDN, the function does not see the host the browser used.
        ({"sec-fetch-site": "same-origin", "origin": "https://abacus.example.com"}, False),
        ({"sec-fetch-site": "cross-site", "origin": "https://evil.example"}, True),
        ({"sec-fetch-site": "cross-site"}, True),
        ({"sec-fetch-site": "same-site", "origin": "https://other.execute-api.us-east-1.amazonaws.com"}, True),
        ({"sec-fetch-site": "cross-site", "origin": OWN}, True),
        ({"origin": "https://evil.example"}, True),
        ({"origin": "null"}, True),  # a sandboxed frame, a data: URL
        ({"origin": "http://abc123.execute-api.us-east-1.amazonaws.com"}, True),  # another scheme
    ],
)
def test_a_request_a_browser_sent_from_another_site_is_told_apart(headers, elsewhere):
    assert sessions.sent_from_elsewhere(headers, OWN) is elsewhere
