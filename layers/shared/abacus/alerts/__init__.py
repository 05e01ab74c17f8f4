"""Alerts: telling a team when its experiment reaches a decision, and acting on it when asked.

After every stored snapshot the nightly worker queues a follow-up (AlertsQueue); AutomationFunction
takes it (follow_up): it finds the snapshot's alerts (detect: only the design's own verdicts,
never a raw p-value), records each once per experiment, kind and decision (storage.alerts), runs
the experiment's opt-in automation (experiments.automation), puts each new alert on the stack's
EventBridge bus (bus) and queues one signed delivery per webhook that takes its kind (webhooks:
the project's webhooks; signing; destinations: https only, never a private address; delivery:
the POST itself, pinned to the checked address). A failed delivery comes back with backoff and is
dead-lettered after its last attempt. messages builds the one document an alert is everywhere:
EventBridge's detail, the webhook body (with a Slack-compatible `text`), the demo's printout.

May import: core, storage, experiments, nightly (its queue sender), results (the decision card).
"""
