"""The console (HTML, issue 17), served by ResultsFunction on the API's base URL: sign in with
the admin key once, then a session cookie (sessions.py); every form it posts carries the
session's CSRF token. Pages answer HTML, errors included; a page that needs a session sends the
browser to sign in instead: its handlers take the session by injection (SignedIn, PostedForm),
which answers in their place when there is none."""

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import Request, Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from abacus.assignment import live_check
from abacus.console import experiment_form, pages, sessions
from abacus.console.sessions import Session
from abacus.core import keys
from abacus.core.errors import Conflict, Invalid, NotFound
from abacus.core.keys import SLUG_PATTERN
from abacus.experiments import definitions, lifecycle
from abacus.experiments.spec import ExperimentCreate, ExperimentPatch
from abacus.http.api import MAX_CREDENTIAL_LENGTH, base_url, json_response
from abacus.http.responses import ERROR_DESCRIPTIONS, ErrorBody
from abacus.results import signing, snapshots
from abacus.routes.console_access import (
    FORM,
    SIGN_IN,
    Answered,
    PostedForm,
    SignedIn,
    answered,
    form_fields,
    html_page,
    see_other,
    session_of,
)
from abacus.storage import console_sessions, credentials, project_items, results

router = APIGatewayHttpRouter()
# Registered by a call, not as a decorator: Powertools' exception_handler is not annotated.
router.exception_handler(Answered)(answered)
TAG = ["console"]
# A page without a session is answered too (it sends the browser to sign in): the cookie is optional.
SESSION_SECURITY: list[dict[str, list[str]]] = [{"consoleSession": []}]
CHECKED_SCHEMA = {
    "type": "object",
    "properties": {
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
        "plan": {"type": "string"},
    },
    "required": ["errors", "plan"],
}


def _no_experiment(session: Session, key: str) -> Response[str]:
    return html_page(
        404, pages.message_page(session, "No such experiment", f"This project has no experiment keyed '{key}'.")
    )


def _responses(*statuses: int) -> dict[int, OpenAPIResponse]:
    """The page's answers, HTML; and 422 for a query it does not take, in the API's error shape."""
    words = {
        200: "The page",
        303: "Elsewhere: signed in (to the console), signed out or without a session (to sign in)",
        401: "The sign-in page again, saying the key is not a project's admin key",
        400: "A form that names no action the console knows, or a key longer than any: nothing done",
        403: "A form without this session's CSRF token, or sent from another site: nothing done",
        404: "No such experiment in the project",
        409: "An action the experiment's status does not allow, saying what to do instead",
    }
    html: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
    answers: dict[int, OpenAPIResponse] = {
        status: {"description": words[status], "content": html} for status in statuses if status != 422
    }
    answers[422] = {"description": ERROR_DESCRIPTIONS[422], "content": {"application/json": {"model": ErrorBody}}}
    if 422 in statuses:  # a form sent back with its errors; the API's JSON for a query it does not take
        answers[422] = {
            "description": "The form again, each error on its field; or " + ERROR_DESCRIPTIONS[422],
            "content": {**html, "application/json": {"model": ErrorBody}},
        }
    return answers


@router.get(
    "/console",
    summary="The console: the project's experiments",
    tags=TAG,
    security=[*SESSION_SECURITY, {}],
    responses=_responses(200, 303),
)
def experiments_list(
    session: SignedIn,
    status: Annotated[str | None, Query(max_length=20)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response[str]:
    page = definitions.page(session.project_id, 50, after)
    now = datetime.now(UTC)
    rows = [
        pages.listed(item, results.latest(keys.experiment_id(session.project_id, item["key"])), now)
        for item in page["experiments"]
        if not status or item["status"] == status
    ]
    return html_page(200, pages.experiments_page(session, rows, status, page["next"]))


@router.get(SIGN_IN, summary="The console's sign-in form", tags=TAG, security=[{}], responses=_responses(200))
def sign_in_form() -> Response[str]:
    return html_page(200, pages.sign_in_page())


@router.post(
    SIGN_IN,
    summary="Sign in to the console with the admin key (a form)",
    tags=TAG,
    security=[{}],
    responses=_responses(303, 400, 401, 403),
    middlewares=FORM,
)
def sign_in(request: Request) -> Response[str]:
    key = form_fields(request).get("admin_key", "").strip()
    if len(key) > MAX_CREDENTIAL_LENGTH:
        words = f"That is not a project's admin key: admin_key is longer than {MAX_CREDENTIAL_LENGTH} characters."
        return html_page(400, pages.sign_in_page(words))
    owner = credentials.key_owner(key) if key else None
    signing_key = signing.project_key(owner[0]) if owner is not None and owner[1] == credentials.ADMIN else None
    if owner is None or signing_key is None:
        return html_page(401, pages.sign_in_page("That is not a project's admin key."))
    session, cookie = sessions.start(owner[0], signing_key, datetime.now(UTC))
    console_sessions.put(session.project_id, session.session_id, session.expires)
    return see_other("/console", [cookie])


@router.post(
    "/console/sign-out",
    summary="Sign out of the console (a form with the CSRF token): the session ends on the server too",
    tags=TAG,
    security=[*SESSION_SECURITY, {}],
    responses=_responses(303, 403),
    middlewares=FORM,
)
def sign_out(request: Request) -> Response[str]:
    session = session_of(request)
    if session is None:
        return see_other(SIGN_IN, [sessions.cleared_cookie()])
    if not sessions.csrf_holds(session, form_fields(request).get("csrf_token")):
        return html_page(
            403,
            pages.message_page(session, "Not signed out", "This form is out of date: reload the page and try again."),
        )
    console_sessions.delete(session.project_id, session.session_id)
    return see_other(SIGN_IN, [sessions.cleared_cookie()])


@router.get(
    "/console/experiments/<key>",
    summary="The console: an experiment's results (as of a day) and actions; a draft's preview",
    tags=TAG,
    security=[*SESSION_SECURITY, {}],
    responses=_responses(200, 303, 404),
)
def experiment(
    session: SignedIn,
    key: str,
    date: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
    preview: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    run: Annotated[str | None, Query(pattern=snapshots.RUN_PATTERN, max_length=64)] = None,
) -> Response[str]:
    """`run`: a recompute's run, whose progress the page shows, reloading itself until it is done."""
    try:
        item = definitions.get(session.project_id, key)
    except NotFound:
        return _no_experiment(session, key)
    described = definitions.to_api(item, with_history=False)
    notice = None
    if run is not None:
        notice = pages.recompute_notice(snapshots.run_progress(session.project_id, key, run), datetime.now(UTC))
    history = snapshots.snapshots(session.project_id, key)
    return html_page(200, pages.experiment_page(session, described, history, date, preview, notice))


@router.get(
    "/console/new",
    summary="The console: the form that creates an experiment (a draft)",
    tags=TAG,
    security=[*SESSION_SECURITY, {}],
    responses=_responses(200, 303),
)
def new_form(session: SignedIn) -> Response[str]:
    values = {"variant_key_0": "control", "variant_weight_0": "50", "variant_key_1": "treatment"}
    values |= {"variant_weight_1": "50", "rollout_percentage": "100", "minimum_detectable_effect": "5"}
    seen = _traffic_seen(session.project_id)
    if seen is not None:
        values["daily_users"] = str(seen.daily_users)
    return html_page(200, pages.form_page(session, values, None, None, seen), script=pages.CHECK_SCRIPT)


def _traffic_seen(project_id: str) -> experiment_form.TrafficSeen | None:
    """The users a day the project's launched experiments (the first page of them) have seen."""
    latest = []
    for described in definitions.page(project_id, 50, None)["experiments"]:
        started = described.get("started_at")
        snapshot = results.latest(keys.experiment_id(project_id, described["key"])) if started else None
        if snapshot is not None and started:
            days = (snapshot.cutoff - datetime.fromisoformat(started)).total_seconds() / 86400
            latest.append((described, days, sum(row["exposures"] for row in snapshot.analysis["variants"])))
    return experiment_form.traffic_seen(latest)


@router.post(
    "/console/new",
    summary="The console: create an experiment (a draft) from the form",
    tags=TAG,
    security=[*SESSION_SECURITY, {}],
    responses=_responses(303, 403, 409, 422),
    middlewares=FORM,
)
def create(posted: PostedForm) -> Response[str]:
    session, form = posted
    checked = experiment_form.check(form)
    if not checked.errors:
        try:
            definitions.create(session.project_id, ExperimentCreate.model_validate(checked.fields), datetime.now(UTC))
        except Conflict as taken:
            checked.errors["key"] = f"key: {taken.message}"
        else:
            return see_other(f"/console/experiments/{checked.fields['key']}")
    status = 409 if "key" in checked.errors and len(checked.errors) == 1 else 422
    return html_page(status, pages.form_page(session, form, checked, None), script=pages.CHECK_SCRIPT)


@router.get(
    "/console/experiments/<key>/edit",
    summary="The console: the form that edits a draft",
    tags=TAG,
    security=[*SESSION_SECURITY, {}],
    responses=_responses(200, 303, 404, 409),
)
def edit_form(session: SignedIn, key: str) -> Response[str]:
    try:
        described = definitions.to_api(definitions.get(session.project_id, key), with_history=False)
    except NotFound:
        return _no_experiment(session, key)
    if described["status"] != lifecycle.DRAFT:
        message = "Only a draft can be edited: the definition of a launched experiment is frozen."
        return html_page(409, pages.message_page(session, "Not a draft", message))
    values = experiment_form.form_values(described)
    return html_page(200, pages.form_page(session, values, None, key), script=pages.CHECK_SCRIPT)


@router.post(
    "/console/experiments/<key>/edit",
    summary="The console: save a draft from the form",
    tags=TAG,
    security=[*SESSION_SECURITY, {}],
    responses=_responses(303, 403, 404, 409, 422),
    middlewares=FORM,
)
def edit(posted: PostedForm, key: str) -> Response[str]:
    session, form = posted
    checked = experiment_form.check(form, key=key)
    if checked.errors:
        return html_page(422, pages.form_page(session, form, checked, key), script=pages.CHECK_SCRIPT)
    changes = {name: value for name, value in checked.fields.items() if name != "key"}
    try:
        definitions.update(session.project_id, key, ExperimentPatch.model_validate(changes), datetime.now(UTC))
    except NotFound:
        return _no_experiment(session, key)
    except Conflict as frozen:
        return html_page(409, pages.message_page(session, "Not saved", frozen.message))
    return see_other(f"/console/experiments/{key}")


@router.post(
    "/console/check",
    summary="The console: the Creation form checked as the API checks it, and its plan (JSON, as you type)",
    tags=TAG,
    security=[*SESSION_SECURITY, {}],
    responses={
        **_responses(303, 403),
        200: {
            "description": "Each form field's error (none: valid), in the API's words, and the plan",
            "content": {"application/json": {"schema": CHECKED_SCHEMA}},
        },
    },
    middlewares=FORM,
)
def check(posted: PostedForm, key: Annotated[str | None, Query(pattern=SLUG_PATTERN)] = None) -> Response[str]:
    checked = experiment_form.check(posted.form, key=key)
    return json_response(200, {"errors": checked.errors, "plan": checked.plan}, {"Cache-Control": "no-store"})


@router.get(
    "/console/experiments/<key>/implementation",
    summary="The console: snippets for the app, and the live check",
    tags=TAG,
    security=[*SESSION_SECURITY, {}],
    responses=_responses(200, 303, 404),
)
def implementation(request: Request, session: SignedIn, key: str) -> Response[str]:
    try:
        item = definitions.get(session.project_id, key)
    except NotFound:
        return _no_experiment(session, key)
    described = definitions.to_api(item, with_history=False)
    live = live_check.read(item, datetime.now(UTC))
    token = project_items.public_token(session.project_id)
    page = pages.implementation_page(session, described, live, base_url(request), token)
    return html_page(200, page, script=pages.IMPLEMENTATION_SCRIPT)


@router.get(
    "/console/experiments/<key>/live",
    summary="The console: the live check (an HTML fragment the Implementation page refreshes)",
    tags=TAG,
    security=[*SESSION_SECURITY, {}],
    responses=_responses(200, 303, 404),
)
def live(session: SignedIn, key: str) -> Response[str]:
    try:
        item = definitions.get(session.project_id, key)
    except NotFound:
        return _no_experiment(session, key)
    return html_page(200, pages.live_fragment(live_check.read(item, datetime.now(UTC))))


@router.post(
    "/console/experiments/<key>/actions",
    summary="The console: recompute, stop, ship a variant or archive (a form; each but recompute confirmed first)",
    tags=TAG,
    security=[*SESSION_SECURITY, {}],
    responses=_responses(200, 303, 400, 403, 404, 409),
    middlewares=FORM,
)
def experiment_action(posted: PostedForm, key: str) -> Response[str]:
    """Without `confirmed`, the page that states the action's consequence and asks again; with it
    (or for a recompute), the action, then back to the experiment's page."""
    session, form = posted
    action, variant = form.get("action", ""), form.get("variant")
    if action not in ("recompute", "launch", "stop", "ship", "archive"):
        return html_page(400, pages.message_page(session, "Nothing done", f"'{action}' is not an action."))
    try:
        item = definitions.get(session.project_id, key)
        if action != "recompute" and form.get("confirmed") != "yes":
            described = definitions.to_api(item, with_history=False)
            return html_page(200, pages.confirm_page(session, described, action, variant))
        now = datetime.now(UTC)
        if action == "recompute":
            return see_other(_recompute(session.project_id, key, now))
        definitions.apply(session.project_id, key, action, now, variant=variant)
    except NotFound:
        return html_page(404, pages.message_page(session, "No such experiment", f"No experiment keyed '{key}'."))
    except (Conflict, Invalid) as refused:  # a status that refuses it; a variant the experiment lacks
        status = 409 if isinstance(refused, Conflict) else 400
        return html_page(status, pages.message_page(session, "Not done", refused.message))
    return see_other(f"/console/experiments/{key}")


# A recompute from the console waits this long for its run (the API's waits RECOMPUTE_WAIT_SECONDS):
# a bigger one goes on to the Results page, which shows its progress and reloads until it is done.
CONSOLE_RECOMPUTE_WAIT_SECONDS = 5.0


def _recompute(project_id: str, key: str, now: datetime) -> str:
    """Starts a recompute and waits a little for it; where the browser goes next: the Results page
    following its run. Conflict when the run failed meanwhile."""
    started = snapshots.start_recompute(project_id, key, now)
    snapshots.finish_recompute(started, CONSOLE_RECOMPUTE_WAIT_SECONDS)
    return f"/console/experiments/{key}?{urlencode({'run': started.run})}"
