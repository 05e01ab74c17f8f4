"""Issue 31 in the console: a draft archived or deleted, any experiment duplicated into a new
draft, the Creation tab of a launched experiment read-only but for what PATCH lets change (the
console and the API agree), and archived experiments listed without a verdict."""

import re

from tests.conftest import invoke, sample_event
from tests.integration.test_console import session_cookie
from tests.integration.test_console_stages import FORM, page, post, stored


def created(cookie: str, key: str = "new-checkout") -> None:
    assert post("console_create", cookie, {**FORM, "key": key})["statusCode"] == 303


def act(cookie: str, action: str, key: str = "new-checkout", **form: str) -> dict:
    return post("console_experiment_action", cookie, {"action": action, "confirmed": "yes", **form}, key)


def test_a_draft_is_archived_or_deleted_from_its_page(project):
    cookie = session_cookie()
    created(cookie)
    shown = page("console_experiment", cookie)["body"]
    for action in ("launch", "archive", "delete", "duplicate"):
        assert f'name="action" value="{action}"' in shown, action
    asked = post("console_experiment_action", cookie, {"action": "delete"})
    assert asked["statusCode"] == 200 and "its key is free" in asked["body"]  # confirmed first
    assert stored()["status"] == "draft"
    deleted = act(cookie, "delete")
    assert deleted["statusCode"] == 303 and deleted["headers"]["Location"] == "/console"
    assert stored().get("error", {}).get("code") == "not_found"
    created(cookie)  # the key is free again
    archived = act(cookie, "archive")
    assert archived["statusCode"] == 303 and stored()["status"] == "archived"
    refused = act(cookie, "delete")
    assert refused["statusCode"] == 409 and "only a draft" in refused["body"]


def test_any_experiment_is_duplicated_into_a_new_draft(project):
    cookie = session_cookie()
    created(cookie)
    assert act(cookie, "launch")["statusCode"] == 303
    copied = post("console_experiment_action", cookie, {"action": "duplicate", "new_key": "new-checkout-2"})
    assert copied["statusCode"] == 303 and copied["headers"]["Location"] == "/console/experiments/new-checkout-2/edit"
    copy = stored("new-checkout-2")
    assert copy["status"] == "draft" and copy["variants"] == stored()["variants"]
    assert copy["history"][0]["changes"] == {"duplicated_from": "new-checkout"}
    taken = post("console_experiment_action", cookie, {"action": "duplicate", "new_key": "new-checkout-2"})
    assert taken["statusCode"] == 409 and "already exists" in taken["body"]
    wrong = post("console_experiment_action", cookie, {"action": "duplicate", "new_key": "Not a key"})
    assert wrong["statusCode"] == 400 and "new key" in wrong["body"]


def test_a_running_experiments_creation_tab_changes_what_patch_changes_and_shows_the_rest_read_only(project):
    cookie = session_cookie()
    created(cookie)
    assert act(cookie, "launch")["statusCode"] == 303
    tab = page("console_edit_form", cookie)
    assert tab["statusCode"] == 200
    body = tab["body"]
    for frozen in ("variant_key_0", "variant_weight_1", "metric_event", "minimum_detectable_effect"):
        assert re.search(rf'id="{frozen}"[^>]*readonly', body), frozen
    for editable in ("name", "description", "hypothesis", "targeting", "overrides", "rollout_percentage"):
        assert not re.search(rf'id="{editable}"[^>]*readonly', body), editable
    assert (
        "only automation, description, ends_at, hypothesis, name, overrides, rollout_percentage, targeting may change"
        in body
    )
    # The description PATCH accepts, the console accepts too; a frozen field sent is not applied.
    saved = post(
        "console_edit",
        cookie,
        {**FORM, "description": "Now in every country", "variant_weight_0": "10", "variant_weight_1": "90"},
        "new-checkout",
    )
    assert saved["statusCode"] == 303, saved["body"][:400]
    after = stored()
    assert after["description"] == "Now in every country" and after["variants"][0]["weight"] == 50
    narrower = post("console_edit", cookie, {**FORM, "rollout_percentage": "50"}, "new-checkout")
    assert narrower["statusCode"] == 409 and "may only widen" in narrower["body"]
    bad = post("console_edit", cookie, {**FORM, "targeting": "[{"}, "new-checkout")
    assert bad["statusCode"] == 422 and "targeting: not JSON" in bad["body"]


def test_an_archived_experiment_is_listed_as_archived_without_a_verdict_and_read_only(project):
    cookie = session_cookie()
    created(cookie)
    assert act(cookie, "launch")["statusCode"] == 303
    assert invoke("ResultsFunction", sample_event("recompute_results"))["statusCode"] == 200
    running = page("console_experiments", cookie)["body"]
    assert "keep running" in running.lower()  # the verdict of its snapshot, while it runs
    for action in ("stop", "archive"):
        assert act(cookie, action)["statusCode"] == 303, action
    listed = page("console_experiments", cookie)["body"]
    row = re.search(r"<tr>\s*<td><a href=\"/console/experiments/new-checkout\">.*?</tr>", listed, re.S)
    assert row is not None and "Archived" in row.group(0) and "serves &#39;control&#39;" in row.group(0)
    assert "keep running" not in row.group(0).lower()
    tab = page("console_edit_form", cookie)["body"]
    assert "nothing changes any more" in tab and '<button type="submit">Save' not in tab
