"""The console's Download CSV in a real browser (issue 31): Chromium, driven by Playwright, against
a local stack over HTTP. The Results page's link saves the day's results as
`<key>-results-<date>.csv`: one row per metric and variant, the rows the API answers for that day
with `format=csv`, the counts those the users sent."""

import csv
import io
import urllib.request
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from abacus.results.csv_export import COLUMNS
from tests.e2e.conftest import ADMIN_KEY, invoke_nightly, sign_in_with_the_keyboard

KEY = "csv-download-checkout"
USERS = 20


def api_csv(stack_url: str, path: str) -> bytes:
    request = urllib.request.Request(f"{stack_url}{path}", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        return response.read()


def test_the_results_page_downloads_the_days_csv(client, stack_url, page):
    client.create_experiment(
        {
            "key": KEY,
            "name": "CSV download checkout",
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "purchase"},
            "secondary_metrics": [{"event": "add_to_cart"}],
        }
    )
    day = datetime.combine(datetime.now(UTC).date() - timedelta(days=1), time(0), tzinfo=UTC)
    client.launch(KEY, started_at=day)
    purchases = {"control": 0, "b": 0}
    for n in range(USERS):
        user = f"csv-user-{n}"
        variant = client.assign(user, [KEY], expose=False)[KEY]
        seen = (day + timedelta(hours=1, minutes=n)).isoformat()
        exposure = {"experiment": KEY, "variant": variant}
        events = [{"event": "$exposure", "distinct_id": user, "timestamp": seen, "properties": exposure}]
        if n % 3 == 0:
            events.append({"event": "purchase", "distinct_id": user, "timestamp": seen})
            purchases[variant] += 1
        client.send_events(events)
    invoke_nightly(stack_url, day + timedelta(days=1, hours=3), client, KEY)
    date = day.date().isoformat()

    sign_in_with_the_keyboard(page, stack_url)
    page.goto(f"{stack_url}/console/experiments/{KEY}")
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download CSV").click()
    download = downloading.value
    assert download.failure() is None
    assert download.suggested_filename == f"{KEY}-results-{date}.csv"
    saved = Path(download.path()).read_bytes()

    assert saved == api_csv(stack_url, f"/experiments/{KEY}/results?date={date}&format=csv")
    assert saved.decode("utf-8").split("\r\n")[0] == ",".join(COLUMNS)
    rows = list(csv.DictReader(io.StringIO(saved.decode("utf-8"), newline="")))
    assert len(rows) == 2 * 2  # two metrics of two variants
    primary = {row["variant"]: row for row in rows if row["metric_role"] == "primary"}
    assert {key: int(row["conversions"]) for key, row in primary.items()} == purchases
    assert sum(int(row["exposures"]) for row in primary.values()) == USERS
    assert {row["metric"] for row in rows} == {"purchase", "add_to_cart"}
    assert {row["date"] for row in rows} == {date}
