"""The console's session cookie and CSRF token: valid for their project and lifetime alone, and
void once the admin key is rotated."""

from datetime import UTC, datetime, timedelta

from abacus import console_session
from abacus.console_session import COOKIE

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
HASHES = {"acme": "hash-of-acme-admin-key", "other": "hash-of-other-admin-key"}


def cookie_of(cookie: object) -> str:
    """What a browser sends back for a Set-Cookie header."""
    return str(cookie).split(";", 1)[0]


def test_a_session_is_read_back_with_its_csrf_token():
    session, cookie = console_session.start("acme", HASHES["acme"], NOW)
    header = str(cookie)
    assert header.startswith(f"{COOKIE}=acme.")
    for attribute in ("Path=/", "HttpOnly", "Secure", "SameSite=Strict", "Max-Age=28800"):
        assert attribute in header.split("; "), header
    assert HASHES["acme"] not in header, "the cookie carries a signature, not the key's hash"
    read = console_session.from_cookies(["theme=dark", cookie_of(header)], HASHES.get, NOW + timedelta(hours=1))
    assert read == session
    assert console_session.csrf_holds(read, session.csrf_token)
    assert not console_session.csrf_holds(read, None) and not console_session.csrf_holds(read, "0" * 64)


def test_an_expired_session_is_none():
    _, header = console_session.start("acme", HASHES["acme"], NOW)
    later = NOW + console_session.LIFETIME
    assert console_session.from_cookies([cookie_of(header)], HASHES.get, later) is None
    assert console_session.from_cookies([cookie_of(header)], HASHES.get, later - timedelta(seconds=1)) is not None


def test_rotating_the_admin_key_voids_the_session():
    _, header = console_session.start("acme", HASHES["acme"], NOW)
    rotated = {**HASHES, "acme": "hash-of-the-new-key"}
    assert console_session.from_cookies([cookie_of(header)], rotated.get, NOW) is None


def test_a_forged_or_moved_session_is_none():
    _, header = console_session.start("acme", HASHES["acme"], NOW)
    _, expires, signature = cookie_of(header).split("=", 1)[1].split(".")
    forged = [
        f"{COOKIE}=other.{expires}.{signature}",  # another project's name on acme's signature
        f"{COOKIE}=acme.{int(expires) + 86400}.{signature}",  # a longer life
        f"{COOKIE}=acme.{expires}.{'0' * 64}",
        f"{COOKIE}=acme.{expires}",
        f"{COOKIE}=",
        f"{COOKIE}=acme.soon.{signature}",
        f"{COOKIE}=nobody.{expires}.{signature}",  # no such project
    ]
    for cookie in forged:
        assert console_session.from_cookies([cookie], HASHES.get, NOW) is None, cookie
    assert console_session.from_cookies([], HASHES.get, NOW) is None


def test_sessions_of_two_projects_have_different_csrf_tokens():
    acme, _ = console_session.start("acme", HASHES["acme"], NOW)
    other, _ = console_session.start("other", HASHES["other"], NOW)
    assert acme.csrf_token != other.csrf_token
    assert not console_session.csrf_holds(other, acme.csrf_token)


def test_signing_out_clears_the_cookie():
    header = str(console_session.cleared_cookie())
    assert header.startswith(f"{COOKIE}=;") and "Max-Age=0" in header.split("; "), header
