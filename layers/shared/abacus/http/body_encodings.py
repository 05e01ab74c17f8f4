"""The encodings request bodies arrive in, turned back into the JSON text the routes read.

PostHog's SDKs compress what they send, each its own way:
- `Content-Encoding: gzip` (posthog-python, posthog-node);
- gzip-js (posthog-js): a gzip body sent as `text/plain` *without* Content-Encoding, so that the
  browser sends it without a CORS preflight; recognised by gzip's magic bytes (the query's
  `compression=gzip-js`, when posthog-js adds it, says the same);
- base64 (posthog-js's beacons and its flags requests): a form body `data=<base64 of the JSON>`,
  with `compression=base64` in the query.
A gzip body may not inflate past the size limit (a compression bomb).
"""

import base64
import binascii
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from abacus.core.errors import BadRequest, TooLarge

GZIP_MAGIC = b"\x1f\x8b"
GZIP_NAMES = ("gzip", "gzip-js")


def plain_json_event(event: Mapping[str, Any], max_bytes: int) -> Mapping[str, Any]:
    """The event with its body as plain JSON text (the same event when it already is). Raises
    BadRequest (field `body`) for a body its encoding cannot read, TooLarge for a bomb."""
    body = event.get("body") or ""
    if not body:
        return event
    headers = event.get("headers") or {}
    compression = ((event.get("queryStringParameters") or {}).get("compression") or "").lower()
    raw = _raw_bytes(event)
    if headers.get("content-encoding", "").lower() == "gzip" or compression in GZIP_NAMES or raw[:2] == GZIP_MAGIC:
        text = _gunzipped(raw, max_bytes)
    elif compression == "base64":
        text = _base64_form(raw)
    else:
        return event  # JSON already, or a body the routes answer as unreadable
    plain_headers = {k: v for k, v in headers.items() if k != "content-encoding"}
    return {**event, "body": text, "isBase64Encoded": False, "headers": plain_headers}


def _raw_bytes(event: Mapping[str, Any]) -> bytes:
    body: str = event["body"]
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except binascii.Error:
            raise BadRequest("body: marked base64 but not base64", field="body") from None
    # A text body holding binary (as a front end might pass it) is one byte per character.
    return body.encode("latin-1") if body[:2] == GZIP_MAGIC.decode("latin-1") else body.encode()


def _gunzipped(raw: bytes, max_bytes: int) -> str:
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        data = inflater.decompress(raw, max_bytes + 1)
    except zlib.error:
        raise BadRequest("body: not valid gzip", field="body") from None
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise TooLarge(f"body: larger than {max_bytes // 1_000_000} MB once decompressed", field="body")
    if not inflater.eof:
        raise BadRequest("body: not valid gzip (truncated)", field="body")
    return _utf8(data)


def _base64_form(raw: bytes) -> str:
    """posthog-js's `data=<base64>` form body (compression=base64)."""
    fields = parse_qs(raw.decode("latin-1"), keep_blank_values=True)
    if len(fields.get("data", ())) != 1:
        raise BadRequest("body: compression=base64 expects a form body data=<base64 of the JSON>", field="body")
    try:
        decoded = base64.b64decode(fields["data"][0], validate=True)
    except binascii.Error:
        raise BadRequest("body: the form's data is not base64", field="body") from None
    return _utf8(decoded)


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body: not UTF-8 once decoded", field="body") from None
