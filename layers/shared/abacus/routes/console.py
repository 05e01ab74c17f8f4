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
from pydantic import ValidationError

from abacus.alerts import sent
from abacus.assignment import live_check
from abacus.console import experiment_form, pages, sessions
from abacus.console.sessions import Session
from abacus.core.errors import Conflict, Invalid, NotFound, field_errors
from abacus.core.keys import SLUG_PATTERN
from abacus.experiments import definitions, lifecycle
from abacus.experiments.spec import DuplicateRequest, ExperimentCreate, ExperimentPatch
from abacus.http import downloads, page_headers
from abacus.http.api import MAX_CREDENTIAL_LENGTH, base_url, json_response
from abacus.http.responses import ERROR_DESCRIPTIONS, ErrorBody
from abacus.results import csv_export, snapshots
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
    signer_of,
)
from abacus.storage import console_sessions, credentials, event_names, project_items

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
    shown = status if status in pages.STATUS_NAMES else None
    listed, next_after = definitions.listing(session.project_id, 50, after, shown)
    now = datetime.now(UTC)
    rows = [pages.listed(described, latest, now) for described, latest in listed]
    return html_page(200, pages.experiments_page(session, rows, shown, next_after))


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
    key_id = owner.key_id if owner is not None and owner.kind == credentials.ADMIN else None
    signer = signer_of(owner.project_id, key_id) if owner is not None and key_id is not None else None
    if owner is None or key_id is None or signer is None:
        return html_page(401, pages.sign_in_page("That is not a project's admin key."))
    session, cookie = sessions.start(owner.project_id, signer, datetime.now(UTC), key_id)
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
    described = definitions.to_api(item)  # with its history: who changed what, when
    notice = None
    if run is not None:
        notice = pages.recompute_notice(snapshots.run_progress(session.project_id, key, run), datetime.now(UTC))
    history = snapshots.snapshots(session.project_id, key)
    alerts = sent.of_experiment(item.experiment_id)
    return html_page(200, pages.experiment_page(session, described, history, date, preview, notice, alerts))


@router.get(
    "/console/experiments/<key>/results.csv",
    summary="The console: a day's results as a CSV file (the Results page's Download CSV)",
    tags=TAG,
    security=[*SESSION_SECURITY, {}],
    responses={
        **_responses(303, 404),
        200: {
            "description": "The day's rows, one per metric and variant, as the API's CSV answer has them",
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "headers": {
                "Content-Disposition": {
                    "description": 'attachment; filename="<key>-results-<date>.csv"',
                    "schema": {"type": "string"},
                }
            },
        },
    },
)
def results_csv(
    session: SignedIn, key: str, date: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None
) -> Response[str]:
    """The snapshot of `date` (the latest without it) as the API's CSV, with the pages' headers."""
    try:
        answer = snapshots.snapshot(session.project_id, key, date)
    except NotFound as missing:
        if missing.field != "date":
            return _no_experiment(session, key)
        answer = None
    if answer is None or answer["status"] == "pending":
        words = f"'{key}' has no results {f'for {date}' if date else 'yet'} to download."
        return html_page(404, pages.message_page(session, "No results", words))
    filename = f"{key}-results-{answer['date']}.csv"
    return downloads.csv_response(csv_export.to_csv([answer]), filename, page_headers.HEADERS)


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
    page = pages.form_page(session, values, None, None, seen, event_names=_received_events(session.project_id))
    return html_page(200, page, script=pages.CHECK_SCRIPT)


def _received_events(project_id: str) -> list[str]:
    """The project's received event names, which the form's metric fields suggest (one BatchGetItem)."""
    return experiment_form.suggested_events(event_names.read(project_id, event_names.EVENTS))


def _traffic_seen(project_id: str) -> experiment_form.TrafficSeen | None:
    """The users a day the project's launched experiments (the first page of them) have seen."""
    latest = []
    for described, snapshot in definitions.listing(project_id, 50, None)[0]:
        started = described.get("started_at")
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
            spec = ExperimentCreate.model_validate(checked.fields)
            definitions.create(session.project_id, spec, datetime.now(UTC), by=session.actor)
        except Conflict as taken:
            checked.errors["key"] = f"key: {taken.message}"
        else:
            return see_other(f"/console/experiments/{checked.fields['key']}")
    status = 409 if "key" in checked.errors and len(checked.errors) == 1 else 422
    page = pages.form_page(session, form, checked, None, event_names=_received_events(session.project_id))
    return html_page(status, page, script=pages.CHECK_SCRIPT)


@router.get(
    "/console/experiments/<key>/edit",
    summary="The console: the Creation tab: a draft's form; a launched experiment's definition, read-only but "
    "for the fields its status lets change (as PATCH)",
    tags=TAG,
    security=[*SESSION_SECURITY, {}],
    responses=_responses(200, 303, 404),
)
def edit_form(session: SignedIn, key: str) -> Response[str]:
    try:
        described = definitions.to_api(definitions.get(session.project_id, key), with_history=False)
    except NotFound:
        return _no_experiment(session, key)
    values = experiment_form.form_values(described)
    names = _received_events(session.project_id)
    page = pages.form_page(session, values, None, key, status=described["status"], event_names=names)
    return html_page(200, page, script=pages.CHECK_SCRIPT)


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
    try:
        status = definitions.get(session.project_id, key).status
    except NotFound:
        return _no_experiment(session, key)
    if status == lifecycle.DRAFT:
        checked = experiment_form.check(form, key=key)
    else:  # only the fields its status lets change, as PATCH takes them (the others are read-only)
        checked = experiment_form.check_changes(form, lifecycle.EDITABLE[status] or set())
    if checked.errors:
        names = _received_events(session.project_id)
        page = pages.form_page(session, form, checked, key, status=status, event_names=names)
        return html_page(422, page, script=pages.CHECK_SCRIPT)
    changes = {name: value for name, value in checked.fields.items() if name != "key"}
    try:
        patch = ExperimentPatch.model_validate(changes)
        definitions.update(session.project_id, key, patch, datetime.now(UTC), by=session.actor)
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
    summary="The console: recompute, launch, stop, ship a variant, archive, delete a draft (a form; each confirmed "
    "first but recompute) or duplicate as a new draft",
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
    if action not in ("recompute", "launch", "stop", "ship", "archive", "delete", "duplicate"):
        return html_page(400, pages.message_page(session, "Nothing done", f"'{action}' is not an action."))
    try:
        item = definitions.get(session.project_id, key)
        if action not in ("recompute", "duplicate") and form.get("confirmed") != "yes":
            described = definitions.to_api(item, with_history=False)
            return html_page(200, pages.confirm_page(session, described, action, variant))
        return see_other(_act(session, key, action, form))
    except NotFound:
        return html_page(404, pages.message_page(session, "No such experiment", f"No experiment keyed '{key}'."))
    except (Conflict, Invalid) as refused:  # a status that refuses it; a variant the experiment lacks
        status = 409 if isinstance(refused, Conflict) else 400
        return html_page(status, pages.message_page(session, "Not done", refused.message))
    except ValidationError as invalid:  # a duplicate's new key that is no key
        words = "; ".join(f"{error['field']}: {error['message']}" for error in field_errors(invalid.errors()))
        return html_page(400, pages.message_page(session, "Not done", words.replace("key:", "new key:", 1)))


def _act(session: Session, key: str, action: str, form: dict[str, str]) -> str:
    """Does a (confirmed) action; where the browser goes next."""
    now = datetime.now(UTC)
    if action == "recompute":
        return _recompute(session.project_id, key, now)
    if action == "duplicate":  # a new draft, nothing lost: no confirmation
        new_key = DuplicateRequest(key=form.get("new_key", "").strip()).key
        definitions.duplicate(session.project_id, key, new_key, now, by=session.actor)
        return f"/console/experiments/{new_key}/edit"
    if action == "delete":
        definitions.delete_draft(session.project_id, key)
        return "/console"
    definitions.apply(session.project_id, key, action, now, variant=form.get("variant"), by=session.actor)
    return f"/console/experiments/{key}"


# A recompute from the console waits this long for its run (the API's waits RECOMPUTE_WAIT_SECONDS):
# a bigger one goes on to the Results page, which shows its progress and reloads until it is done.
CONSOLE_RECOMPUTE_WAIT_SECONDS = 5.0


def _recompute(project_id: str, key: str, now: datetime) -> str:
    """Starts a recompute and waits a little for it; where the browser goes next: the Results page
    following its run. Conflict when the run failed meanwhile."""
    started = snapshots.start_recompute(project_id, key, now)
    snapshots.finish_recompute(started, CONSOLE_RECOMPUTE_WAIT_SECONDS)
    return f"/console/experiments/{key}?{urlencode({'run': started.run})}"
