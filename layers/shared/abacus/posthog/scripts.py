"""posthog-js's browser bundles, served at `/static/<name>` so that PostHog's HTML snippet, which
loads `<api_host>/static/array.js`, installs the SDK from Abacus as it does from PostHog.

The bundles are posthog-js's own `dist/array*.js`, fetched from npm at build time as
layers/posthog-js/package-lock.json pins them (version and integrity hash) and gzip-compressed
there, into PostHogJsLayer (AssignFunction's alone), as `abacus/posthog_js/<name>.gz`. Never
committed: `make posthog-js` puts them beside the layer's Makefile for the local stack and tests.
"""

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from abacus.core.errors import NotFound

# What posthog-js publishes in its dist/ for a page's <script>: the snippet's array.js, the one with
# every extension bundled (array.full.js), its ES5 build for old browsers, and both without the
# scripts it would load from elsewhere (no-external).
BUNDLES = ("array.js", "array.full.js", "array.full.es5.js", "array.no-external.js", "array.full.no-external.js")
CONTENT_TYPE = "text/javascript; charset=utf-8"
# The URL carries no version, so not `immutable`: a browser keeps a bundle a day, then asks again
# with its ETag and is answered 304 until Abacus ships another posthog-js.
CACHE_CONTROL = "public, max-age=86400"


@dataclass(frozen=True)
class Bundle:
    gzipped: bytes
    # Weak: the same bundle is served gzip-compressed or not, two equivalent representations.
    etag: str


@cache
def bundle(name: str) -> Bundle:
    """A bundle of BUNDLES, read once per execution environment."""
    stored = resources.files("abacus").joinpath("posthog_js", f"{name}.gz")
    try:
        gzipped = stored.read_bytes()
    except FileNotFoundError:  # layers/posthog-js not built: a local checkout without `make posthog-js`
        raise NotFound(f"posthog-js's {name} is not in this build: run `make posthog-js`") from None
    digest = hashlib.sha256(gzip.decompress(gzipped)).hexdigest()
    return Bundle(gzipped, f'W/"{digest[:32]}"')


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def answer(name: str, accept_encoding: str, if_none_match: str) -> Answer:
    """The answer to GET /static/<name>: 304 when `if_none_match` names the bundle's ETag, else
    the bundle, gzip-compressed when the client accepts gzip (every browser does)."""
    served = bundle(name)
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": served.etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if _matches(served.etag, if_none_match):
        return Answer(304, headers, b"")
    headers["Content-Type"] = CONTENT_TYPE
    if _accepts_gzip(accept_encoding):
        return Answer(200, {**headers, "Content-Encoding": "gzip"}, served.gzipped)
    return Answer(200, headers, gzip.decompress(served.gzipped))


def _matches(etag: str, if_none_match: str) -> bool:
    """If-None-Match's weak comparison (RFC 9110, 13.1.2): `*`, or one of its tags, W/ or not."""
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether Accept-Encoding takes gzip (`gzip`, `gzip;q=0.5`, `*`; not `gzip;q=0`)."""
    for coding in accept_encoding.lower().split(","):
        name, _, parameters = coding.partition(";")
        if name.strip() in ("gzip", "x-gzip", "*"):
            return _quality(parameters) > 0
    return False


def _quality(parameters: str) -> float:
    """A coding's q (1 when it has none, or one that is not a number)."""
    for parameter in parameters.split(";"):
        key, _, value = parameter.strip().partition("=")
        if key == "q":
            try:
                return float(value)
            except ValueError:
                return 1.0
    return 1.0
