"""The console's sign-in session (issue 17): the admin key is checked once, at sign-in; the
browser then holds a cookie naming the project, a random session id, when the session ends and
which of the project's admin keys signed in (a named key's id; none for the project's own),
signed with that key's signing key (signing.py: keyed by the stack's secret, held outside the
tables, and by that admin key's hash, so that rotating the project's key voids every session it
signed in, as it voids signed report links, and revoking a named key voids every session it
signed in). The session knows who signed in (`actor`), for the history of what they change.
The server keeps each session until it is signed out (storage/console_sessions.py), and never
accepts one that ends later than LIFETIME from now, whatever its signature. The cookie is
HttpOnly (no script reads it), Secure and SameSite=Strict, and its `__Host-` name pins it to this
host and path /. The key itself is never in a cookie, a URL or a page.

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
from abacus.storage.credentials import PROJECT_ADMIN_KEY

COOKIE = "__Host-abacus-console"
LIFETIME = timedelta(hours=8)
# How far the clocks of two execution environments may disagree: a session signed by one is not
# refused by another as ending too late.
CLOCK_SKEW = timedelta(minutes=1)


class Signer(NamedTuple):
    """What signs the sessions of one admin key: its signing key, and who holds the admin key."""

    key: bytes
    actor: str  # "admin key" for the project's own; "Alice (ak_1a2b3c4d)" for a named one


# The signer of a project's admin key (project id, key id: PROJECT_ADMIN_KEY or a named key's),
# or None for no such project or key (a key revoked, or rotated away).
type SignerOf = Callable[[str, str], Signer | None]


class Session(NamedTuple):
    project_id: str
    session_id: str  # random; the server keeps it (hashed) until sign-out
    expires: int  # Unix seconds
    csrf_token: str
    key_id: str = PROJECT_ADMIN_KEY  # the admin key that signed in
    actor: str = "admin key"  # who holds that key: what the history records as `by`


def _session(signer: Signer, project_id: str, session_id: str, expires: int, key_id: str) -> Session:
    csrf = mac(signer.key, "csrf", project_id, session_id, expires)
    return Session(project_id, session_id, expires, csrf, key_id, signer.actor)


def start(project_id: str, signer: Signer, now: datetime, key_id: str = PROJECT_ADMIN_KEY) -> tuple[Session, Cookie]:
    """A new session of the admin key `key_id`, and the cookie that carries it; the caller records
    it (console_sessions.put)."""
    return signed(project_id, secrets.token_hex(16), int((now + LIFETIME).timestamp()), signer, key_id)


def signed(
    project_id: str, session_id: str, expires: int, signer: Signer, key_id: str = PROJECT_ADMIN_KEY
) -> tuple[Session, Cookie]:
    """The session of these fields and its cookie, signed with the signer's key. A session of the
    project's own key has the cookie sessions had before named keys (four fields); a named key's
    adds its id, which its signature covers."""
    named = [] if key_id == PROJECT_ADMIN_KEY else [key_id]
    signature = _signature(signer, project_id, session_id, expires, key_id)
    value = ".".join([project_id, session_id, str(expires), *named, signature])
    return _session(signer, project_id, session_id, expires, key_id), _cookie(value, int(LIFETIME.total_seconds()))


def _cookie(value: str, max_age: int) -> Cookie:
    return Cookie(COOKIE, value, path="/", secure=True, http_only=True, max_age=max_age, same_site=SameSite.STRICT_MODE)


def cleared_cookie() -> Cookie:
    """The cookie that ends a session in the browser."""
    return _cookie("", 0)


def from_cookies(cookies: list[str], signer_of: SignerOf, now: datetime) -> Session | None:
    """The session the request's cookies carry, or None: none, forged, expired, ending later than
    a session started now would (whatever signed it), or signed in with an admin key rotated or
    revoked since, or signed with another secret. Whether the server still keeps it is the
    caller's to check."""
    value = _cookie_value(cookies)
    if value is None:
        return None
    parts = value.split(".")
    if len(parts) == 4:  # the project's own key's
        key_id = PROJECT_ADMIN_KEY
    elif len(parts) == 5 and parts[3] != PROJECT_ADMIN_KEY:
        key_id = parts[3]
    else:
        return None
    project_id, session_id, expires_text, signature = parts[0], parts[1], parts[2], parts[-1]
    if not expires_text.isdigit():
        return None
    expires = int(expires_text)
    if not now.timestamp() < expires <= (now + LIFETIME + CLOCK_SKEW).timestamp():
        return None
    signer = signer_of(project_id, key_id)
    if signer is None:
        return None
    if not hmac.compare_digest(_signature(signer, project_id, session_id, expires, key_id), signature):
        return None
    return _session(signer, project_id, session_id, expires, key_id)


def _signature(signer: Signer, project_id: str, session_id: str, expires: int, key_id: str) -> str:
    """A session's signature: of the fields sessions had before named keys, for the project's own
    key (its sessions signed in before stay valid); with the key's id too, for a named key."""
    named = [] if key_id == PROJECT_ADMIN_KEY else [key_id]
    return mac(signer.key, "session", project_id, session_id, expires, *named)


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
