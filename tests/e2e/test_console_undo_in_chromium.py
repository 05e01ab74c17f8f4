"""Issue 31's undoable mistakes in a real browser (Chromium, Playwright, a local stack over HTTP):
a draft deleted (confirmed first) frees its key; a running experiment duplicated into a new draft
from the button beside its actions; the Creation tab of a running experiment shows its
definition read-only but for what may change, and saves a new description; a draft archived."""

from playwright.sync_api import expect

from tests.e2e.conftest import sign_in_with_the_keyboard

SPEC = {
    "name": "Undo checkout",
    "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
    "primary_metric": {"event": "purchase"},
}


def test_a_draft_is_deleted_and_its_key_is_free_again(client, stack_url, page):
    client.create_experiment({"key": "undo-typo", **SPEC})
    sign_in_with_the_keyboard(page, stack_url)
    page.goto(f"{stack_url}/console/experiments/undo-typo")
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("alert")).to_contain_text("its key is free")
    page.get_by_role("button", name="Yes, delete").click()
    expect(page).to_have_url(f"{stack_url}/console")
    expect(page.get_by_role("row").filter(has_text="undo-typo")).to_have_count(0)
    assert client.request("GET", "/experiments/undo-typo", admin=True)[0] == 404
    assert client.create_experiment({"key": "undo-typo", **SPEC})["status"] == "draft"
    # A draft may be archived too.
    page.goto(f"{stack_url}/console/experiments/undo-typo")
    page.get_by_role("button", name="Archive").click()
    page.get_by_role("button", name="Yes, archive").click()
    expect(page.get_by_text("undo-typo · Archived")).to_be_visible()
    assert client.call("GET", "/experiments/undo-typo", admin=True)["status"] == "archived"


def test_a_running_experiment_is_duplicated_and_its_creation_tab_is_read_only(client, stack_url, page):
    client.create_experiment({"key": "undo-frozen", **SPEC})
    client.launch("undo-frozen")
    sign_in_with_the_keyboard(page, stack_url)
    page.goto(f"{stack_url}/console/experiments/undo-frozen")
    page.get_by_role("link", name="Creation").click()
    expect(page).to_have_url(f"{stack_url}/console/experiments/undo-frozen/edit")
    expect(page.locator("#frozen-note")).to_contain_text("the rest of the definition is read-only")
    expect(page.get_by_label("Variant 2 weight")).to_have_attribute("readonly", "")
    expect(page.get_by_label("Event")).to_have_attribute("readonly", "")
    page.get_by_label("Description (optional)").fill("Now with a clearer button")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(f"{stack_url}/console/experiments/undo-frozen")
    assert client.call("GET", "/experiments/undo-frozen", admin=True)["description"] == "Now with a clearer button"

    page.get_by_label("New key").fill("undo-frozen-v2")
    page.get_by_role("button", name="Duplicate as a new draft").click()
    expect(page).to_have_url(f"{stack_url}/console/experiments/undo-frozen-v2/edit")
    expect(page.get_by_role("heading", name="Edit draft undo-frozen-v2")).to_be_visible()
    weight = page.get_by_label("Variant 2 weight")
    expect(weight).to_have_value("50")
    weight.fill("70")
    page.get_by_label("Variant 1 weight").fill("30")
    page.get_by_role("button", name="Save draft").click()
    expect(page).to_have_url(f"{stack_url}/console/experiments/undo-frozen-v2")
    copy = client.call("GET", "/experiments/undo-frozen-v2", admin=True)
    assert copy["status"] == "draft" and [v["weight"] for v in copy["variants"]] == [30, 70]
