"""Several simulated days over HTTP, the nightly job run after each as EventBridge would: a true
effect is found, an A/A test finds no winner, a broken split is invalid; the report page renders
its charts in headless Chromium."""

import json
import random
import shutil
import subprocess
import tempfile
import urllib.request
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from PIL import Image

from abacus.core import hashing
from abacus_local.client import REQUEST_TIMEOUT_S
from tests.e2e.conftest import invoke_nightly

DAYS, USERS_PER_DAY = 6, 160


def simulate(client, url: str, key: str, rates: dict[str, float], lost_exposures: float = 0.0, seed: int = 1) -> dict:
    """Users arrive each day of the past DAYS days; each is exposed (a `$exposure` event, as an SDK
    that evaluates flags locally reports it) and converts at its variant's true rate; a share of
    the treatment's exposures can be lost, as a broken integration loses them."""
    client.create_experiment(
        {
            "key": key,
            "name": key,
            "variants": [{"key": "control", "weight": 50}, {"key": "treatment", "weight": 50}],
            "primary_metric": {"event": "order", "window_days": 7},
            "minimum_detectable_effect": 0.5,
        }
    )
    first_day = datetime.combine(datetime.now(UTC).date() - timedelta(days=DAYS), time(0), tzinfo=UTC)
    client.launch(key, started_at=first_day)  # exposures before a launch do not count
    rng = random.Random(seed)
    split = [("control", 50), ("treatment", 50)]
    for day in range(DAYS):
        events = []
        for n in range(USERS_PER_DAY):
            distinct_id = f"{key}-d{day}-u{n}"
            variant = hashing.pick_variant(key, distinct_id, split)
            if variant == "treatment" and rng.random() < lost_exposures:
                continue
            seen = first_day + timedelta(days=day, hours=rng.uniform(0, 20))
            events.append(
                {
                    "event": "$exposure",
                    "distinct_id": distinct_id,
                    "uuid": f"x-{distinct_id}",
                    "timestamp": seen.isoformat(),
                    "properties": {"experiment": key, "variant": variant},
                }
            )
            if rng.random() < rates[variant]:
                bought = seen + timedelta(hours=rng.uniform(0, 3))
                events.append(
                    {
                        "event": "order",
                        "distinct_id": distinct_id,
                        "uuid": f"o-{distinct_id}",
                        "timestamp": bought.isoformat(),
                    }
                )
        for start in range(0, len(events), 500):
            assert client.send_events(events[start : start + 500])["rejected"] == []
        invoke_nightly(url, first_day + timedelta(days=day + 1, hours=3), client, key)
    client.stop(key)  # the next simulations' nightly runs skip it
    return client.results(key)


def test_true_effect_is_found_and_the_history_accumulates(client, stack_url):
    final = simulate(client, stack_url, "days-effect", {"control": 0.2, "treatment": 0.4})
    assert final["verdict"]["decision"] == "ship" and final["verdict"]["variant"] == "treatment"
    history = client.call("GET", "/experiments/days-effect/results/history", admin=True)["days"]
    assert len(history) == DAYS
    exposures = [day["exposures"] for day in history]
    assert (
        exposures == sorted(exposures)
        and exposures[-1] == final["variants"][0]["exposures"] + final["variants"][1]["exposures"]
    )
    past = client.call("GET", f"/experiments/days-effect/results?date={history[0]['date']}", admin=True)
    assert past["date"] == history[0]["date"] and past["variants"][0]["exposures"] < final["variants"][0]["exposures"]


def test_aa_experiment_has_no_winner(client, stack_url):
    final = simulate(client, stack_url, "days-aa", {"control": 0.2, "treatment": 0.2}, seed=2)
    assert final["verdict"]["decision"] in ("keep_running", "no_effect")
    assert final["srm"]["mismatch"] is False


def test_broken_split_is_invalid(client, stack_url):
    final = simulate(client, stack_url, "days-srm", {"control": 0.2, "treatment": 0.4}, lost_exposures=0.3, seed=3)
    assert final["srm"]["mismatch"] is True and final["verdict"]["decision"] == "invalid"


def test_report_opens_from_a_signed_link_and_shows_its_charts(client, stack_url):
    status, _ = client.request("GET", "/experiments/days-effect/results", admin=True)
    if status != 200:  # another worker ran the simulation against its own stack
        simulate(client, stack_url, "days-effect", {"control": 0.2, "treatment": 0.4})
    link = client.call("POST", "/experiments/days-effect/report/link", admin=True)["url"]
    assert client.admin_key not in link
    with urllib.request.urlopen(link, timeout=REQUEST_TIMEOUT_S) as response:  # no Authorization header: the link alone
        page = response.read().decode()
    assert "<svg" in page and "Ship" in page and "polyline" in page
    # The test that ran, in a sentence.
    assert 'class="explanation"' in page and ("group-sequential test" in page or "always-valid test" in page)
    tampered = link.replace("signature=", "signature=0")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered, timeout=REQUEST_TIMEOUT_S)
    assert refused.value.code == 401

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "make test installs Debian's chromium; run it so"
    with tempfile.TemporaryDirectory() as profile:
        shot = Path(profile) / "report.png"
        subprocess.run(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}/data", "--window-size=800,1400", f"--screenshot={shot}", link,
            ],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        image = Image.open(shot).convert("RGB")
        rgb = image.tobytes()
        pixels = zip(rgb[0::3], rgb[1::3], rgb[2::3], strict=True)
        # The lift chart draws the treatment's line in #4c78a8 and its interval as a tinted band.
        line = sum(1 for r, g, b in pixels if abs(r - 0x4C) < 12 and abs(g - 0x78) < 12 and abs(b - 0xA8) < 12)
        assert line > 300, f"no chart line in the screenshot ({line} pixels)"
        shutil.copy(shot, Path(tempfile.gettempdir()) / "abacus-report-screenshot.png")
        assert json.dumps(image.size) == "[800, 1400]"
