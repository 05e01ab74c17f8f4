"""posthog-js's bundles as Abacus serves them (abacus.posthog.scripts): the files npm gave for the
pinned version, byte for byte, gzip-compressed for a client that takes gzip, with an ETag that
answers 304 and a day's caching; the pin itself, with its integrity hashes."""

import gzip
import json

import pytest

from abacus.posthog import scripts
from abacus_local.template import ROOT

LAYER = ROOT / "layers" / "posthog-js"
FETCHED = LAYER / "node_modules" / "posthog-js"


@pytest.fixture(scope="module", autouse=True)
def built():
    assert (LAYER / "abacus" / "posthog_js" / ".fetched").exists(), "make venv runs make posthog-js; run it so"


@pytest.mark.parametrize("name", scripts.BUNDLES)
def test_each_bundle_is_posthog_js_own_file_gzip_compressed_or_not(name):
    original = (FETCHED / "dist" / name).read_bytes()
    gzipped = scripts.answer(name, "gzip, deflate, br", "")
    assert gzipped.status == 200 and gzip.decompress(gzipped.body) == original
    assert gzipped.headers["Content-Encoding"] == "gzip" and gzipped.headers["Vary"] == "Accept-Encoding"
    assert gzipped.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert gzipped.headers["Cache-Control"] == "public, max-age=86400"
    plain = scripts.answer(name, "identity", "")
    assert plain.body == original and "Content-Encoding" not in plain.headers
    assert plain.headers["ETag"] == gzipped.headers["ETag"]  # one weak tag for both representations


def test_the_etag_answers_304_with_no_body_and_changes_with_the_file():
    etag = scripts.answer("array.js", "gzip", "").headers["ETag"]
    assert etag.startswith('W/"') and etag != scripts.answer("array.full.js", "gzip", "").headers["ETag"]
    for sent in (etag, etag.removeprefix("W/"), f'"other", {etag}', "*"):
        again = scripts.answer("array.js", "gzip", sent)
        assert (again.status, again.body) == (304, b""), sent
        assert again.headers["ETag"] == etag and "Content-Type" not in again.headers
    assert scripts.answer("array.js", "gzip", '"other"').status == 200


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [("", False), ("identity", False), ("br", False), ("gzip;q=0", False), ("gzip;q=0.000", False),
     ("GZIP", True), ("deflate, gzip;q=0.5", True), ("*", True), ("x-gzip", True), ("gzip;q=junk", True)],
)  # fmt: skip
def test_gzip_only_for_a_client_that_takes_it(accept_encoding, gzipped):
    served = scripts.answer("array.js", accept_encoding, "")
    assert ("Content-Encoding" in served.headers) is gzipped


def test_the_layer_pins_the_posthog_js_the_tests_run_with_integrity_hashes():
    pinned = json.loads((LAYER / "package.json").read_text())["dependencies"]["posthog-js"]
    tested = json.loads((ROOT / "tests" / "sdk-js" / "package.json").read_text())["dependencies"]["posthog-js"]
    assert pinned == tested and pinned[0].isdigit()  # an exact version, not a range
    lock = json.loads((LAYER / "package-lock.json").read_text())
    packages = {path: spec for path, spec in lock["packages"].items() if path}
    assert packages["node_modules/posthog-js"]["version"] == pinned
    assert all(spec["integrity"].startswith("sha512-") for spec in packages.values())
    assert json.loads((FETCHED / "package.json").read_text())["version"] == pinned
