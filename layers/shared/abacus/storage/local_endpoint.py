"""The local stack's DynamoDB is a moto server on loopback: it takes any credentials and keeps the
tables in LOCAL_REGION, so a command line pointed at it needs neither set."""

import ipaddress
from collections.abc import MutableMapping
from urllib.parse import urlsplit

LOCAL_REGION = "us-east-1"  # where the local stack (abacus_local) creates its tables
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, not an address
        return False


def fill_in(environment: MutableMapping[str, str]) -> None:
    """With DynamoDB's endpoint on loopback, the local stack's region and placeholder credentials
    where the environment sets none (a region or credentials it sets are kept)."""
    endpoint = environment.get("AWS_ENDPOINT_URL_DYNAMODB") or environment.get("AWS_ENDPOINT_URL")
    if not endpoint or not is_loopback(endpoint):
        return
    if not (environment.get("AWS_REGION") or environment.get("AWS_DEFAULT_REGION")):
        environment["AWS_REGION"] = LOCAL_REGION
    if not (environment.get("AWS_ACCESS_KEY_ID") or environment.get("AWS_PROFILE")):
        environment.update(LOCAL_CREDENTIALS)
