"""The console's Creation and Implementation pages (issue 17) through ResultsFunction: the form
checked with the API's own rules, each error on its field, the plan, drafts edited and previewed;
the snippets with the experiment's key and the project's token; the live check counted as
requests arrive, from the counters alone."""

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import urlencode

from abacus.core import planning
from abacus.experiments import plans
from abacus.experiments.metrics_spec import MetricSpec
from tests.conftest import TOKEN, invoke, sample_event
from tests.integration.test_console import session_cookie


def csrf(cookie: str) -> str:
    page = invoke("ResultsFunction", {**sample_event("console_new_form"), "cookies": [cookie]})["body"]
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
    assert found is not None
    return found.group(1)


FORM = {
    "key": "new-checkout",
    "name": "One-page checkout",
    "variant_key_0": "control",
    "variant_weight_0": "50",
    "variant_key_1": "one-page",
    "variant_weight_1": "50",
    "metric_event": "purchase",
    "metric_kind": "conversion",
    "metric_baseline": "0.2",
    "minimum_detectable_effect": "10",
    "rollout_percentage": "100",
    "daily_users": "2000",
}


def post(name: str, cookie: str, form: dict, key: str | None = None, query: str = "") -> dict:
    event = sample_event(name)
    event["body"], event["cookies"] = urlencode({"csrf_token": csrf(cookie), **form}), [cookie]
    if key is not None:
        event["rawPath"] = event["rawPath"].replace("new-checkout", key)
        event["pathParameters"] = {"key": key}
    if query:
        event["rawQueryString"], event["queryStringParameters"] = query, dict([query.split("=")])
    return invoke("ResultsFunction", event)


def page(name: str, cookie: str, key: str = "new-checkout", **query: str) -> dict:
    event = sample_event(name)
    event["cookies"] = [cookie]
    event["rawPath"] = event["rawPath"].replace("new-checkout", key)
    if "pathParameters" in event:
        event["pathParameters"] = {"key": key}
    if query:
        event["rawQueryString"], event["queryStringParameters"] = urlencode(query), query
    return invoke("ResultsFunction", event)


def stored(key: str = "new-checkout") -> dict:
    event = sample_event("get_experiment")
    event["rawPath"], event["pathParameters"] = f"/experiments/{key}", {"key": key}
    return json.loads(invoke("ResultsFunction", event)["body"])


def test_the_form_is_checked_with_the_apis_rules_each_error_on_its_field(project):
    cookie = session_cookie()
    wrong = {**FORM, "key": "Not A Slug", "variant_weight_1": "40", "targeting": "[{", "metric_window_days": "900"}
    answer = post("console_check", cookie, wrong)
    assert answer["statusCode"] == 200 and answer["headers"]["Content-Type"] == "application/json"
    errors = json.loads(answer["body"])["errors"]
    assert set(errors) == {"key", "variants", "targeting", "metric_window_days"}, errors
    assert errors["variants"] == "variants: weights must sum to 100, not 90"
    assert errors["metric_window_days"].startswith("primary_metric.window_days:")
    # The same rules as the API's: what POST /experiments says of the same experiment.
    api = sample_event("create_experiment")
    body = {
        "key": "Not A Slug",
        "name": "x",
        "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 40}],
    }
    api["body"] = json.dumps({**body, "primary_metric": {"event": "purchase"}})
    api_errors = {
        e["field"]: e["message"] for e in json.loads(invoke("ResultsFunction", api)["body"])["error"]["errors"]
    }
    assert errors["key"] == f"key: {api_errors['key']}" and errors["variants"] == f"variants: {api_errors['variants']}"
    # Sent without JavaScript: the form again, 422, each error on its field, nothing stored.
    sent = post("console_create", cookie, wrong)
    assert sent["statusCode"] == 422
    assert re.search(r'id="variant_weight_1"[^>]*value="40"', sent["body"])
    assert 'id="variants-error" class="error" data-error-for="variants" role="alert">variants: weights' in sent["body"]
    assert re.search(r'id="key"[^>]*aria-invalid="true"', sent["body"])
    assert invoke("ResultsFunction", sample_event("get_experiment"))["statusCode"] == 404


def test_the_plan_follows_the_fields(project):
    cookie = session_cookie()
    plan = json.loads(post("console_check", cookie, FORM)["body"])
    assert plan["errors"] == {}
    # Independently: the two-proportion sample (planning) for +10% on 20%, inflated for the sequential design.
    fixed = planning.exposures_for_conversion(0.2, 0.1)
    needed = plans.sequential_exposures(fixed)
    assert needed is not None
    assert needed == plans.sequential_exposures(
        plans.fixed_horizon_exposures(MetricSpec(event="purchase", baseline=0.2), 0.1, 2, None)
    )
    days = -(-needed // 1000)  # 2,000 users a day, half of them in the smallest variant
    assert plan["plan"].startswith(f"{needed:,} exposed users per variant to detect a 10% relative change")
    assert f"about {days:,} days" in plan["plan"]
    halved = json.loads(post("console_check", cookie, {**FORM, "rollout_percentage": "50"})["body"])["plan"]
    assert f"about {-(-needed // 500):,} days" in halved
    unplanned = json.loads(post("console_check", cookie, {**FORM, "metric_baseline": ""})["body"])["plan"]
    assert unplanned.startswith("Give the primary metric a baseline")


def test_a_draft_is_created_edited_previewed_and_launched_from_the_console(project):
    cookie = session_cookie()
    created = post("console_create", cookie, {**FORM, "overrides": "qa-anna one-page"})
    assert created["statusCode"] == 303 and created["headers"]["Location"] == "/console/experiments/new-checkout"
    draft = stored()
    assert draft["status"] == "draft" and draft["overrides"] == {"qa-anna": "one-page"}
    assert draft["primary_metric"]["baseline"] == 0.2 and draft["minimum_detectable_effect"] == 0.1
    again = post("console_create", cookie, FORM)
    assert again["statusCode"] == 409 and "already" in again["body"]
    form = page("console_edit_form", cookie)
    assert form["statusCode"] == 200 and re.search(r'id="variant_key_1"[^>]*value="one-page"', form["body"])
    edited = post(
        "console_edit", cookie, {**FORM, "name": "Checkout on one page", "variant_weight_1": "50"}, "new-checkout"
    )
    assert edited["statusCode"] == 303, edited["body"][:500]
    assert stored()["name"] == "Checkout on one page" and stored()["overrides"] == {}
    post("console_edit", cookie, {**FORM, "overrides": "qa-anna one-page"}, "new-checkout")
    previewed = page("console_experiment", cookie, preview="qa-anna")["body"]
    assert "'qa-anna' gets 'one-page' (an override" in previewed
    assert "gets no variant until the launch" in page("console_experiment", cookie, preview="bob")["body"]
    launched = post("console_experiment_action", cookie, {"action": "launch", "confirmed": "yes"})
    assert launched["statusCode"] == 303 and stored()["status"] == "running"
    frozen = page("console_edit_form", cookie)  # the Creation tab: read-only but for what may change
    assert frozen["statusCode"] == 200 and re.search(r'id="variant_weight_1"[^>]*readonly', frozen["body"])


def assign(distinct_id: str, experiment: str = "new-checkout") -> str:
    event = sample_event("assign")
    event["body"] = json.dumps({"token": TOKEN, "distinct_id": distinct_id, "experiments": [experiment]})
    return json.loads(invoke("AssignFunction", event)["body"])["assignments"][experiment]


def send(events: list[dict]) -> dict:
    event = sample_event("post_events")
    event["body"] = json.dumps({"token": TOKEN, "events": events})
    return json.loads(invoke("IngestFunction", event)["body"])


def live_counts(cookie: str) -> dict[str, tuple[int, int]]:
    fragment = page("console_live_check", cookie)
    assert fragment["statusCode"] == 200
    exposures = dict(re.findall(r'data-exposures="([^"]+)">([\d,]+)<', fragment["body"]))
    events = dict(re.findall(r'data-metric-events="([^"]+)">([\d,]+)<', fragment["body"]))
    return {key: (int(exposures[key].replace(",", "")), int(events[key].replace(",", ""))) for key in exposures}


def test_the_implementation_page_has_the_snippets_and_the_live_check_counts_by_recount(project):
    cookie = session_cookie()
    post("console_create", cookie, FORM)
    post("console_experiment_action", cookie, {"action": "launch", "confirmed": "yes"})
    implementation = page("console_implementation", cookie)["body"]
    # The project's token, public, is in the snippets: ready to paste, no field to type it in.
    assert (
        f'posthog.init("<span data-token>{TOKEN}</span>", '
        '{ api_host: "https://abc123.execute-api.us-east-1.amazonaws.com" })' in implementation
    )
    assert 'id="project-token"' not in implementation
    assert 'posthog.get_feature_flag("new-checkout", "user-42")' in implementation
    # Sign-in and persons: identify in the browser, alias and set on the server.
    assert (
        'posthog.identify("user-42"' in implementation
        and 'posthog.alias("anonymous-id-before-sign-in"' in implementation
    )
    assert "posthog.group(" not in implementation  # a person experiment: no group snippet
    assert '"experiments": ["new-checkout"]' in implementation and "abacus_local_admin" not in implementation
    assert live_counts(cookie) == {"control": (0, 0), "one-page": (0, 0)}
    # 30 users through /assign (each twice: counted once), 10 through PostHog's exposure event (sent
    # twice, and once more an hour earlier: a moved exposure is not a new one); purchases after
    # exposure count, before it or by someone never exposed do not, and a resent batch adds nothing.
    variants = {f"u{n}": assign(f"u{n}") for n in range(30)}
    variants |= {f"u{n}": assign(f"u{n}") for n in range(30)}
    flag_calls: list[dict[str, Any]] = [
        {
            "event": "$feature_flag_called",
            "distinct_id": f"e{n}",
            "uuid": f"00000000-0000-4000-8000-{n:012d}",
            "properties": {
                "$feature_flag": "new-checkout",
                "$feature_flag_response": "one-page" if n % 2 else "control",
            },
        }
        for n in range(10)
    ]
    send(flag_calls)
    send(flag_calls)
    for call in flag_calls:
        variants[call["distinct_id"]] = call["properties"]["$feature_flag_response"]
    purchases = [{"event": "purchase", "distinct_id": f"u{n}"} for n in range(0, 30, 3)]
    purchases += [{"event": "purchase", "distinct_id": "e1"}, {"event": "purchase", "distinct_id": "stranger"}]
    purchases += [{"event": "page_view", "distinct_id": "u1"}]  # no metric of it
    purchases = [{**p, "uuid": f"10000000-0000-4000-8000-{n:012d}"} for n, p in enumerate(purchases)]
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    early = {"event": "purchase", "distinct_id": "u2", "timestamp": an_hour_ago}  # before u2's exposure
    assert send([*purchases, {**early, "uuid": "20000000-0000-4000-8000-000000000000"}])["rejected"] == []
    send(purchases)
    exposed = Counter(variants.values())
    bought = Counter(
        variants[p["distinct_id"]] for p in purchases if p["event"] == "purchase" and p["distinct_id"] in variants
    )
    assert live_counts(cookie) == {key: (exposed[key], bought[key]) for key in ("control", "one-page")}
    fragment = page("console_live_check", cookie)["body"]
    assert "The exposures so far fit the weights" in fragment and "Last exposure or metric event received" in fragment


def test_a_project_from_before_readable_tokens_types_its_token_in_until_it_is_rotated(project):
    """A project created when only the token's hash was kept has no readable token: the page asks
    for it (the script puts it in the snippets); a rotated token is kept readable from then on."""
    from abacus import projects
    from abacus.storage.project_items import ProjectItem

    ProjectItem("project#test").update(actions=[ProjectItem.public_token.remove()])  # as such an item is
    cookie = session_cookie()
    post("console_create", cookie, FORM)
    implementation = page("console_implementation", cookie)["body"]
    assert 'id="project-token"' in implementation and TOKEN not in implementation
    assert 'posthog.init("<span data-token>phc_your_project_token</span>"' in implementation
    rotated = projects.rotate("test", token=True)["token"]
    implementation = page("console_implementation", cookie)["body"]
    assert f'posthog.init("<span data-token>{rotated}</span>"' in implementation
    assert 'id="project-token"' not in implementation and TOKEN not in implementation


def test_only_the_public_token_is_kept_readable_and_a_request_still_finds_it_by_its_hash(project):
    from abacus import projects
    from abacus.storage.credentials import CredentialItem, hash_key, key_owner
    from abacus.storage.project_items import ProjectItem

    item = ProjectItem.get("project#test")
    assert item.public_token == TOKEN
    stored = json.dumps(item.serialize())
    assert project["admin_key"] not in stored and project["flags_key"] not in stored
    # Requests find the token by its hash, in the credentials table.
    hashes = json.dumps(CredentialItem.get("project#test").serialize())
    assert key_owner(TOKEN) == ("test", "token", None, None) and hash_key(TOKEN) in hashes
    rotated = projects.rotate("test", token=True, admin_key=True, flags_key=True)
    item = ProjectItem.get("project#test")
    assert item.public_token == rotated["token"] and key_owner(TOKEN) is None
    assert rotated["admin_key"] not in json.dumps(item.serialize())


def test_the_live_check_warns_early_of_a_sample_ratio_mismatch(project):
    cookie = session_cookie()
    post("console_create", cookie, FORM)
    post("console_experiment_action", cookie, {"action": "launch", "confirmed": "yes"})
    # Exposures reported by one variant only (the other's app never reports them): 40 to 0.
    send(
        [
            {
                "event": "$feature_flag_called",
                "distinct_id": f"e{n}",
                "properties": {"$feature_flag": "new-checkout", "$feature_flag_response": "one-page"},
            }
            for n in range(40)
        ]
    )
    fragment = page("console_live_check", cookie)["body"]
    assert 'class="error" id="live-srm">Early warning: the exposures so far do not fit the weights' in fragment


def test_a_live_count_that_cannot_be_written_never_fails_the_request(project):
    cookie = session_cookie()
    post("console_create", cookie, FORM)
    post("console_experiment_action", cookie, {"action": "launch", "confirmed": "yes"})
    from pynamodb.exceptions import UpdateError

    with mock.patch("abacus.storage.live_counts.LiveCountItem.update", side_effect=UpdateError("throttled")):
        assert assign("someone") in ("control", "one-page")
        assert send([{"event": "purchase", "distinct_id": "someone"}])["accepted"] == 1
    assert live_counts(cookie) == {"control": (0, 0), "one-page": (0, 0)}


def test_the_form_starts_from_the_traffic_the_projects_experiments_have_seen(project):

    cookie = session_cookie()
    assert invoke("ResultsFunction", sample_event("create_experiment"))["statusCode"] == 201
    launch = sample_event("launch_experiment")
    launch["body"] = json.dumps({"started_at": (datetime.now(UTC) - timedelta(days=2)).isoformat()})
    assert invoke("ResultsFunction", launch)["statusCode"] == 200
    for n in range(12):
        assign(f"seen-{n}")
    assert invoke("ResultsFunction", sample_event("recompute_results"))["statusCode"] == 200
    form = page("console_new_form", cookie)["body"]
    # 12 exposures over the 2 days its results cover (its rollout is 100%): 6 users a day.
    assert re.search(r'id="daily_users"[^>]*value="6"', form), form
    assert "Seen: about 6 users a day reach the flag of &#39;new-checkout&#39;" in form
