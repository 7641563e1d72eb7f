"""Secrets Manager secrets whose values come from ephemeral Terraform variables, through write-only arguments."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import Fn, TerraformResource
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret, SecretsmanagerSecretReplica
from cdktf_cdktf_provider_aws.secretsmanager_secret_version import SecretsmanagerSecretVersion
from constructs import Construct

from roi_tf.modules.security.iam import grant
from roi_tf.modules.security.kms import KmsKey
from roi_tf.modules.security.policy import Statement


@dataclass(frozen=True)
class WriteOnly:
    """A secret for a write-only argument: Terraform sends it to AWS and keeps it out of the plan and the state.

    ``value`` references an ephemeral variable (or an expression over one); Terraform rewrites it only when
    ``version`` changes, so rotating is "new TF_VAR_* value + bump the version in config".
    """

    value: str
    version: int

    def __post_init__(self) -> None:
        if "${" not in self.value:
            raise ValueError("a write-only value must come from an ephemeral variable, never a literal")
        if self.version < 1:
            raise ValueError(f"write-only versions start at 1, not {self.version}")


@dataclass(frozen=True, kw_only=True)
class SecretProps:
    """Inputs of one secret."""

    name: str  # "roi-systems/<env>/<component>/<purpose>"
    description: str
    value: WriteOnly
    region: str
    # Days a deleted secret stays restorable; 0 deletes it at once (so a disposable environment can be re-created).
    recovery_window_days: int = 30
    # A replica in this region (the DR region's pilot light), Secrets Manager keeping it in sync; default: none.
    replica_region: str | None = None


class Secret(Construct):
    """A KMS-encrypted secret whose value never enters the state; ``grant_read`` gives a role exactly this secret."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        props: SecretProps,
        key: KmsKey,
        replica_key: KmsKey | None = None,  # encrypts the replica, in props.replica_region
    ) -> None:
        super().__init__(scope, id)
        self._props = props
        self._key = key
        self._replica_key = replica_key
        if (props.replica_region is None) != (replica_key is None):
            raise ValueError(f"secret {props.name}: a replica region needs a key in that region, and only then")
        self.secret = SecretsmanagerSecret(
            self,
            "secret",
            name=props.name,
            description=props.description,
            kms_key_id=key.arn,
            recovery_window_in_days=props.recovery_window_days,
            # The value (written once, write-only) is copied by Secrets Manager, re-encrypted with the replica's key.
            replica=[SecretsmanagerSecretReplica(region=props.replica_region, kms_key_id=replica_key.arn)]
            if props.replica_region is not None and replica_key is not None
            else None,
        )
        self.version = SecretsmanagerSecretVersion(
            self,
            "value",
            secret_id=self.secret.id,
            secret_string_wo=props.value.value,
            secret_string_wo_version=props.value.version,
        )
        self.arn = self.secret.arn
        self.name = props.name

    def written_after(self, resource: TerraformResource) -> None:
        """Write a new value only once ``resource`` has taken it (so the database accepts a new password before the
        secret RDS Proxy signs in with changes)."""
        # depends_on needs a static address: the resource's fqn token would render as an interpolation.
        address = f"{resource.terraform_resource_type}.{resource.friendly_unique_id}"
        self.version.depends_on = [*(self.version.depends_on or []), address]

    @property
    def replica_arn(self) -> str:
        """The replica's ARN: the secret's own, in the replica's region (Secrets Manager keeps name and suffix)."""
        region = self._props.replica_region
        if region is None:
            raise ValueError(f"secret {self.name} has no replica")
        return Fn.replace(self.arn, f":{self._props.region}:", f":{region}:")

    def read_statements(self, *, replica: bool = False) -> list[Statement]:
        """Statements that let a principal read this secret (and decrypt it, through Secrets Manager only); with
        ``replica``, its replica in the replica's region and that copy's key instead."""
        arn, key, region = (self.arn, self._key, self._props.region)
        if replica:
            assert self._replica_key is not None and self._props.replica_region is not None
            arn, key, region = (self.replica_arn, self._replica_key, self._props.replica_region)
        return [
            Statement(
                sid="ReadSecret",
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[arn],
            ),
            Statement(
                sid="DecryptSecretThroughSecretsManager",
                actions=["kms:Decrypt"],
                resources=[key.arn],
                conditions={("StringEquals", "kms:ViaService"): [f"secretsmanager.{region}.amazonaws.com"]},
            ),
        ]

    def grant_read(self, role: IamRole, *, replica: bool = False) -> IamRolePolicy:
        """Attach an inline policy to ``role`` allowing it to read this secret (or only its replica), and nothing
        else."""
        return grant(
            self,
            role,
            verb="read_replica" if replica else "read",
            policy_name=f"read-{'replica-' if replica else ''}{self.name.replace('/', '-')}",
            statements=self.read_statements(replica=replica),
        )
