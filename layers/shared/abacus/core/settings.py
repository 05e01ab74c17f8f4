"""Configuration read once from the environment (set by template.yaml, or by the local stack)."""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    projects_table: str
    credentials_table: str  # every project's keys, as hashes: the functions may only read it
    experiments_table: str
    assignments_table: str
    events_table: str
    results_table: str
    runs_table: str
    persons_table: str  # which person each distinct id belongs to, and persons' properties
    nightly_queue_url: str  # where the nightly job's units of work are sent (SQS)
    alerts_table: str  # alerts sent (each once) and their webhook deliveries
    alerts_queue_url: str  # follow-ups of stored snapshots and webhook deliveries (SQS)
    alerts_bus_name: str  # the EventBridge bus every alert is put on
    api_url: str  # the API's public base URL, for the links alerts carry ("" where unknown)
    webhook_retry_seconds: int  # a failed delivery's first backoff, doubled each attempt
    allow_local_webhooks: bool  # the local stack only: http://127.0.0.1 webhooks, for development
    signing_secret: str  # the Secrets Manager secret that keys sessions and report links (ARN or name)
    region: str | None
    event_retention_days: int
    receipt_shards: int  # the by-receipt index's keys a project's day is spread over
    assignment_shards: int  # the assignments table's keys a new experiment's users are spread over


def load_settings() -> Settings:
    env = os.environ
    return Settings(
        projects_table=env.get("PROJECTS_TABLE", "ProjectsTable"),
        credentials_table=env.get("CREDENTIALS_TABLE", "CredentialsTable"),
        experiments_table=env.get("EXPERIMENTS_TABLE", "ExperimentsTable"),
        assignments_table=env.get("ASSIGNMENTS_TABLE", "AssignmentsTable"),
        events_table=env.get("EVENTS_TABLE", "EventsTable"),
        results_table=env.get("RESULTS_TABLE", "ResultsTable"),
        runs_table=env.get("RUNS_TABLE", "NightlyRunsTable"),
        persons_table=env.get("PERSONS_TABLE", "PersonsTable"),
        nightly_queue_url=env.get("NIGHTLY_QUEUE_URL", ""),
        alerts_table=env.get("ALERTS_TABLE", "AlertsTable"),
        alerts_queue_url=env.get("ALERTS_QUEUE_URL", ""),
        alerts_bus_name=env.get("ALERTS_BUS_NAME", "default"),
        api_url=env.get("ABACUS_API_URL", "").rstrip("/"),
        webhook_retry_seconds=int(env.get("ABACUS_WEBHOOK_RETRY_SECONDS", "60")),
        allow_local_webhooks=env.get("ABACUS_ALLOW_LOCAL_WEBHOOKS", "") == "true",
        signing_secret=env.get("SIGNING_SECRET", "SigningSecret"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
        event_retention_days=int(env.get("EVENT_RETENTION_DAYS", "90")),
        receipt_shards=int(env.get("EVENT_RECEIPT_SHARDS", "32")),
        assignment_shards=int(env.get("ASSIGNMENT_SHARDS", "16")),
    )


settings = load_settings()
