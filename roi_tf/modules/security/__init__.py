"""The security module: policy documents, KMS keys, secrets, IAM, the audit trail, account-level services, WAF,
the CI pipeline's roles."""

from roi_tf.modules.security.account import AccountServices
from roi_tf.modules.security.audit import Audit, AuditProps
from roi_tf.modules.security.iam import (
    Operators,
    OperatorsProps,
    ServiceRole,
    ServiceRoleProps,
    grant,
)
from roi_tf.modules.security.kms import (
    KEY_SELF,
    EncryptionKeys,
    EncryptionKeysProps,
    KmsKey,
    KmsKeyProps,
    key_statement,
)
from roi_tf.modules.security.pipeline import Pipeline, PipelineProps
from roi_tf.modules.security.policy import Statement, deny_insecure_transport, policy_document, policy_json
from roi_tf.modules.security.secrets import Secret, SecretProps, WriteOnly
from roi_tf.modules.security.waf import WebAcl, WebAclProps, web_acl_log_group

__all__ = [
    "KEY_SELF",
    "AccountServices",
    "Audit",
    "AuditProps",
    "EncryptionKeys",
    "EncryptionKeysProps",
    "KmsKey",
    "KmsKeyProps",
    "Operators",
    "OperatorsProps",
    "Pipeline",
    "PipelineProps",
    "Secret",
    "SecretProps",
    "ServiceRole",
    "ServiceRoleProps",
    "Statement",
    "WebAcl",
    "WebAclProps",
    "WriteOnly",
    "deny_insecure_transport",
    "grant",
    "key_statement",
    "policy_document",
    "policy_json",
    "web_acl_log_group",
]
