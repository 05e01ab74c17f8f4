"""Creating the tables exactly as template.yaml declares them (locally on moto, or under mock_aws)."""

from abacus_local.template import Template

# The table properties that CreateTable takes as they are written in the template.
_CREATE_TABLE_PROPERTIES = (
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "ProvisionedThroughput",
    "StreamSpecification",
)


def create_tables(template: Template, client) -> list[str]:
    """Creates every AWS::DynamoDB::Table of the template with `client` (a boto3 DynamoDB client);
    the table's name is its TableName or, as deployed names are generated, its logical id."""
    created = []
    for logical_id, resource in template.tables().items():
        props = resource["Properties"]
        name = props.get("TableName", logical_id)
        request = {key: props[key] for key in _CREATE_TABLE_PROPERTIES if key in props}
        client.create_table(TableName=name, **request)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        if props.get("PointInTimeRecoverySpecification"):
            client.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification=props["PointInTimeRecoverySpecification"]
            )
        created.append(name)
    return created
