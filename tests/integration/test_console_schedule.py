"""Issue 32 in the console's Creation form: the schedule (starts_at, ends_at, UTC), the automation,
the layer and the holdout shown, saved and checked as the API checks them, and on a running
experiment editable as PATCH allows (ends_at and the automation), the rest read-only."""

import json
import re
from datetime import UTC, datetime, timedelta

from tests.integration.test_console import session_cookie
from tests.integration.test_console_first_hour import act
from tests.integration.test_console_stages import FORM, page, post, stored


def local(moment: datetime) -> str:
    """A datetime-local input's value (UTC, to the second)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def test_the_form_saves_and_shows_the_schedule_automation_layer_and_holdout(project):
    cookie = session_cookie()
    now = datetime.now(UTC).replace(microsecond=0)
    starts, ends = now + timedelta(days=1), now + timedelta(days=15)
    form = {
        **FORM,
        "starts_at": local(starts),
        "ends_at": local(ends),
        "automation_ship": "on",
        "automation_srm": "on",
        "automation_minimum_days": "10",
        "layer_key": "checkout-page",
        "layer_share": "30",
    }
    assert post("console_create", cookie, form)["statusCode"] == 303
    saved = stored()
    assert saved["starts_at"] == starts.isoformat().replace("+00:00", "Z")
    assert saved["ends_at"] == ends.isoformat().replace("+00:00", "Z")
    assert saved["automation"] == {"ship": True, "no_effect": False, "srm": True, "minimum_days": 10}
    assert saved["layer"] == {"key": "checkout-page", "share": 30} and saved["holdout"] is None

    body = page("console_edit_form", cookie)["body"]
    assert re.search(rf'id="starts_at" name="starts_at" type="datetime-local" value="{local(starts)}"', body)
    assert re.search(rf'id="ends_at" name="ends_at" type="datetime-local" value="{local(ends)}"', body)
    assert "Launch at (UTC" in body
    assert re.search(r'id="automation_ship" name="automation_ship" type="checkbox" checked', body)
    assert re.search(r'id="automation_no_effect" name="automation_no_effect" type="checkbox"\s', body)
    assert re.search(r'id="automation_minimum_days" name="automation_minimum_days" type="text" value="10"', body)
    assert re.search(r'id="layer_key" name="layer_key" type="text" value="checkout-page"', body)
    assert re.search(r'id="layer_share" name="layer_share" type="text" value="30"', body)

    # A holdout instead of the layer (a holdout takes none): saved, and shown ticked with its scope.
    holdout = {**form, "layer_key": "", "layer_share": "", "holdout": "on", "holdout_layer": "checkout-page"}
    assert post("console_edit", cookie, holdout, "new-checkout")["statusCode"] == 303
    assert stored()["holdout"] == {"layer": "checkout-page"} and stored()["layer"] is None
    body = page("console_edit_form", cookie)["body"]
    assert re.search(r'id="holdout" name="holdout" type="checkbox" checked', body)
    assert re.search(r'id="holdout_layer" name="holdout_layer" type="text" value="checkout-page"', body)


def test_the_forms_errors_name_the_new_fields(project):
    cookie = session_cookie()
    now = datetime.now(UTC)
    wrong = {**FORM, "ends_at": "tomorrow", "automation_minimum_days": "0", "layer_share": "30"}
    errors = json.loads(post("console_check", cookie, wrong)["body"])["errors"]
    assert set(errors) == {"ends_at", "automation_minimum_days", "layer_key"}, errors
    assert "not a date and time" in errors["ends_at"]
    assert errors["automation_minimum_days"].startswith("automation.minimum_days:")
    past = {**FORM, "starts_at": local(now - timedelta(hours=1))}
    errors = json.loads(post("console_check", cookie, past)["body"])["errors"]
    assert set(errors) == {"starts_at"} and "has passed" in errors["starts_at"]
    bad_share = {**FORM, "layer_key": "checkout-page", "layer_share": "0"}
    assert set(json.loads(post("console_check", cookie, bad_share)["body"])["errors"]) == {"layer_share"}
    holdout_in_layer = {**FORM, "layer_key": "l", "layer_share": "10", "holdout": "on"}
    errors = json.loads(post("console_check", cookie, holdout_in_layer)["body"])["errors"]
    assert "layer: a holdout takes none" in errors["holdout"]
    refused = post("console_create", cookie, past)
    assert refused["statusCode"] == 422 and 'data-error-for="starts_at" role="alert">starts_at:' in refused["body"]


def test_a_running_experiments_schedule_and_automation_change_and_the_rest_is_read_only(project):
    cookie = session_cookie()
    now = datetime.now(UTC).replace(microsecond=0)
    assert post("console_create", cookie, {**FORM, "layer_key": "page", "layer_share": "20"})["statusCode"] == 303
    assert act(cookie, "launch")["statusCode"] == 303
    body = page("console_edit_form", cookie)["body"]
    for frozen in ("starts_at", "layer_key", "layer_share", "holdout_layer"):
        assert re.search(rf'id="{frozen}"[^>]*readonly', body), frozen
    assert re.search(r'id="holdout"[^>]*disabled', body)
    for editable in ("ends_at", "automation_minimum_days"):
        assert not re.search(rf'id="{editable}"[^>]*readonly', body), editable
    assert not re.search(r'id="automation_ship"[^>]*disabled', body)

    ends = now + timedelta(days=20)
    form = {**FORM, "layer_key": "page", "layer_share": "20", "ends_at": local(ends), "automation_no_effect": "on"}
    saved = post("console_edit", cookie, form, "new-checkout")
    assert saved["statusCode"] == 303, saved["body"][:500]
    after = stored()
    assert after["ends_at"] == ends.isoformat().replace("+00:00", "Z") and after["automation"]["no_effect"]
    assert after["layer"] == {"key": "page", "share": 20}
    past = post("console_edit", cookie, {**form, "ends_at": local(now - timedelta(hours=1))}, "new-checkout")
    assert past["statusCode"] == 422 and "has passed" in past["body"]
    assert stored()["ends_at"] == after["ends_at"]
