"""An experiment's alerts as sent, with their deliveries: the API's and the console's view."""

from typing import Any

from abacus.storage import alerts


def of_experiment(experiment_id: str) -> list[dict[str, Any]]:
    """Its alerts, oldest first, each with its documented fields and its deliveries (one Query each)."""
    found, deliveries = alerts.of_experiment(experiment_id)
    by_alert: dict[str, list[dict[str, Any]]] = {}
    for item in deliveries:
        by_alert.setdefault(item.alert, []).append(
            {
                "webhook": item.webhook_id,
                "url": item.url,
                "status": item.status,
                "attempts": int(item.attempts or 0),
                "last_status_code": int(item.last_status_code) if item.last_status_code is not None else None,
                "last_error": item.last_error,
                "last_attempt_at": item.last_attempt_at.isoformat() if item.last_attempt_at else None,
                "delivered_at": item.delivered_at.isoformat() if item.delivered_at else None,
            }
        )
    return [
        {
            **item.document,
            "published": item.published_at is not None,
            "deliveries": sorted(by_alert.get(item.part, []), key=lambda d: d["webhook"]),
        }
        for item in found
    ]
