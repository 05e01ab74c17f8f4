"""posthog-js, the official browser SDK (pinned in tests/sdk-js/package.json), unchanged, in
Chromium, on a page served from another origin than the API: its remote config, flags, captures
(batched, unbatched, gzip-js, base64 and JSON) and the beacon it sends when the page unloads all
land, the flag is the variant /assign gives, and the nightly results count every exposure and
conversion exactly once."""

import json
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import BrowserContext, Page, Request

from abacus.core import hashing
from abacus_local.client import REQUEST_TIMEOUT_S
from abacus_local.template import ROOT
from tests.e2e.conftest import ADMIN_KEY, TOKEN, invoke_nightly, launch_split, people_who_would_switch
from tests.e2e.witness import Delivery, Witness

SDK_DIST = ROOT / "tests" / "sdk-js" / "node_modules" / "posthog-js" / "dist"
KEY = "js-checkout"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>shop</title><script src="/array.js"></script></head>
<body><a id="away" href="/away.html">away</a>
<script>
// As an app starts posthog-js: its token, Abacus as api_host, this visitor's id.
window.start = (apiHost, token, distinctId, key, options) => new Promise((resolve) => {
  posthog.init(token, Object.assign({
    api_host: apiHost,
    bootstrap: {distinctID: distinctId},
    // Under automation (navigator.webdriver) posthog-js takes the browser for a bot and drops
    // its events; PostHog's own advice for end-to-end tests.
    opt_out_useragent_filter: true,
    loaded: (ph) => ph.onFeatureFlags(() => resolve(ph.getFeatureFlag(key))),
  }, options));
});
// A sign-in: posthog.identify, then the flag once posthog-js has reloaded its flags (which it
// asks for with $anon_distinct_id, the id it had until then).
window.signIn = (userId, key) => new Promise((resolve) => {
  let registering = true;
  const stop = posthog.onFeatureFlags(() => {
    if (registering) return;  // its call at once, for the flags already loaded
    stop();
    resolve(posthog.getFeatureFlag(key));
  });
  registering = false;
  posthog.identify(userId);
});
</script></body></html>
"""
AWAY = "<!doctype html><title>away</title><p>left the shop</p>"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Quiet."""


@pytest.fixture(scope="module")
def shop_origin(tmp_path_factory) -> Iterator[str]:
    """The app's site: another origin (localhost and its own port) than the API (127.0.0.1)."""
    bundle = SDK_DIST / "array.js"
    assert bundle.exists(), "make test installs tests/sdk-js (npm ci); run it so"
    site = tmp_path_factory.mktemp("shop")
    shutil.copy(bundle, site / "array.js")
    (site / "index.html").write_text(PAGE)
    (site / "away.html").write_text(AWAY)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()


class FailedRequests:
    """Every request to the API the browser reports as failed: a CORS refusal is one."""

    def __init__(self, context: BrowserContext, api_url: str):
        self.failed: list[str] = []
        context.on("requestfailed", self._failed)
        self.api_url = api_url

    def _failed(self, request: Request) -> None:
        if request.url.startswith(self.api_url) and request.failure != "net::ERR_ABORTED":
            self.failed.append(f"{request.method} {request.url}: {request.failure}")


@pytest.fixture
def witness(stack_url: str) -> Iterator[Witness]:
    proxy = Witness(stack_url)
    yield proxy
    proxy.shutdown()


def visit(
    browser, shop_origin: str, api_url: str, distinct_id: str, options: dict, key: str = KEY
) -> tuple[Page, FailedRequests, str]:
    """A visitor's fresh browser (no stored id): the shop's page, posthog-js started, the flag read."""
    context = browser.new_context()
    failures = FailedRequests(context, api_url)
    page = context.new_page()
    page.goto(f"{shop_origin}/index.html")
    variant = page.evaluate(
        "([api, token, id, key, options]) => start(api, token, id, key, options)",
        [api_url, TOKEN, distinct_id, key, options],
    )
    return page, failures, variant


@dataclass(frozen=True)
class Visitor:
    distinct_id: str
    options: dict
    buys: bool
    leaves: bool  # leaves the page at once: what is still queued goes by sendBeacon as it unloads
    purchase_sent_as: Callable[[Delivery], bool] = lambda _: True


def gzip_js(delivery: Delivery) -> bool:
    return delivery.body[:2] == b"\x1f\x8b" and delivery.content_type == "text/plain"


def by_fetch(delivery: Delivery) -> bool:
    return delivery.fetch_mode == "cors"


def by_beacon(delivery: Delivery) -> bool:
    """sendBeacon sends a plain body without CORS (its answer is never read)."""
    return delivery.fetch_mode == "no-cors"


VISITORS = [
    # The default: batched, gzip-js (the compression remote config offers), by fetch.
    Visitor("js-batched", {}, buys=True, leaves=False, purchase_sent_as=lambda d: gzip_js(d) and by_fetch(d)),
    Visitor("js-unbatched", {"request_batching": False}, buys=True, leaves=False, purchase_sent_as=gzip_js),
    Visitor("js-unload", {}, buys=True, leaves=True, purchase_sent_as=lambda d: gzip_js(d) and by_beacon(d)),
    # Uncompressed JSON: not a simple request, so the browser asks a CORS preflight first.
    Visitor("js-json", {"disable_compression": True}, buys=True, leaves=False,
            purchase_sent_as=lambda d: d.content_type == "application/json"),
    # Uncompressed, on unload: posthog-js sends its beacon base64-encoded.
    Visitor("js-beacon-base64", {"disable_compression": True}, buys=True, leaves=True,
            purchase_sent_as=lambda d: d.query.get("compression") == ["base64"] and by_beacon(d)),
    Visitor("js-looker-1", {}, buys=False, leaves=False),
    Visitor("js-looker-2", {"request_batching": False}, buys=False, leaves=True),
]  # fmt: skip


PAYLOAD = {"button": "Pay now", "steps": 1}


def test_posthog_js_in_a_browser_from_another_origin(client, stack_url, shop_origin, browser, witness):
    client.create_experiment(
        {
            "key": KEY,
            "name": "posthog-js checkout",
            "variants": [{"key": "control", "weight": 50}, {"key": "one-page", "weight": 50, "payload": PAYLOAD}],
            "primary_metric": {"event": "js-purchase"},
        }
    )
    client.launch(KEY)
    seen: dict[str, str] = {}
    for visitor in VISITORS:
        page, failures, variant = visit(browser, shop_origin, witness.url, visitor.distinct_id, visitor.options)
        # The flag is the user's variant, as /assign gives it (asked without recording an exposure).
        assert variant == client.assign(visitor.distinct_id, [KEY], expose=False)[KEY], visitor
        seen[visitor.distinct_id] = variant
        assert page.evaluate(f"posthog.getFeatureFlag('{KEY}')") == variant  # read twice: one exposure
        # The variant's payload, parsed, as posthog-js gives it (none for control).
        assert page.evaluate(f"posthog.getFeatureFlagPayload('{KEY}')") == (PAYLOAD if variant == "one-page" else None)
        if visitor.buys:
            page.evaluate("posthog.capture('js-purchase', {amount: 30})")
            if not visitor.leaves:
                # Sent while the page stays, as its batch is: a page load before the batch's flush
                # would have posthog-js send it on unload, by beacon (a busy machine's race).
                witness.wait_for("js-purchase", visitor.distinct_id)
        if visitor.leaves:
            page.click("#away")
            page.wait_for_url("**/away.html")
        else:  # a second page load in the same browser: the SDK starts again, reads the flag again
            witness.wait_for("$feature_flag_called", visitor.distinct_id)
            page.goto(f"{shop_origin}/index.html")
            again = page.evaluate(
                "([a, t, i, k]) => start(a, t, i, k, {})", [witness.url, TOKEN, visitor.distinct_id, KEY]
            )
            assert again == variant
        witness.wait_for("$feature_flag_called", visitor.distinct_id)
        if visitor.buys:
            assert any(visitor.purchase_sent_as(d) for d in witness.wait_for("js-purchase", visitor.distinct_id)), (
                visitor.distinct_id,
                witness.summary(),
            )
        witness.wait_until_idle()
        assert not failures.failed, failures.failed
        page.context.close()
    # Everything posthog-js asked for was answered: its config, its flags, the preflight of its JSON.
    answered = {(d.method, d.path) for d in witness.deliveries if d.status in (200, 204)}
    assert {("GET", f"/array/{TOKEN}/config.js"), ("POST", "/flags/"), ("OPTIONS", "/e/")} <= answered
    assert all(d.status in (200, 204) for d in witness.deliveries), witness.summary()

    invoke_nightly(stack_url, datetime.now(UTC) + timedelta(days=1), client, KEY)
    rows = {row["key"]: row for row in client.results(KEY)["variants"]}
    for variant in ("control", "one-page"):
        users = [v for v in VISITORS if seen[v.distinct_id] == variant]
        buyers = [v for v in users if v.buys]
        assert (rows[variant]["exposures"], rows[variant]["conversions"]) == (len(users), len(buyers)), variant


SIGN_UP_KEY = "js-sign-up"
SIGN_UP_SPLIT = [("control", 50), ("one-page", 50)]


def test_posthog_js_people_keep_their_variant_through_sign_in_and_are_counted_once(
    client, stack_url, shop_origin, browser, witness
):
    """Six people: an anonymous visit reads the flag, posthog.identify signs them in (the
    $identify event, then flags asked again with $anon_distinct_id), the flag read again, a
    purchase as the signed-in user. Each id of a pair hashes to another variant, yet nobody
    switches, and the results count each person once, with their purchase."""
    launch_split(client, SIGN_UP_KEY, SIGN_UP_SPLIT, "js-person-purchase")
    people = people_who_would_switch(SIGN_UP_KEY, SIGN_UP_SPLIT, "js", 6)
    # Each person in a fresh browser of their own, all at once (as many people use a site): the
    # anonymous id bootstrapped, which posthog-js keeps anonymous.
    browsers = []
    for anon, _ in people:
        context = browser.new_context()
        failures = FailedRequests(context, witness.url)
        page = context.new_page()
        page.goto(f"{shop_origin}/index.html")
        # As long as the API may take for flags (posthog-js gives up after 3 s): six browsers at
        # once may each meet a function's cold start.
        options = {"feature_flag_request_timeout_ms": LOADED_MS}
        page.evaluate(
            "([api, token, id, key, options]) => { window.firstFlag = start(api, token, id, key, options); }",
            [witness.url, TOKEN, anon, SIGN_UP_KEY, options],
        )
        browsers.append((page, failures))
    shown = {}
    for (anon, _), (page, _) in zip(people, browsers, strict=True):
        shown[anon] = page.evaluate("window.firstFlag")
        assert shown[anon] == hashing.pick_variant(SIGN_UP_KEY, anon, SIGN_UP_SPLIT), anon
        witness.wait_for("$feature_flag_called", anon)
    for (_, user), (page, _) in zip(people, browsers, strict=True):
        page.evaluate("([user, key]) => { window.signedInFlag = signIn(user, key); }", [user, SIGN_UP_KEY])
    for (anon, user), (page, _) in zip(people, browsers, strict=True):
        assert page.evaluate("window.signedInFlag") == shown[anon], (anon, user)  # nobody switches at sign-in
        assert page.evaluate("posthog.get_distinct_id()") == user
        page.evaluate("posthog.capture('js-person-purchase', {amount: 30})")
    for (_, user), (page, failures) in zip(people, browsers, strict=True):
        witness.wait_for("$identify", user)
        witness.wait_for("$feature_flag_called", user)  # identify resets what posthog-js reported
        witness.wait_for("js-person-purchase", user)
        witness.wait_until_idle()
        assert not failures.failed, failures.failed
        page.context.close()
    # The signed-in id alone, as on another device: the person's variant too.
    for anon, user in people:
        assert client.assign(user, [SIGN_UP_KEY], expose=False)[SIGN_UP_KEY] == shown[anon], (anon, user)
    # posthog-js asked its flags after each sign-in with the anonymous id beside the user's.
    flag_requests = [e for d in witness.deliveries if d.path == "/flags/" and d.status == 200 for e in d.events()]
    assert {(e.get("distinct_id"), e.get("$anon_distinct_id")) for e in flag_requests} >= set(
        (user, anon) for anon, user in people
    ), flag_requests
    assert all(d.status in (200, 204) for d in witness.deliveries), witness.summary()

    invoke_nightly(stack_url, datetime.now(UTC) + timedelta(days=1), client, SIGN_UP_KEY)
    rows = {row["key"]: row for row in client.results(SIGN_UP_KEY)["variants"]}
    for variant, _ in SIGN_UP_SPLIT:
        persons = sum(1 for seen in shown.values() if seen == variant)
        assert persons == len(people) // 2
        # Two exposures (the anonymous id's and the user's) and one purchase: one person.
        assert (rows[variant]["exposures"], rows[variant]["conversions"]) == (persons, persons), variant


def test_a_page_on_another_origin_reaches_the_app_routes_but_never_the_admin_routes(
    client, stack_url, shop_origin, browser
):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{shop_origin}/away.html")
    outcome = page.evaluate(
        """async ([api, token, admin]) => {
            const call = async (path, init) => {
                try { return (await fetch(api + path, init)).status; } catch (error) { return error.name; }
            };
            return {
                assign: await call('/assign', {method: 'POST', headers: {'content-type': 'application/json'},
                                               body: JSON.stringify({token, distinct_id: 'cors-user', expose: false})}),
                admin: await call('/experiments', {headers: {authorization: 'Bearer ' + admin}}),
            };
        }""",
        [stack_url, TOKEN, ADMIN_KEY],
    )
    # The JSON POST passed its preflight; the admin key's Authorization header is refused by it.
    assert outcome == {"assign": 200, "admin": "TypeError"}
    context.close()


# PostHog's HTML snippet, as PostHog publishes it for every page of a site (its Docusaurus plugin,
# pinned in tests/sdk-js/package.json, writes it into each page's head): read from the package,
# used verbatim. It loads posthog-js from `<api_host>/static/array.js`.
SNIPPET_SOURCE = ROOT / "tests" / "sdk-js" / "node_modules" / "posthog-docusaurus" / "src" / "index.js"
SNIPPET_KEY = "snippet-checkout"
LOADED_MS = REQUEST_TIMEOUT_S * 1000  # the script and the remote config, each a request to the API
SNIPPET_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>shop</title>
<script>
{snippet}
posthog.init({token}, {config})
</script></head>
<body><script>
window.flagRead = new Promise((resolve) => posthog.onFeatureFlags(() => resolve(posthog.getFeatureFlag({key}))));
</script></body></html>
"""


def posthog_snippet() -> str:
    source = SNIPPET_SOURCE.read_text()
    found = re.search(r"!function\(t,e\)\{.*?\}\(document,window\.posthog\|\|\[\]\);", source, re.DOTALL)
    assert found is not None, "make test installs tests/sdk-js (npm ci); run it so"
    return found.group(0)


@pytest.fixture
def snippet_site(tmp_path, witness) -> Iterator[str]:
    """A shop's page with PostHog's snippet in its head, api_host the API (through the witness),
    served from another origin than the API's."""
    # The plugin's init: api_host and the site's options. Under automation posthog-js takes the
    # browser for a bot and drops its events: PostHog's advice for end-to-end tests is this option.
    config = {"api_host": witness.url, "opt_out_useragent_filter": True}
    init = {"token": json.dumps(TOKEN), "config": json.dumps(config)}
    page = SNIPPET_PAGE.format(snippet=posthog_snippet(), key=json.dumps(SNIPPET_KEY), **init)
    (tmp_path / "index.html").write_text(page)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()


def test_posthog_js_installed_with_posthogs_html_snippet(client, stack_url, browser, witness, snippet_site):
    """The snippet loads array.js from Abacus, and posthog-js then reads its flag (the variant
    /assign gives), reports the exposure, and captures a purchase, each counted by the nightly job."""
    assert "/static/array.js" in posthog_snippet()
    client.create_experiment(
        {
            "key": SNIPPET_KEY,
            "name": "Snippet checkout",
            "variants": [{"key": "control", "weight": 50}, {"key": "one-page", "weight": 50}],
            "primary_metric": {"event": "snippet-purchase"},
        }
    )
    client.launch(SNIPPET_KEY)
    visitors = {}
    for buys in (True, True, False):
        context = browser.new_context()
        failures = FailedRequests(context, witness.url)
        page = context.new_page()
        page.goto(snippet_site)
        # posthog-js is loaded (from the API's /static/array.js) and started: window.posthog is the SDK.
        page.wait_for_function("() => window.posthog && window.posthog.__loaded === true", timeout=LOADED_MS)
        variant = page.evaluate("window.flagRead")
        distinct_id = page.evaluate("posthog.get_distinct_id()")
        assert variant == client.assign(distinct_id, [SNIPPET_KEY], expose=False)[SNIPPET_KEY]
        if buys:
            page.evaluate("posthog.capture('snippet-purchase', {amount: 30})")
            witness.wait_for("snippet-purchase", distinct_id)
        witness.wait_for("$feature_flag_called", distinct_id)
        page.goto(snippet_site)  # the next page: array.js comes from the browser's cache
        assert page.evaluate("window.flagRead") == variant
        # PostHog's docs' snippet now loads array.js as a CORS request (crossOrigin="anonymous"): answered so.
        cors = page.evaluate(
            "(url) => fetch(url, {mode: 'cors'}).then((r) => [r.status, r.headers.get('content-type')])",
            f"{stack_url}/static/array.js",
        )
        assert cors == [200, "text/javascript; charset=utf-8"]
        witness.wait_until_idle()
        assert not failures.failed, failures.failed
        context.close()
        visitors[distinct_id] = (variant, buys)
    loads = [d for d in witness.deliveries if d.path == "/static/array.js"]
    assert [d.status for d in loads] == [200] * len(visitors), witness.summary()  # once a visitor: cached a day

    invoke_nightly(stack_url, datetime.now(UTC) + timedelta(days=1), client, SNIPPET_KEY)
    rows = {row["key"]: row for row in client.results(SNIPPET_KEY)["variants"]}
    for variant in ("control", "one-page"):
        users = [buys for seen, buys in visitors.values() if seen == variant]
        assert (rows[variant]["exposures"], rows[variant]["conversions"]) == (len(users), sum(users)), variant
