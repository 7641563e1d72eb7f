"""Accidental-destroy protection for everything that holds data or audit history, applied to a whole stack.

One aspect, so a module cannot forget it: every resource of a type in ``DATA_HOLDING`` gets
``lifecycle.prevent_destroy`` (Terraform refuses any plan that would destroy or replace it), and types for which
AWS offers its own deletion protection without a setting of ours get it switched on too. Database and sessions
tables keep their own, configured deletion protection (``config.py`` requires it wherever this is on).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from constructs import Construct

# Resource type -> what its destruction would lose. A test fails when a stack holds a type neither here nor in its
# list of types that hold nothing, so a new module's data cannot go unprotected unnoticed.
DATA_HOLDING: dict[str, str] = {
    "aws_kms_key": "everything encrypted with the key becomes unreadable",
    "aws_s3_bucket": "the objects and all their versions",
    "aws_s3_bucket_versioning": "destroying it suspends versioning: overwrites and deletes lose the previous version",
    "aws_cloudwatch_log_group": "audit, flow and service logs",
    "aws_cloudtrail": "the audit trail stops recording who did what",
    "aws_db_instance": "the database (replicas: the copies failover relies on)",
    "aws_db_instance_automated_backups_replication": "the backups copied to the DR region",
    "aws_elasticache_replication_group": "cached data and the job queues",
    "aws_elasticache_global_replication_group": "the cache's copy in the DR region (its secondary is detached)",
    "aws_dynamodb_table": "the sessions (state stacks: the lock table)",
    "aws_secretsmanager_secret": "the secret values",
    "aws_guardduty_detector": "GuardDuty's findings",
    "aws_securityhub_account": "Security Hub's findings and their history",
    "aws_config_configuration_recorder": "the configuration history Security Hub's controls evaluate",
    "aws_ecr_repository": "the images deployed, and the ones a rollback would need",
    "aws_sqs_queue": "events not yet processed, and the failed ones kept in the dead-letter queue",
}
# Deletion protection AWS offers where nothing in config decides it: switched on with prevent_destroy.
DELETION_PROTECTION: dict[str, str] = {
    "aws_cloudwatch_log_group": "deletion_protection_enabled",
}


# A generated provider class (it declares TF_RESOURCE_TYPE) lives in the submodule named after the resource type it
# always synthesizes (aws_s3_bucket: cdktf_cdktf_provider_aws.s3_bucket); reading the type instead would be a round
# trip to jsii per class. A plain TerraformResource (or a subclass of ours) names its type per instance: it is asked.
PROVIDER_PACKAGE = "cdktf_cdktf_provider_aws."


def generated_resource_type(cls: type) -> str | None:
    """The resource (or data source) type a generated provider class synthesizes, from where it is defined (data
    sources live in ``data_aws_<type>``); None for other classes. No round trip to jsii."""
    if cls.__module__.startswith(PROVIDER_PACKAGE) and "TF_RESOURCE_TYPE" in vars(cls):
        return "aws_" + cls.__module__.removeprefix(PROVIDER_PACKAGE).removeprefix("data_aws_")
    return None


def protect_data(scope: Construct) -> None:
    """Every data-holding resource under ``scope`` refuses to be destroyed by Terraform (applied at synth)."""
    # Imported here: the tables above are read by tools (roi_tf.tools.stackinfo) that must not start jsii.
    import jsii
    from cdktf import Aspects, IAspect, TerraformResource
    from constructs import Construct, IConstruct

    def resource_type_of(node: TerraformResource) -> str:
        return generated_resource_type(type(node)) or node.terraform_resource_type

    @jsii.implements(IAspect)
    class PreventDestroy:
        def visit(self, _marker: IConstruct) -> None:
            for node in scope.node.find_all():
                if not isinstance(node, TerraformResource):
                    continue
                resource_type = resource_type_of(node)
                if resource_type in DATA_HOLDING:
                    node.add_override("lifecycle.prevent_destroy", True)
                if resource_type in DELETION_PROTECTION:
                    node.add_override(DELETION_PROTECTION[resource_type], True)

    # cdktf calls an aspect for every construct below the one it is added to, and each call from node back into
    # Python is a round trip (~1,000 of them, a third of a second, for all stacks). Added to an empty marker
    # construct, the aspect is called once, at synthesis like any aspect (so resources added after this call are
    # covered), and sweeps the whole scope itself.
    Aspects.of(Construct(scope, "PreventDestroy")).add(PreventDestroy())
