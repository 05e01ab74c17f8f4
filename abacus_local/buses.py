"""The template's EventBridge buses (AWS::Events::EventBus), created on moto (the local stack's, or
moto's in-process mock in the tests), named by logical id as the tables and queues are (a `!Ref`
to one is its name, abacus_local.iam). Nothing listens unless a rule is added: as deployed,
routing an alert is the user's rule (docs/alerts.md); the tests add one with an SQS target."""

from typing import Any

from abacus_local.template import Template


def create_buses(template: Template, client: Any) -> list[str]:
    """Creates every bus of the template with `client` (a boto3 EventBridge client); their names."""
    names = sorted(template.of_type("AWS::Events::EventBus"))
    for name in names:
        client.create_event_bus(Name=name)
    return names
