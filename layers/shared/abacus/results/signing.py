"""The keys that sign what the results function hands out: console sessions, their CSRF tokens and
report links.

A project's signing key is HMAC-SHA256, keyed by the stack's signing secret, of the hash of the
project's admin key. The secret lives in Secrets Manager (template.yaml's SigningSecret), never in
a table, so a read of the tables (a backup, an export, a read-only role, a bug in a public
function) is not enough to forge anything; the admin key's hash changes when the key is rotated,
so rotating it voids every session and link of its project. Rotating the secret voids every
project's.

The secret is read with one GetSecretValue and kept SECRET_MAX_AGE_SECONDS in each execution
environment. botocore's client reads it, not Powertools' parameters utility, which imports boto3 and
every provider it has (AppConfig, SSM, DynamoDB): about 50 ms of every cold console page (issue 33)."""

import hashlib
import hmac
from functools import cache
from typing import Any

import botocore.session
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from abacus.core.cache import TtlCache
from abacus.core.errors import StorageUnavailable
from abacus.core.settings import settings
from abacus.storage import credentials

logger = Logger()
# Five minutes: one GetSecretValue per environment that often (a few cents a month however busy),
# and a rotated secret is in use everywhere within five minutes. Sessions and links signed with
# the old one are refused by every environment that has read the new one.
SECRET_MAX_AGE_SECONDS = 300
_secret: TtlCache[str, str] = TtlCache(SECRET_MAX_AGE_SECONDS, max_entries=1)


@cache
def _client() -> Any:
    return botocore.session.get_session().create_client("secretsmanager", region_name=settings.region)


def forget_secret() -> None:
    """Reads the secret again at its next use, as SECRET_MAX_AGE_SECONDS passing does."""
    _secret.clear()


def derive(secret: str, admin_key_hash: str) -> bytes:
    """A project's signing key from the stack's secret and its admin key's stored hash."""
    return hmac.new(secret.encode(), f"abacus signing key\n{admin_key_hash}".encode(), hashlib.sha256).digest()


def mac(key: bytes, label: str, *fields: str | int) -> str:
    """The signature of `fields` for one use (`label`: a session, its CSRF token, a report link),
    so that no signature made for one use is valid for another."""
    message = "\n".join([label, *(str(field) for field in fields)])
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def project_key(project_id: str) -> bytes | None:
    """The project's signing key, or None when there is no such project (or it has no admin key)."""
    admin_key_hash = credentials.credential_hash(project_id, credentials.ADMIN)
    if admin_key_hash is None:
        return None
    return derive(stack_secret(), admin_key_hash)


def stack_secret() -> str:
    """The stack's signing secret (SIGNING_SECRET: its ARN, or its name), cached for
    SECRET_MAX_AGE_SECONDS. A failure to read it is a 503, as storage's are: send the request again."""
    try:
        return _secret.get(settings.signing_secret, _read_secret)
    except (BotoCoreError, ClientError) as error:
        logger.warning("the signing secret could not be read", extra={"error": str(error)})
        raise StorageUnavailable("the signing secret is unavailable right now: send the request again") from None


def _read_secret() -> str:
    answer = _client().get_secret_value(SecretId=settings.signing_secret)
    return str(answer["SecretString"])
