"""The console shows the mistakes that would otherwise go unseen (issue 31), in a real browser
(Chromium, driven by Playwright, against a local stack over HTTP): the Creation form's Event field
suggests the event names the project received; the Implementation page's live check says that
the metric's event (a typo) has not arrived since the launch, naming the names that did, and
shows the exposure events refused, by reason, with the unknown experiment keys they named.
Screenshots go to .abacus/console/ (not committed)."""

from playwright.sync_api import expect

from tests.e2e.conftest import shot, sign_in_with_the_keyboard

KEY = "mistakes-checkout"


def test_the_form_suggests_received_names_and_the_live_check_shows_the_mistakes(client, stack_url, page):
    client.create_experiment(
        {
            "key": KEY,
            "name": "Checkout with a typo",
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "purchse"},
        }
    )
    client.launch(KEY)
    sent = client.send_events(
        [
            {"event": "purchase", "distinct_id": "mistake-user-1"},
            {"event": "Purchase", "distinct_id": "mistake-user-2"},
            {
                "event": "$feature_flag_called",
                "distinct_id": "mistake-user-3",
                "properties": {"$feature_flag": KEY, "$feature_flag_response": "B"},
            },
            {
                "event": "$exposure",
                "distinct_id": "mistake-user-4",
                "properties": {"experiment": "mistakes-chekout", "variant": "b"},
            },
        ]
    )
    assert sent["refused_exposure_reasons"] == {"unknown_experiment": 1, "unknown_variant": 1}, sent

    sign_in_with_the_keyboard(page, stack_url)
    page.goto(f"{stack_url}/console/new")
    event_field = page.get_by_label("Event", exact=True)
    expect(event_field).to_have_attribute("list", "received-events")
    suggested = page.locator("#received-events option").evaluate_all("(options) => options.map((o) => o.value)")
    assert {"purchase", "Purchase", "$exposure", "$feature_flag_called"} <= set(suggested), suggested
    expect(page.locator("#received-events-hint")).to_contain_text("purchase")
    event_field.fill("purch")  # the browser offers the names from the datalist as you type
    shot(page, "creation-suggests-received-events")

    page.goto(f"{stack_url}/console/experiments/{KEY}/implementation")
    live = page.locator("#live")
    warning = live.locator('[data-warning="primary_metric.event"]')
    expect(warning).to_contain_text("no `purchse` event received since the launch")
    expect(warning).to_contain_text("received: `purchase`, `Purchase`")
    expect(live.locator('[data-refused="unknown_variant"]')).to_contain_text("1 named a variant this experiment")
    expect(live.locator("#live-unknown-experiments")).to_contain_text("named no experiment of it")
    expect(live.locator('[data-unknown-key="mistakes-chekout"]')).to_contain_text("close to this experiment's key")
    shot(page, "live-check-mistakes")

    # Once the app sends the right name, the warning goes at the next refresh (every 5 seconds).
    client.send_events([{"event": "purchse", "distinct_id": "mistake-user-1"}])
    expect(live.locator("[data-warning]")).to_have_count(0, timeout=15_000)
