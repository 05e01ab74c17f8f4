"""Webhook signatures: `X-Abacus-Signature: sha256=<hex HMAC-SHA256 of the raw body>` with the
webhook's secret. The body carries `timestamp` (Unix seconds, also sent as `X-Abacus-Timestamp`),
so the signature covers it: a receiver that refuses a body older than a few minutes cannot be
replayed an old delivery. Each attempt is signed anew, with its own timestamp."""

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Abacus-Signature"
TIMESTAMP_HEADER = "X-Abacus-Timestamp"
DELIVERY_HEADER = "X-Abacus-Delivery"  # the same on every attempt of one delivery: a receiver's dedupe key
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(
    secret: str, body: bytes, header: str, timestamp: int, now: float, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """What a receiver checks: the signature matches the raw body, and the body's timestamp is recent."""
    return hmac.compare_digest(signature(secret, body), header) and abs(now - timestamp) <= tolerance
