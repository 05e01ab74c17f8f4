"""Issue 32's form fields in a real browser (Chromium, Playwright, a local stack over HTTP): a
draft's scheduled launch and stop typed in datetime-local inputs (UTC), its automation ticked,
its layer given, saved, and read back by the API and the form."""

from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from tests.e2e.conftest import shot, sign_in_with_the_keyboard

SPEC = {
    "name": "Scheduled checkout",
    "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
    "primary_metric": {"event": "purchase"},
}


def test_the_schedule_automation_and_layer_are_set_in_the_form(client, stack_url, page):
    client.create_experiment({"key": "form-schedule", **SPEC})
    starts = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    ends = starts + timedelta(days=14, seconds=30)
    sign_in_with_the_keyboard(page, stack_url)
    page.goto(f"{stack_url}/console/experiments/form-schedule/edit")
    page.get_by_label("Launch at (UTC").fill(starts.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_label("Stop at (UTC").fill(ends.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_label("Ship the winner when the verdict is ship").check()
    page.get_by_label("Stop at once when the split is broken").check()
    page.get_by_label("but only after this many days").fill("10")
    page.get_by_label("Layer key").fill("checkout-page")
    page.get_by_label("Share of the layer's users").fill("30")
    shot(page, "creation-schedule")
    page.get_by_role("button", name="Save draft").click()
    expect(page).to_have_url(f"{stack_url}/console/experiments/form-schedule")

    saved = client.call("GET", "/experiments/form-schedule", admin=True)
    assert saved["starts_at"] == starts.isoformat().replace("+00:00", "Z")
    assert saved["ends_at"] == ends.isoformat().replace("+00:00", "Z")
    assert saved["automation"] == {"ship": True, "no_effect": False, "srm": True, "minimum_days": 10}
    assert saved["layer"] == {"key": "checkout-page", "share": 30}

    page.goto(f"{stack_url}/console/experiments/form-schedule/edit")
    expect(page.get_by_label("Launch at (UTC")).to_have_value(starts.strftime("%Y-%m-%dT%H:%M:%S"))
    expect(page.get_by_label("Ship the winner when the verdict is ship")).to_be_checked()
    expect(page.get_by_label("Stop when the verdict is no effect")).not_to_be_checked()
    # A time already past is put on its field as you type, in the API's words.
    page.get_by_label("Launch at (UTC").fill((datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    expect(page.locator('[data-error-for="starts_at"]')).to_contain_text("has passed")
