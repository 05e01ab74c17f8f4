"""The template's Secrets Manager secrets, created on moto (the local stack's, or moto's in-process
mock in the tests) as CloudFormation creates them: named by logical id, as the tables and queues
are, each with a random value made to its GenerateSecretString (by Secrets Manager's own
GetRandomPassword)."""

from typing import Any

from abacus_local import iam
from abacus_local.template import Template

# GenerateSecretString's properties that GetRandomPassword takes under the same names.
_PASSWORD_PROPERTIES = (
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "ExcludeLowercase",
    "IncludeSpace",
    "RequireEachIncludedType",
)


def create_secrets(template: Template, client: Any) -> dict[str, str]:
    """Creates every AWS::SecretsManager::Secret of the template with `client` (a boto3 Secrets
    Manager client); {logical id: ARN}, the value a `!Ref` to the secret has once deployed."""
    arns: dict[str, str] = {}
    for logical_id, resource in template.of_type("AWS::SecretsManager::Secret").items():
        properties = resource.get("Properties", {})
        generate = properties.get("GenerateSecretString")
        if generate is None:
            raise ValueError(f"{logical_id}: only secrets with a GenerateSecretString are created locally")
        if "SecretStringTemplate" in generate:
            raise ValueError(f"{logical_id}: a SecretStringTemplate is not created locally")
        options = {name: generate[name] for name in _PASSWORD_PROPERTIES if name in generate}
        value = client.get_random_password(**options)["RandomPassword"]
        created = client.create_secret(
            Name=iam.secret_name(template, logical_id),
            Description=properties.get("Description", ""),
            SecretString=value,
        )
        arns[logical_id] = created["ARN"]
        iam.register_secret(created["ARN"])  # a call naming it by name is checked by its ARN, as IAM does
    return arns
