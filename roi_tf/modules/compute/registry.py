"""ECR repositories: immutable tags, scanned on push, KMS-encrypted, only the last N images kept."""

from __future__ import annotations

import json
from collections.abc import Sequence

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
    EcrRepositoryImageScanningConfiguration,
)
from cdktf_cdktf_provider_aws.ecr_repository_policy import EcrRepositoryPolicy
from constructs import Construct

from roi_tf.modules.security import KmsKey, Statement, policy_document


class Repository(Construct):
    """One repository; ``pull_statements`` are what a task's execution role needs to pull from it."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,  # "roi-systems-<env>/<image>"
        keep_count: int,  # images kept; older ones expire
        key: KmsKey,
        force_delete: bool = False,  # default: Terraform refuses to delete a repository that holds images
        provider: TerraformProvider | None = None,  # default: the stack's primary-region provider
    ) -> None:
        super().__init__(scope, id)
        self._provider = provider
        self.repository = EcrRepository(
            self,
            "repository",
            name=name,
            # A tag names one image forever: what ran yesterday can be redeployed, and audited.
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=EcrRepositoryImageScanningConfiguration(scan_on_push=True),
            encryption_configuration=[EcrRepositoryEncryptionConfiguration(encryption_type="KMS", kms_key=key.arn)],
            force_delete=force_delete,
            provider=provider,
        )
        self.name = self.repository.name  # read once: each attribute read is a round trip to jsii
        EcrLifecyclePolicy(
            self,
            "lifecycle",
            repository=self.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"Keep the last {keep_count} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": keep_count,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            provider=provider,
        )
        self.arn = self.repository.arn
        self.url = self.repository.repository_url

    def pull_statements(self) -> list[Statement]:
        """What an ECS execution role needs to pull this repository's images (the token accepts only "*")."""
        return [
            Statement(
                sid="GetRegistryToken",
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],
                any_resource_reason="ecr:GetAuthorizationToken accepts no resource but *",
            ),
            Statement(
                sid="PullImages",
                actions=["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                resources=[self.arn],
            ),
        ]

    def allow(self, statements: Sequence[Statement]) -> EcrRepositoryPolicy:
        """A repository policy admitting a service principal (e.g. Lambda pulling a function image), in the
        repository's region."""
        document = policy_document(self, "policy_document", statements)
        document.provider = self._provider
        return EcrRepositoryPolicy(self, "policy", repository=self.name, policy=document.json, provider=self._provider)
