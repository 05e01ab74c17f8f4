"""The console's pages through ResultsFunction (issue 17): sign in once with the admin key, then
a session cookie; the key never comes back in a page or a cookie; a wrong key, a forged or
expired session, a rotated key and a form without the CSRF token are refused."""

import re
from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import urlencode

import pytest

from abacus import console_session, projects
from tests.conftest import ADMIN_KEY, answer, invoke, sample_event


def sign_in(key: str = ADMIN_KEY) -> dict:
    event = sample_event("console_sign_in")
    event["body"] = f"admin_key={key}"
    return invoke("ResultsFunction", event)


def session_cookie() -> str:
    result = sign_in()
    assert result["statusCode"] == 303 and result["headers"]["Location"] == "/console", result
    [cookie] = result["cookies"]
    assert ADMIN_KEY not in cookie
    return cookie.split(";", 1)[0]


def get(name: str, cookie: str | None = None, **changes) -> dict:
    event = sample_event(name)
    event.update(changes)
    if cookie:
        event["cookies"] = [cookie]
    return invoke("ResultsFunction", event)


def test_without_a_session_the_console_sends_the_browser_to_sign_in(project):
    for name in ("console_experiments", "console_experiment"):
        result = get(name)
        assert result["statusCode"] == 303 and result["headers"]["Location"] == "/console/sign-in", name
    form = get("console_sign_in_form")
    assert form["statusCode"] == 200 and 'name="admin_key" type="password"' in form["body"]
    assert '<label for="admin_key">Admin key</label>' in form["body"]


def test_signing_in_lists_the_projects_experiments_with_their_status(project):
    assert invoke("AssignFunction", sample_event("create_experiment"))["statusCode"] == 201
    page = get("console_experiments", session_cookie())
    assert page["statusCode"] == 200, page
    body = page["body"]
    assert 'href="/console/experiments/new-checkout"' in body and "Creation (draft)" in body
    assert ADMIN_KEY not in body
    assert (
        page["headers"]["Cache-Control"] == "no-store"
        and "frame-ancestors 'none'" in page["headers"]["Content-Security-Policy"]
    )
    running = get(
        "console_experiments",
        session_cookie(),
        rawQueryString="status=running",
        queryStringParameters={"status": "running"},
    )
    assert "new-checkout" not in running["body"] and "No experiment with this status yet." in running["body"]


def test_an_experiments_page_shows_its_results(project):
    assert invoke("AssignFunction", sample_event("create_experiment"))["statusCode"] == 201
    assert invoke("AssignFunction", sample_event("launch_experiment"))["statusCode"] == 200
    assert invoke("ResultsFunction", sample_event("recompute_results"))["statusCode"] == 200
    page = get("console_experiment", session_cookie())
    assert page["statusCode"] == 200, page
    assert 'class="verdict verdict-' in page["body"] and "<svg" in page["body"]
    missing = get(
        "console_experiment", session_cookie(), rawPath="/console/experiments/nope", pathParameters={"key": "nope"}
    )
    assert missing["statusCode"] == 404 and "no experiment keyed &#39;nope&#39;" in missing["body"]


@pytest.mark.parametrize("key", ["wrong-key", "phc_local_dev", ""])
def test_a_wrong_key_or_the_project_token_is_refused_on_the_field(project, key):
    result = sign_in(key)
    assert result["statusCode"] == 401 and not result.get("cookies")
    assert 'aria-invalid="true"' in result["body"] and "not a project&#39;s admin key" in result["body"]


def test_a_forged_expired_or_rotated_session_is_sent_to_sign_in(project):
    cookie = session_cookie()
    name, value = cookie.split("=", 1)
    project_id, expires, signature = value.split(".")
    forged = f"{name}={project_id}.{int(expires) + 3600}.{signature}"
    assert get("console_experiments", forged)["statusCode"] == 303
    later = datetime.now(UTC) + console_session.LIFETIME + timedelta(seconds=1)
    with mock.patch("abacus.routes.console.datetime") as clock:
        clock.now.return_value = later
        assert get("console_experiments", cookie)["statusCode"] == 303, "expired"
    assert get("console_experiments", cookie)["statusCode"] == 200
    projects.rotate(project["project_id"], admin_key=True)
    assert get("console_experiments", cookie)["statusCode"] == 303, "the key was rotated"


def test_signing_out_needs_the_pages_csrf_token(project):
    cookie = session_cookie()
    page = get("console_experiments", cookie)["body"]
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert token is not None
    refused = get("console_sign_out", cookie)  # the sample's token is not this session's
    assert refused["statusCode"] == 403 and not refused.get("cookies")
    event = sample_event("console_sign_out")
    event["body"], event["cookies"] = f"csrf_token={token.group(1)}", [cookie]
    result = invoke("ResultsFunction", event)
    assert result["statusCode"] == 303 and result["headers"]["Location"] == "/console/sign-in"
    assert "Max-Age=0" in result["cookies"][0]


def act(cookie: str, token: str, **fields: str) -> dict:
    event = sample_event("console_experiment_action")
    event["body"], event["cookies"] = urlencode({"csrf_token": token, **fields}), [cookie]
    return invoke("ResultsFunction", event)


def stored(key: str = "new-checkout") -> dict:
    return answer(invoke("AssignFunction", sample_event("get_experiment", path=f"/experiments/{key}")))[1]


def test_an_action_states_its_consequence_first_and_is_done_once_confirmed(project):
    assert invoke("AssignFunction", sample_event("create_experiment"))["statusCode"] == 201
    assert invoke("AssignFunction", sample_event("launch_experiment"))["statusCode"] == 200
    cookie = session_cookie()
    page = get("console_experiment", cookie)["body"]
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page).group(1)  # type: ignore[union-attr]
    assert ">Stop</button>" in page and ">Ship variant</button>" in page and ">Archive</button>" not in page

    asked = act(cookie, token, action="stop")
    assert asked["statusCode"] == 200 and "No new user will be exposed" in asked["body"]
    assert 'name="confirmed" value="yes"' in asked["body"] and stored()["status"] == "running"
    assert act(cookie, "0" * 64, action="stop", confirmed="yes")["statusCode"] == 403
    assert stored()["status"] == "running", "a form without the session's token does nothing"
    done = act(cookie, token, action="stop", confirmed="yes")
    assert done["statusCode"] == 303 and done["headers"]["Location"] == "/console/experiments/new-checkout"
    assert stored()["status"] == "complete"

    again = act(cookie, token, action="stop", confirmed="yes")
    assert again["statusCode"] == 409 and "cannot stop a complete experiment" in again["body"]
    unknown = act(cookie, token, action="ship", variant="nope", confirmed="yes")
    assert unknown["statusCode"] == 400 and "is not one of" in unknown["body"]
    assert act(cookie, token, action="explode")["statusCode"] == 400
    ship = act(cookie, token, action="ship", variant="one-page")
    assert "Every user, in the experiment or not, gets &#39;one-page&#39;" in ship["body"]
    assert act(cookie, token, action="ship", variant="one-page", confirmed="yes")["statusCode"] == 303
    assert stored()["shipped_variant"] == "one-page"
    assert act(cookie, token, action="recompute")["statusCode"] == 303
    assert ">Archive</button>" in get("console_experiment", cookie)["body"]
