"""The security module: policy documents, KMS keys, secrets, IAM, audit (CloudTrail, Security Hub, GuardDuty), WAF."""

from roi_tf.modules.security.kms import (
    KEY_SELF,
    EncryptionKeys,
    EncryptionKeysProps,
    KmsKey,
    KmsKeyProps,
    key_statement,
)
from roi_tf.modules.security.policy import Statement, deny_insecure_transport, policy_document, policy_json
from roi_tf.modules.security.secrets import Secret, SecretProps

__all__ = [
    "KEY_SELF",
    "EncryptionKeys",
    "EncryptionKeysProps",
    "KmsKey",
    "KmsKeyProps",
    "Secret",
    "SecretProps",
    "Statement",
    "deny_insecure_transport",
    "key_statement",
    "policy_document",
    "policy_json",
]
