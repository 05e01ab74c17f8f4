"""The console's sign-in session (issue 17): the admin key is checked once, at sign-in; the
browser then holds a cookie naming the project, a random session id and when the session ends,
signed with the project's signing key (signing.py: keyed by the stack's secret, held outside the
tables, and by the admin key's hash, so that rotating the key voids every session, as it voids
signed report links). The server keeps each session until it is signed out
(storage/console_sessions.py), and never accepts one that ends later than LIFETIME from now,
whatever its signature. The cookie is HttpOnly (no script reads it), Secure and SameSite=Strict,
and its `__Host-` name pins it to this host and path /. The key itself is never in a cookie, a URL
or a page.

Every form the console posts carries a CSRF token: an HMAC of the session, with another label, so
that it is valid for this session alone and a page of another site cannot know it."""

import hmac
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from typing import NamedTuple

from aws_lambda_powertools.shared.cookies import Cookie, SameSite

from abacus.results.signing import mac

COOKIE = "__Host-abacus-console"
LIFETIME = timedelta(hours=8)
# How far the clocks of two execution environments may disagree: a session signed by one is not
# refused by another as ending too late.
CLOCK_SKEW = timedelta(minutes=1)

# A project's signing key (signing.project_key), or None for no such project.
type SigningKey = Callable[[str], bytes | None]


class Session(NamedTuple):
    project_id: str
    session_id: str  # random; the server keeps it (hashed) until sign-out
    expires: int  # Unix seconds
    csrf_token: str


def _session(key: bytes, project_id: str, session_id: str, expires: int) -> Session:
    return Session(project_id, session_id, expires, mac(key, "csrf", project_id, session_id, expires))


def start(project_id: str, key: bytes, now: datetime) -> tuple[Session, Cookie]:
    """A new session and the cookie that carries it; the caller records it (console_sessions.put)."""
    return signed(project_id, secrets.token_hex(16), int((now + LIFETIME).timestamp()), key)


def signed(project_id: str, session_id: str, expires: int, key: bytes) -> tuple[Session, Cookie]:
    """The session of these fields and its cookie, signed with `key`."""
    signature = mac(key, "session", project_id, session_id, expires)
    value = f"{project_id}.{session_id}.{expires}.{signature}"
    return _session(key, project_id, session_id, expires), _cookie(value, int(LIFETIME.total_seconds()))


def _cookie(value: str, max_age: int) -> Cookie:
    return Cookie(COOKIE, value, path="/", secure=True, http_only=True, max_age=max_age, same_site=SameSite.STRICT_MODE)


def cleared_cookie() -> Cookie:
    """The cookie that ends a session in the browser."""
    return _cookie("", 0)


def from_cookies(cookies: list[str], signing_key: SigningKey, now: datetime) -> Session | None:
    """The session the request's cookies carry, or None: none, forged, expired, ending later than
    a session started now would (whatever signed it), or signed with an admin key rotated since or
    another secret. Whether the server still keeps it is the caller's to check."""
    value = _cookie_value(cookies)
    if value is None:
        return None
    parts = value.split(".")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    project_id, session_id, expires_text, signature = parts
    expires = int(expires_text)
    if not now.timestamp() < expires <= (now + LIFETIME + CLOCK_SKEW).timestamp():
        return None
    key = signing_key(project_id)
    if key is None or not hmac.compare_digest(mac(key, "session", project_id, session_id, expires), signature):
        return None
    return _session(key, project_id, session_id, expires)


def _cookie_value(cookies: list[str]) -> str | None:
    """The console cookie's value among the request's cookies (HTTP API payload 2.0 gives each
    `name=value` pair apart)."""
    for header in cookies:
        try:
            parsed = SimpleCookie(header)
        except CookieError:
            continue
        if COOKIE in parsed:
            return parsed[COOKIE].value
    return None


def csrf_holds(session: Session, sent: str | None) -> bool:
    """Whether a posted form's token is the session's."""
    return sent is not None and hmac.compare_digest(session.csrf_token, sent)


# Sec-Fetch-Site values of a form sent from one of the console's own pages, or typed in (none).
# Browsers set the header themselves: no page can change it.
FROM_HERE = {"same-origin", "none"}


def sent_from_elsewhere(headers: Mapping[str, str], own_origin: str) -> bool:
    """Whether a browser sent this request from a page of another origin (login CSRF, and any other
    cross-site form): by Sec-Fetch-Site when the browser sends it (all current ones do; this is the
    rule of Go's net/http CrossOriginProtection, and it holds behind a CDN whose host the function
    does not see), else by Origin, which must be the API's own. Neither header, as from curl or an
    old browser: not from elsewhere."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.strip().lower() not in FROM_HERE
    origin = headers.get("origin")
    return origin is not None and origin.strip().lower() != own_origin.lower()
