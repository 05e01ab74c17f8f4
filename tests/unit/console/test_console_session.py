"""The console's session cookie and CSRF token: valid for their project and lifetime alone, signed
with a key that needs the stack's secret (not only what the projects table holds), never ending
later than a session started now would, and void once the admin key that signed in is rotated or
revoked, or the secret is rotated. And which requests a browser sent from another site."""

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from abacus.console import sessions
from abacus.console.sessions import COOKIE, Signer
from abacus.results import signing
from abacus.storage.credentials import PROJECT_ADMIN_KEY

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
SECRET = "the-stack-signing-secret"
HASHES = {"acme": "hash-of-acme-admin-key", "other": "hash-of-other-admin-key"}
KEYS = {project: Signer(signing.derive(SECRET, admin_hash), "admin key") for project, admin_hash in HASHES.items()}


def of(keys: dict[str, Signer]) -> sessions.SignerOf:
    """The signers of the projects' own admin keys (no named key)."""
    return lambda project_id, key_id: keys.get(project_id) if key_id == PROJECT_ADMIN_KEY else None


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
    read = sessions.from_cookies(["theme=dark", cookie_of(header)], of(KEYS), NOW + timedelta(hours=1))
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
    assert sessions.from_cookies([cookie_of(header)], of(KEYS), later) is None
    assert sessions.from_cookies([cookie_of(header)], of(KEYS), later - timedelta(seconds=1)) is not None


def test_a_session_ending_later_than_its_lifetime_allows_is_none_whatever_signed_it():
    """The cap does not rest on the signature: a cookie dated 2100, signed with the right key, is
    refused; so is one ending a few minutes beyond a session started now."""
    in_2100 = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())
    _, dated_2100 = sessions.signed("acme", "a" * 32, in_2100, KEYS["acme"])
    assert sessions.from_cookies([cookie_of(dated_2100)], of(KEYS), NOW) is None
    too_long = int((NOW + sessions.LIFETIME + sessions.CLOCK_SKEW).timestamp()) + 1
    _, header = sessions.signed("acme", "a" * 32, too_long, KEYS["acme"])
    assert sessions.from_cookies([cookie_of(header)], of(KEYS), NOW) is None
    # Another environment's clock a little behind still takes a session just started.
    _, header = sessions.start("acme", KEYS["acme"], NOW)
    assert sessions.from_cookies([cookie_of(header)], of(KEYS), NOW - timedelta(seconds=30)) is not None


def test_a_session_forged_from_the_projects_table_is_none():
    """What a read of the projects table gives (the admin key's hash) does not sign a session: the
    old cookies, keyed by that hash alone, and the new format keyed by it, are both refused."""
    admin_hash = HASHES["acme"]
    expires = int((NOW + timedelta(hours=1)).timestamp())
    old_style = hmac.new(admin_hash.encode(), f"session\nacme\n{expires}".encode(), hashlib.sha256).hexdigest()
    by_hash = signing.mac(admin_hash.encode(), "session", "acme", "a" * 32, expires)
    forged = [f"{COOKIE}=acme.{expires}.{old_style}", f"{COOKIE}=acme.{'a' * 32}.{expires}.{by_hash}"]
    for cookie in forged:
        assert sessions.from_cookies([cookie], of(KEYS), NOW) is None, cookie


def test_rotating_the_admin_key_or_the_secret_voids_the_session():
    _, header = sessions.start("acme", KEYS["acme"], NOW)
    rotated_key = {**KEYS, "acme": Signer(signing.derive(SECRET, "hash-of-the-new-key"), "admin key")}
    assert sessions.from_cookies([cookie_of(header)], of(rotated_key), NOW) is None
    rotated_secret = {**KEYS, "acme": Signer(signing.derive("a-new-secret", HASHES["acme"]), "admin key")}
    assert sessions.from_cookies([cookie_of(header)], of(rotated_secret), NOW) is None


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
        assert sessions.from_cookies([cookie], of(KEYS), NOW) is None, cookie
    assert sessions.from_cookies([], of(KEYS), NOW) is None


ALICE = Signer(signing.derive(SECRET, "hash-of-alices-key"), "Alice (ak_1a2b3c4d)")


def with_alice(project_id: str, key_id: str) -> Signer | None:
    """acme's own admin key, and Alice's named one (ak_1a2b3c4d)."""
    return ALICE if (project_id, key_id) == ("acme", "ak_1a2b3c4d") else of(KEYS)(project_id, key_id)


def test_a_named_keys_session_names_its_key_and_who_holds_it():
    session, cookie = sessions.start("acme", ALICE, NOW, "ak_1a2b3c4d")
    assert parts_of(cookie)[:4] == ["acme", session.session_id, str(session.expires), "ak_1a2b3c4d"]
    read = sessions.from_cookies([cookie_of(cookie)], with_alice, NOW)
    assert read == session and (read.key_id, read.actor) == ("ak_1a2b3c4d", "Alice (ak_1a2b3c4d)")
    own, cookie = sessions.start("acme", KEYS["acme"], NOW)
    assert sessions.from_cookies([cookie_of(cookie)], with_alice, NOW) == own and own.actor == "admin key"


def test_revoking_a_named_key_voids_its_sessions_alone():
    """Once its key is revoked (no signer for it), a session it signed in is refused; the sessions
    of the project's own key go on."""
    _, alices = sessions.start("acme", ALICE, NOW, "ak_1a2b3c4d")
    _, own = sessions.start("acme", KEYS["acme"], NOW)
    assert sessions.from_cookies([cookie_of(alices)], of(KEYS), NOW) is None
    assert sessions.from_cookies([cookie_of(own)], of(KEYS), NOW) is not None


def test_a_named_keys_session_cannot_be_passed_off_as_another_keys():
    _, cookie = sessions.start("acme", ALICE, NOW, "ak_1a2b3c4d")
    project_id, session_id, expires, key_id, signature = parts_of(cookie)
    forged = [
        f"{COOKIE}={project_id}.{session_id}.{expires}.{signature}",  # as the project's own key's
        f"{COOKIE}={project_id}.{session_id}.{expires}.ak_00000000.{signature}",  # as another named key's
        f"{COOKIE}={project_id}.{session_id}.{expires}.admin.{signature}",  # the own key's id, spelt out
        f"{COOKIE}={project_id}.{session_id}.{expires}.{key_id}.{signature}.x",
    ]
    for forgery in forged:
        assert sessions.from_cookies([forgery], with_alice, NOW) is None, forgery


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
