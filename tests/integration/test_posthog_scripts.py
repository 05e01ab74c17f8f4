"""GET /static/array.js and its variants through AssignFunction's handler: posthog-js's own
bundles, gzip-compressed as browsers take them, cached a day with an ETag (304 once the browser
has it), whatever query a page adds; hostile headers get the bundle, or 304, never a 5xx."""

import base64
import gzip

import pytest

from abacus.posthog import scripts
from abacus_local.template import ROOT
from tests.conftest import invoke, sample_event

DIST = ROOT / "layers" / "posthog-js" / "node_modules" / "posthog-js" / "dist"
SAMPLES = {name: "posthog_" + name.replace(".", "_").replace("-", "_") for name in scripts.BUNDLES}


@pytest.mark.parametrize("name", scripts.BUNDLES)
def test_each_bundle_is_served_compressed_and_cached_a_day(project, name):
    served = invoke("AssignFunction", sample_event(SAMPLES[name]))
    assert served["statusCode"] == 200 and served["isBase64Encoded"]
    assert gzip.decompress(base64.b64decode(served["body"])) == (DIST / name).read_bytes()
    headers = {key.lower(): value for key, value in served["headers"].items()}
    assert headers["content-type"] == "text/javascript; charset=utf-8" and headers["content-encoding"] == "gzip"
    assert headers["cache-control"] == "public, max-age=86400" and headers["x-content-type-options"] == "nosniff"
    again = sample_event(SAMPLES[name])
    again["headers"]["if-none-match"] = headers["etag"]
    unchanged = invoke("AssignFunction", again)
    assert unchanged["statusCode"] == 304 and not unchanged.get("body")


def test_any_query_a_page_adds_is_taken(project):
    event = sample_event("posthog_array_js")
    event["rawQueryString"], event["queryStringParameters"] = "v=1.449.2&_=1", {"v": "1.449.2", "_": "1"}
    assert invoke("AssignFunction", event)["statusCode"] == 200


def test_no_other_file_is_reachable(template):
    """The routes are the five bundles' exact paths: API Gateway answers anything else under
    /static/ (another dist file, a traversal) with its own 404, no function invoked."""
    paths = {route.path for route in template.routes() if route.path.startswith("/static/")}
    assert paths == {f"/static/{name}" for name in scripts.BUNDLES}
    for path in ("/static/recorder.js", "/static/../../etc/passwd", "/static/array.js.gz", "/static/x/array.js"):
        assert not any(route.pattern.match(path) for route in template.routes()), path
