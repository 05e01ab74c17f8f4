"""Who may use the console (routes/console.py): the session a request carries, the dependencies
that give its handlers the session (SignedIn) or a form posted in it (PostedForm), answering in
their place (Answered: to sign in, or a form without the CSRF token refused), and the middleware
that refuses a form sent from another site."""

from datetime import UTC, datetime
from typing import Annotated, NamedTuple
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Depends, Request, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.shared.cookies import Cookie
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from abacus.console import pages, sessions
from abacus.console.sessions import Session
from abacus.http.api import own_origin
from abacus.http.page_headers import html_response
from abacus.results import signing
from abacus.storage import console_sessions, credentials

SIGN_IN = "/console/sign-in"


def html_page(
    status: int, body: str, cookies: list[Cookie] | None = None, script: pages.Script | None = None
) -> Response[str]:
    return html_response(status, body, cookies, script.source if script is not None else None)


def see_other(location: str, cookies: list[Cookie] | None = None) -> Response[str]:
    return html_response(303, "", cookies, location=location)


def signer_of(project_id: str, key_id: str) -> sessions.Signer | None:
    """What signs the sessions of the project's admin key `key_id`: a key derived from the stack's
    secret and that admin key's hash, so that a session ends with the key that signed in (rotated
    or revoked); None for no such project or key (one GetItem of the project's keys)."""
    found = credentials.signing_hash(project_id, key_id)
    if found is None:
        return None
    return sessions.Signer(signing.derive(signing.stack_secret(), found.key_hash), found.actor)


def session_of(request: Request) -> Session | None:
    """The request's session: signed with the key of the admin key that signed in, which the
    project still holds, and not signed out (one GetItem of the project's keys, one of the
    session)."""
    event = request.resolved_event
    cookies = event.cookies if isinstance(event, APIGatewayProxyEventV2) else None
    session = sessions.from_cookies(cookies or [], signer_of, datetime.now(UTC))
    if session is None or console_sessions.expiry(session.project_id, session.session_id) != session.expires:
        return None
    return session


class Answered(Exception):
    """Raised by a console dependency to answer the request in the handler's place."""

    def __init__(self, response: Response[str]) -> None:
        super().__init__(response.status_code)
        self.response = response


def answered(refusal: Answered) -> Response[str]:
    """The answer a dependency gave (the console's router registers it for Answered)."""
    return refusal.response


def signed_in(request: Request) -> Session:
    """The request's session: pages that need one take it with Depends(); without one, the
    browser is sent to sign in."""
    session = session_of(request)
    if session is None:
        raise Answered(see_other(SIGN_IN))
    return session


SignedIn = Annotated[Session, Depends(signed_in)]


class Posted(NamedTuple):
    """A form posted in a session, with the session's CSRF token."""

    session: Session
    form: dict[str, str]


def posted_form(request: Request, session: SignedIn) -> Posted:
    """The session and form of a post (routes take it with Depends()); a form without the
    session's CSRF token is refused (403)."""
    form = form_fields(request)
    if not sessions.csrf_holds(session, form.get("csrf_token")):
        raise Answered(
            html_page(403, pages.message_page(session, "Nothing done", "This form is out of date: reload the page."))
        )
    return Posted(session, form)


PostedForm = Annotated[Posted, Depends(posted_form)]


def same_origin_only(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    """The middleware of every console form: a browser's request sent from a page of another site
    is refused (403) before anything is read or done, signing in included (login CSRF)."""
    event = app.current_event
    if sessions.sent_from_elsewhere(event.headers, own_origin(event)):
        message = "This form was sent from another site: nothing was done. Open the console at its own address."
        return html_page(403, pages.message_page(None, "Refused", message))
    return next_middleware(app)


FORM = [same_origin_only]  # the middlewares of every route a console form posts to


MAX_FORM_FIELDS = 60  # the Creation form has about 30: any further ones are no field of the console's


def form_fields(request: Request) -> dict[str, str]:
    """A posted form's fields (the first value of each), of its first MAX_FORM_FIELDS."""
    body = request.resolved_event.decoded_body or ""
    kept = "&".join(body.split("&", MAX_FORM_FIELDS)[:MAX_FORM_FIELDS])
    return {name: values[0] for name, values in parse_qs(kept).items()}
