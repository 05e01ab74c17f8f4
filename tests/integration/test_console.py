"""The console's pages through ResultsFunction (issue 17): sign in once with the admin key, then
a session cookie; the key never comes back in a page or a cookie; a wrong key, a forged or
expired session, a rotated key and a form without the CSRF token are refused. Issue 28: a session
forged from what the projects table holds, or dated beyond its lifetime, is refused; signing out
ends the session on the server; a form a browser sent from another site is refused."""

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import urlencode

import boto3
import pytest

from abacus import projects
from abacus.console import sessions
from abacus.results import signing
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
    assert invoke("ResultsFunction", sample_event("create_experiment"))["statusCode"] == 201
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
    assert invoke("ResultsFunction", sample_event("create_experiment"))["statusCode"] == 201
    assert invoke("ResultsFunction", sample_event("launch_experiment"))["statusCode"] == 200
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
    project_id, session_id, expires, signature = value.split(".")
    forged = f"{name}={project_id}.{session_id}.{int(expires) - 3600}.{signature}"
    assert get("console_experiments", forged)["statusCode"] == 303
    later = datetime.now(UTC) + sessions.LIFETIME + timedelta(seconds=1)
    with mock.patch("abacus.routes.console_access.datetime") as clock:
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


def csrf_token(cookie: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', get("console_experiments", cookie)["body"])
    assert found is not None
    return found.group(1)


def sign_out(cookie: str, token: str) -> dict:
    event = sample_event("console_sign_out")
    event["body"], event["cookies"] = f"csrf_token={token}", [cookie]
    return invoke("ResultsFunction", event)


def test_signing_out_ends_the_session_on_the_server(project):
    """A copy of the cookie taken before signing out (another tab, a stolen copy) is refused after
    it, for pages and forms alike; another session of the project goes on."""
    cookie, elsewhere = session_cookie(), session_cookie()
    token = csrf_token(cookie)
    assert sign_out(cookie, token)["statusCode"] == 303
    assert get("console_experiments", cookie)["statusCode"] == 303, "the copied cookie still opens the console"
    assert invoke("ResultsFunction", sample_event("create_experiment"))["statusCode"] == 201
    refused = act(cookie, token, action="launch", confirmed="yes")
    assert refused["statusCode"] == 303 and refused["headers"]["Location"] == "/console/sign-in"
    assert stored()["status"] == "draft", "a signed-out session launched the experiment"
    assert get("console_experiments", elsewhere)["statusCode"] == 200


def strings_in(value: object) -> set[str]:
    """Every string of a DynamoDB item (its attribute values, nested ones too)."""
    if isinstance(value, dict):
        found = {value["S"]} if isinstance(value.get("S"), str) else set()
        return found | {text for member in value.values() for text in strings_in(member)}
    if isinstance(value, list):
        return {s for v in value for s in strings_in(v)}
    return set()


def everything_in_the_tables() -> set[str]:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    return {
        text
        for table in dynamodb.list_tables()["TableNames"]
        for item in dynamodb.scan(TableName=table)["Items"]
        for text in strings_in(item)
    }


def test_a_session_forged_from_what_the_tables_hold_is_refused(project):
    """Whoever reads the tables (a backup, an export, a read-only role) learns the admin key's hash,
    which signed sessions before issue 28, and this very session's id at worst: no cookie made
    from them opens the console, however it is signed (by a stored string, or by the key derived
    from one as the signing secret)."""
    cookie = session_cookie()
    name, value = cookie.split("=", 1)
    project_id, session_id, expires, _ = value.split(".")
    admin_key_hash = hashlib.sha256(ADMIN_KEY.encode()).hexdigest()
    stored_strings = everything_in_the_tables()
    assert admin_key_hash in stored_strings
    for text in sorted(stored_strings):
        if len(text) < 16:
            continue  # names and kinds: no signing key
        for key in (text.encode(), signing.derive(text, admin_key_hash)):
            signature = signing.mac(key, "session", project_id, session_id, expires)
            forged = f"{name}={project_id}.{session_id}.{expires}.{signature}"
            assert get("console_experiments", forged)["statusCode"] == 303, text
        # The cookie as it was before issue 28: HMAC keyed by the admin key's hash.
        old = hmac.new(text.encode(), f"session\n{project_id}\n{expires}".encode(), hashlib.sha256).hexdigest()
        assert get("console_experiments", f"{name}={project_id}.{expires}.{old}")["statusCode"] == 303, text
    assert get("console_experiments", cookie)["statusCode"] == 200


def test_a_session_dated_2100_is_refused_though_signed_with_the_right_key(project):
    cookie = session_cookie()
    project_id, session_id, _, _ = cookie.split("=", 1)[1].split(".")
    key = signing.project_key(project_id)  # the secret itself, as only the results function reads it
    assert key is not None
    in_2100 = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())
    _, dated = sessions.signed(project_id, session_id, in_2100, sessions.Signer(key, "admin key"))
    assert get("console_experiments", str(dated).split(";", 1)[0])["statusCode"] == 303


def test_rotating_the_signing_secret_ends_every_session(project):
    from abacus.results import signing

    cookie = session_cookie()
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    new_value = secrets.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"]
    secrets.put_secret_value(SecretId="SigningSecret", SecretString=new_value)
    assert get("console_experiments", cookie)["statusCode"] == 200, "until environments read the new one"
    signing.forget_secret()  # as SECRET_MAX_AGE_SECONDS passing does
    assert get("console_experiments", cookie)["statusCode"] == 303
    assert get("console_experiments", session_cookie())["statusCode"] == 200


# Every route a console form posts to, with what it does when allowed.
CONSOLE_FORMS = [
    "console_sign_in",
    "console_sign_out",
    "console_create",
    "console_edit",
    "console_check",
    "console_experiment_action",
]
FROM_ELSEWHERE = [
    {"origin": "https://evil.example"},
    {"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
    {"sec-fetch-site": "same-site", "origin": "https://other.execute-api.us-east-1.amazonaws.com"},
    {"origin": "null"},
]
FROM_HERE = [
    {},  # curl, an old browser
    {"sec-fetch-site": "same-origin", "origin": "https://abc123.execute-api.us-east-1.amazonaws.com"},
    {"origin": "https://abc123.execute-api.us-east-1.amazonaws.com"},
]


def form_post(name: str, headers: dict[str, str]) -> dict:
    """The console form `name`, with a live session and its CSRF token, that would act if allowed:
    sign in, sign out, create a draft, edit the draft, check a form, launch the draft."""
    event = sample_event(name)
    event["headers"].update(headers)
    if name != "console_sign_in":
        cookie = session_cookie()
        event["cookies"] = [cookie]
        event["body"] = event["body"].replace("from-the-page", csrf_token(cookie))
    event["body"] = event["body"].replace("key=new-checkout", "key=from-a-form").replace("action=stop", "action=launch")
    return event


@pytest.mark.parametrize("headers", FROM_ELSEWHERE, ids=range(len(FROM_ELSEWHERE)))
def test_a_console_form_a_browser_sent_from_another_site_is_refused_and_does_nothing(project, headers):
    """Login CSRF (an attacker's page signing the victim into the attacker's project) and every
    other cross-site form: refused before anything is read or written."""
    assert invoke("ResultsFunction", sample_event("create_experiment"))["statusCode"] == 201
    for name in CONSOLE_FORMS:
        event = form_post(name, headers)
        before = everything_in_the_tables()
        refused = invoke("ResultsFunction", event)
        assert refused["statusCode"] == 403 and "sent from another site" in refused["body"], name
        assert not refused.get("cookies") and everything_in_the_tables() == before, name


@pytest.mark.parametrize("headers", FROM_HERE, ids=range(len(FROM_HERE)))
def test_a_console_form_sent_from_the_console_itself_or_without_browser_headers_works(project, headers):
    assert invoke("ResultsFunction", sample_event("create_experiment"))["statusCode"] == 201
    done = {name: invoke("ResultsFunction", form_post(name, headers))["statusCode"] for name in CONSOLE_FORMS}
    assert done == {
        "console_sign_in": 303,
        "console_sign_out": 303,
        "console_create": 303,
        "console_edit": 303,
        "console_check": 200,
        "console_experiment_action": 303,
    }
    assert stored()["status"] == "running" and stored("from-a-form")["status"] == "draft"


PAGE_HEADERS = (
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cache-Control",
)


def test_the_report_page_cannot_be_framed_and_has_the_consoles_headers(project):
    """Issue 28: the report page, opened with the admin key or a signed link, sends the console's
    headers: no frame may hold it, it loads nothing from elsewhere, it is never sniffed or stored."""
    from abacus.results import snapshots

    assert invoke("ResultsFunction", sample_event("create_experiment"))["statusCode"] == 201
    with_key = invoke("ResultsFunction", sample_event("get_report"))
    event = sample_event("get_report", authorization=None)
    event["queryStringParameters"] = snapshots.signed_query("test", "new-checkout", datetime.now(UTC))
    with_link = invoke("ResultsFunction", event)
    console_page = get("console_experiments", session_cookie())
    for report in (with_key, with_link):
        assert report["statusCode"] == 200, report
        headers = report["headers"]
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy and "script-src" not in policy
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "same-origin"
        assert {name: headers[name] for name in PAGE_HEADERS} == {
            name: console_page["headers"][name] for name in PAGE_HEADERS
        }


def test_a_key_longer_than_any_is_refused_at_sign_in_before_any_lookup(project):
    result = sign_in("k" * 201)
    assert result["statusCode"] == 400 and not result.get("cookies")
    assert "admin_key is longer than 200 characters" in result["body"]


def act(cookie: str, token: str, **fields: str) -> dict:
    event = sample_event("console_experiment_action")
    event["body"], event["cookies"] = urlencode({"csrf_token": token, **fields}), [cookie]
    return invoke("ResultsFunction", event)


def stored(key: str = "new-checkout") -> dict:
    return answer(invoke("ResultsFunction", sample_event("get_experiment", path=f"/experiments/{key}")))[1]


def test_an_action_states_its_consequence_first_and_is_done_once_confirmed(project):
    assert invoke("ResultsFunction", sample_event("create_experiment"))["statusCode"] == 201
    assert invoke("ResultsFunction", sample_event("launch_experiment"))["statusCode"] == 200
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
