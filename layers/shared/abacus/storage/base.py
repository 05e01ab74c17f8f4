"""What every table model shares: the region, and retries with backoff (botocore's standard mode).

The endpoint is botocore's own: AWS_ENDPOINT_URL_DYNAMODB points it at the local stack's moto server.
"""

from abacus.settings import settings


class TableMeta:
    region = settings.region
    max_retry_attempts = 4
    connect_timeout_seconds = 5
    read_timeout_seconds = 10
