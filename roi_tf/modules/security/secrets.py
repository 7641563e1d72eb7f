"""Secrets Manager secrets whose values come from sensitive Terraform variables, never from files."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from cdktf_cdktf_provider_aws.secretsmanager_secret_version import SecretsmanagerSecretVersion
from constructs import Construct

from roi_tf.modules.security.iam import grant
from roi_tf.modules.security.kms import KmsKey
from roi_tf.modules.security.policy import Statement


@dataclass(frozen=True, kw_only=True)
class SecretProps:
    """Inputs of one secret."""

    name: str  # "roi-systems/<env>/<component>/<purpose>"
    description: str
    # The value: a reference to a sensitive variable (or an expression over one), never a literal.
    value: str
    region: str
    recovery_window_days: int = 30  # default: the longest window in which a deleted secret can be restored


class Secret(Construct):
    """A KMS-encrypted secret and its current value; ``grant_read`` gives a role exactly this secret."""

    def __init__(self, scope: Construct, id: str, *, props: SecretProps, key: KmsKey) -> None:
        super().__init__(scope, id)
        if "${" not in props.value:
            raise ValueError(f"secret {props.name}: the value must come from a sensitive variable, not a literal")
        self._props = props
        self._key = key
        self.secret = SecretsmanagerSecret(
            self,
            "secret",
            name=props.name,
            description=props.description,
            kms_key_id=key.arn,
            recovery_window_in_days=props.recovery_window_days,
        )
        # The value reaches Terraform only as TF_VAR_*; it lives in the (KMS-encrypted) state, not in git.
        SecretsmanagerSecretVersion(self, "value", secret_id=self.secret.id, secret_string=props.value)
        self.arn = self.secret.arn
        self.name = props.name

    def read_statements(self) -> list[Statement]:
        """Statements that let a principal read this secret (and decrypt it, through Secrets Manager only)."""
        return [
            Statement(
                sid="ReadSecret",
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[self.arn],
            ),
            Statement(
                sid="DecryptSecretThroughSecretsManager",
                actions=["kms:Decrypt"],
                resources=[self._key.arn],
                conditions={("StringEquals", "kms:ViaService"): [f"secretsmanager.{self._props.region}.amazonaws.com"]},
            ),
        ]

    def grant_read(self, role: IamRole) -> IamRolePolicy:
        """Attach an inline policy to ``role`` allowing it to read this secret, and nothing else."""
        return grant(
            self,
            role,
            verb="read",
            policy_name=f"read-{self.name.replace('/', '-')}",
            statements=self.read_statements(),
        )
