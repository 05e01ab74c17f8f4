"""The console's sign-in session (issue 17): the admin key is checked once, at sign-in; the
browser then holds a cookie naming the project and when the session ends, signed with an HMAC
keyed by the admin key's stored hash, so that rotating the key voids every session, as it voids
signed report links. The cookie is HttpOnly (no script reads it), Secure and SameSite=Strict, and
its `__Host-` name pins it to this host and path /. The key itself is never in a cookie, a URL
or a page.

Every form the console posts carries a CSRF token: an HMAC of the session, with another label, so
that it is valid for this session alone and a page of another site cannot know it."""

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from typing import NamedTuple

from aws_lambda_powertools.shared.cookies import Cookie, SameSite

COOKIE = "__Host-abacus-console"
LIFETIME = timedelta(hours=8)

# A project's admin key hash (storage/projects.credential_hash), or None for no such project.
type KeyHash = Callable[[str], str | None]


class Session(NamedTuple):
    project_id: str
    expires: int  # Unix seconds
    csrf_token: str


def _mac(secret: str, label: str, project_id: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{label}\n{project_id}\n{expires}".encode(), hashlib.sha256).hexdigest()


def start(project_id: str, key_hash: str, now: datetime) -> tuple[Session, Cookie]:
    """A new session and the cookie that carries it."""
    expires = int((now + LIFETIME).timestamp())
    value = f"{project_id}.{expires}.{_mac(key_hash, 'session', project_id, expires)}"
    session = Session(project_id, expires, _mac(key_hash, "csrf", project_id, expires))
    return session, _cookie(value, int(LIFETIME.total_seconds()))


def _cookie(value: str, max_age: int) -> Cookie:
    return Cookie(COOKIE, value, path="/", secure=True, http_only=True, max_age=max_age, same_site=SameSite.STRICT_MODE)


def cleared_cookie() -> Cookie:
    """The cookie that ends a session in the browser."""
    return _cookie("", 0)


def from_cookies(cookies: list[str], key_hash: KeyHash, now: datetime) -> Session | None:
    """The session the request's cookies carry, or None: none, forged, expired, or signed with an
    admin key that has been rotated since."""
    value = _cookie_value(cookies)
    if value is None:
        return None
    parts = value.rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    project_id, expires_text, signature = parts
    expires = int(expires_text)
    if expires <= now.timestamp():
        return None
    secret = key_hash(project_id)
    if secret is None or not hmac.compare_digest(_mac(secret, "session", project_id, expires), signature):
        return None
    return Session(project_id, expires, _mac(secret, "csrf", project_id, expires))


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
