"""The stacks: ``<env>`` (the environment itself) and ``state-<env>`` (its remote-state backend)."""

from roi_tf.naming import state_key
from roi_tf.stacks.common import GLOBAL_REGION, state_stack_name
from roi_tf.stacks.environment import EnvironmentStack
from roi_tf.stacks.state import StateBackendStack

__all__ = ["GLOBAL_REGION", "EnvironmentStack", "StateBackendStack", "state_key", "state_stack_name"]
