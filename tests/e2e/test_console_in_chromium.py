"""The console in a real browser (issue 17): Chromium, driven by Playwright, against a local stack
over HTTP. Signing in with a wrong key shows the error on the field; the right key, typed and sent
with the keyboard alone, opens the project's experiments; an experiment's page shows its verdict
and charts; shipping a variant is confirmed on a page stating its consequence; signing out ends
the session, a copy of its cookie included. The key is in no page, URL, cookie a script can read
or web storage. A page of another site can neither sign the browser in (login CSRF) nor frame the
report. Screenshots of each page go to .abacus/console/ (not committed)."""

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import urlsplit

import pytest
from playwright._impl._api_structures import SetCookieParam
from playwright.sync_api import Page, expect

from abacus.results import signing
from tests.e2e.conftest import ADMIN_KEY, invoke_nightly, shot, sign_in_with_the_keyboard

KEY = "console-checkout"


def the_key_is_nowhere(page: Page) -> None:
    assert ADMIN_KEY not in page.url and ADMIN_KEY not in page.content()
    readable = page.evaluate(
        "() => [document.cookie, JSON.stringify({...localStorage}), JSON.stringify({...sessionStorage})]"
    )
    assert all(ADMIN_KEY not in text for text in readable), readable
    assert "abacus-console" not in readable[0], "the session cookie is HttpOnly"


def every_field_is_labelled(page: Page) -> None:
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select')]
              .filter((field) => !field.labels || field.labels.length === 0).map((field) => field.outerHTML)"""
    )
    assert unlabelled == []


def test_sign_in_read_results_and_sign_out(client, stack_url, page):
    client.create_experiment(
        {
            "key": KEY,
            "name": "Console checkout",
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "purchase"},
        }
    )
    day = datetime.combine(datetime.now(UTC).date() - timedelta(days=1), time(0), tzinfo=UTC)
    client.launch(KEY, started_at=day)
    for n in range(20):
        user = f"console-user-{n}"
        variant = client.assign(user, [KEY], expose=False)[KEY]
        seen = (day + timedelta(hours=1, minutes=n)).isoformat()
        events = [
            {
                "event": "$exposure",
                "distinct_id": user,
                "timestamp": seen,
                "properties": {"experiment": KEY, "variant": variant},
            }
        ]
        if n % 3 == 0:
            events.append({"event": "purchase", "distinct_id": user, "timestamp": seen})
        client.send_events(events)
    invoke_nightly(stack_url, day + timedelta(days=1, hours=3), client, KEY)

    page.goto(f"{stack_url}/console")
    expect(page).to_have_url(f"{stack_url}/console/sign-in")
    every_field_is_labelled(page)
    page.get_by_label("Admin key").fill("not-the-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not a project's admin key")
    expect(page.get_by_label("Admin key")).to_have_attribute("aria-invalid", "true")
    shot(page, "sign-in-refused")

    # The keyboard alone: the field has the focus, Enter sends the form.
    page.get_by_label("Admin key").focus()
    page.keyboard.type(ADMIN_KEY)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{stack_url}/console")
    expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
    row = page.get_by_role("row").filter(has_text=KEY)
    expect(row).to_contain_text("Running")
    expect(row).to_contain_text("20")
    every_field_is_labelled(page)
    the_key_is_nowhere(page)
    shot(page, "experiments")

    page.get_by_role("link", name="Console checkout").click()
    expect(page).to_have_url(f"{stack_url}/console/experiments/{KEY}")
    expect(page.locator(".verdict")).to_be_visible()
    # The decision card heads the results: why, then P(best) in words, never in the headline.
    expect(page.locator(".decision-card .why")).to_be_visible()
    expect(page.locator(".decision-card .card-best")).to_contain_text("P(best)")
    expect(page.locator(".verdict")).not_to_contain_text("P(best)")
    # Lift with its interval, probability to be best, first exposures per day.
    assert page.locator("figure.chart svg").count() == 3
    expect(page.locator("figcaption").filter(has_text="First exposures per day")).to_be_visible()
    the_key_is_nowhere(page)
    shot(page, "results")

    # Ship, confirmed on a page that states the consequence.
    page.get_by_label("Variant to ship").select_option("b")
    page.get_by_role("button", name="Ship variant").click()
    expect(page.get_by_role("alert")).to_contain_text("Every user, in the experiment or not, gets 'b'")
    every_field_is_labelled(page)
    shot(page, "ship-confirmation")
    page.get_by_role("button", name="Yes, ship variant").click()
    expect(page).to_have_url(f"{stack_url}/console/experiments/{KEY}")
    expect(page.get_by_text("Complete", exact=False).first).to_be_visible()
    assert client.call("GET", f"/experiments/{KEY}", admin=True)["shipped_variant"] == "b"

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{stack_url}/console/sign-in")
    page.goto(f"{stack_url}/console")
    expect(page).to_have_url(f"{stack_url}/console/sign-in")  # the session is gone


def test_a_session_cookie_from_elsewhere_is_refused(stack_url, page):
    forged = f"local.{'0' * 32}.{int(datetime.now(UTC).timestamp()) + 3600}.{'0' * 64}"
    host = urlsplit(stack_url).hostname
    cookie: SetCookieParam = {"name": "__Host-abacus-console", "value": forged, "domain": host or "", "path": "/"}
    page.context.add_cookies([{**cookie, "secure": True, "httpOnly": True, "sameSite": "Strict"}])
    page.goto(f"{stack_url}/console")
    expect(page).to_have_url(f"{stack_url}/console/sign-in")
    assert [c["value"] for c in page.context.cookies() if c["name"] == "__Host-abacus-console"] == [forged], "sent"


def test_create_with_a_mistake_launch_watch_the_live_check_and_ship(client, stack_url, page):
    """The three stages in the browser: Creation (an error on its field as you type, fixed, the
    plan), Implementation (the snippets, the live check counting traffic as it arrives), Results
    (recomputed now, the verdict, shipped); then signed out, and an expired session refused."""
    key = "browser-checkout"
    sign_in_with_the_keyboard(page, stack_url)
    page.get_by_role("link", name="New experiment").click()
    expect(page).to_have_url(f"{stack_url}/console/new")
    every_field_is_labelled(page)
    page.get_by_label("Key (lowercase").fill(key)
    page.get_by_label("Name", exact=True).fill("Checkout in the browser")
    page.get_by_label("Variant 2 key").fill("one-page")
    page.get_by_label("Variant 2 weight").fill("40")  # the mistake: 50 + 40
    variants_error = page.locator("#variants-error")
    expect(variants_error).to_have_text("variants: weights must sum to 100, not 90")
    page.get_by_label("Event", exact=True).fill("purchase")
    page.get_by_label("Baseline rate today").fill("0.2")
    page.get_by_label("Minimum detectable effect").fill("10")
    page.get_by_label("Users a day who reach the flag").fill("2000")
    expect(page.locator("#metric_event-error")).to_have_text("")  # an event given: that error is gone
    expect(variants_error).to_have_text("variants: weights must sum to 100, not 90")
    shot(page, "creation-error")
    # Fixed with the keyboard alone: Tab from the variant's key to its weight, the weight replaced.
    page.get_by_label("Variant 2 key").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Variant 2 weight")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("50")
    expect(variants_error).to_have_text("")
    expect(page.locator("#plan")).to_contain_text("exposed users per variant to detect a 10% relative change")
    expect(page.locator("#plan")).to_contain_text("At 2,000 users a day")
    shot(page, "creation-plan")
    page.get_by_role("button", name="Create draft").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{stack_url}/console/experiments/{key}")

    page.get_by_role("button", name="Launch").click()
    expect(page.get_by_role("alert")).to_contain_text("Users start getting variants")
    page.get_by_role("button", name="Yes, launch").click()
    page.get_by_role("link", name="Implementation").click()
    expect(page).to_have_url(f"{stack_url}/console/experiments/{key}/implementation")
    # The project's token, public, arrives in the snippets: nothing to type in.
    expect(page.get_by_label("Project token")).to_have_count(0)
    expect(page.locator("pre").first).to_contain_text(client.token)
    snippets = page.locator("pre").all_inner_texts()
    assert all(key in text and client.token in text for text in snippets), snippets
    expect(page.locator('[data-exposures="control"]')).to_have_text("0")
    the_key_is_nowhere(page)

    # Traffic while the page is open: the live check counts it at its next refresh.
    variants = {user: client.assign(user, [key]) for user in (f"browser-user-{n}" for n in range(24))}
    buyers = [user for n, user in enumerate(variants) if n % 4 == 0]
    client.send_events([{"event": "purchase", "distinct_id": user} for user in buyers])
    for variant in ("control", "one-page"):
        exposed = sum(1 for chosen in variants.values() if chosen[key] == variant)
        bought = sum(1 for user in buyers if variants[user][key] == variant)
        expect(page.locator(f'[data-exposures="{variant}"]')).to_have_text(str(exposed), timeout=15_000)
        expect(page.locator(f'[data-metric-events="{variant}"]')).to_have_text(str(bought))
    expect(page.locator("#live-last")).to_contain_text("received")
    shot(page, "implementation")

    page.get_by_role("link", name="Results", exact=True).click()
    page.get_by_role("button", name="Recompute now").click()
    expect(page.locator(".verdict")).to_be_visible(timeout=60_000)
    shot(page, "results-recomputed")
    page.get_by_label("Variant to ship").select_option("one-page")
    page.get_by_role("button", name="Ship variant").click()
    page.get_by_role("button", name="Yes, ship variant").click()
    assert client.call("GET", f"/experiments/{key}", admin=True)["shipped_variant"] == "one-page"

    [session] = [c for c in page.context.cookies() if c["name"] == "__Host-abacus-console"]
    project_id, session_id, expires, _ = session["value"].split(".")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{stack_url}/console/sign-in")

    # The cookie as copied before signing out: the session has ended on the server too.
    page.context.add_cookies([session])
    page.goto(f"{stack_url}/console")
    expect(page).to_have_url(f"{stack_url}/console/sign-in")

    # Signed with what a read of the projects table gives (the admin key's hash): refused.
    key_hash = hashlib.sha256(ADMIN_KEY.encode()).hexdigest()
    signature = signing.mac(key_hash.encode(), "session", project_id, session_id, expires)
    page.context.add_cookies([{**session, "value": f"{project_id}.{session_id}.{expires}.{signature}"}])
    page.goto(f"{stack_url}/console")
    expect(page).to_have_url(f"{stack_url}/console/sign-in")


class _AttackerSite(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, str]] = {}  # path: HTML, what the test puts there

    def do_GET(self) -> None:
        body = self.pages.get(self.path, "").encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Quiet."""


@pytest.fixture(scope="module")
def attacker() -> Iterator[str]:
    """Another site: localhost and a port of its own, where the API is 127.0.0.1 (a real server on
    loopback: Chromium's Private Network Access rules would not let a page from nowhere frame it)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AttackerSite)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()


def attacker_page(attacker: str, path: str, html: str) -> str:
    """The URL of a page of the other site holding `html`."""
    _AttackerSite.pages[f"/{path}"] = html
    return f"{attacker}/{path}"


def test_a_page_of_another_site_cannot_sign_the_browser_in(stack_url, attacker, page):
    """Login CSRF: a page of another site posts its owner's admin key to the sign-in form, so that
    the victim would work in the attacker's project. The browser gets the refusal and no session."""
    form = (
        f'<form id="f" method="post" action="{stack_url}/console/sign-in">'
        f'<input name="admin_key" value="{ADMIN_KEY}"></form>'
        '<script>document.getElementById("f").submit()</script>'
    )
    page.goto(attacker_page(attacker, "sign-in.html", form))
    expect(page).to_have_url(f"{stack_url}/console/sign-in")
    expect(page.get_by_role("alert")).to_contain_text("sent from another site")
    shot(page, "login-csrf-refused")
    assert [c for c in page.context.cookies() if c["name"] == "__Host-abacus-console"] == []
    page.goto(f"{stack_url}/console")  # the victim opens the console afterwards: not signed in
    expect(page).to_have_url(f"{stack_url}/console/sign-in")


def test_the_report_page_cannot_be_framed_by_another_site(client, stack_url, attacker, page):
    key = "framed-report"
    client.create_experiment(
        {
            "key": key,
            "name": "Framed report",
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "purchase"},
        }
    )
    link = client.call("POST", f"/experiments/{key}/report/link", admin=True)["url"]
    page.goto(attacker_page(attacker, "frame.html", f'<iframe src="{link}" width="800" height="600"></iframe>'))
    # goto waits for the page's load event, which waits for its frame's: left empty.
    [framed] = [frame for frame in page.frames if frame != page.main_frame]
    assert not framed.url.startswith(stack_url), framed.url
    assert "Framed report" not in framed.content(), "the report was shown in another site's frame"
    page.goto(link)  # the link itself opens the report, with nothing refused by its policy
    expect(page.get_by_text("Framed report").first).to_be_visible()
