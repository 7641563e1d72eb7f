"""scripts/init.sh, deploy.sh, destroy.sh: driven end to end against a recording fake terraform."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import DUMMY_SECRETS, REPO

FAKE_TERRAFORM = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_TF_LOG"
if [[ "$1" == "version" ]]; then echo '{"terraform_version": "'"${FAKE_TF_VERSION:-1.10.5}"'"}'; fi
"""


@pytest.fixture(scope="module")
def shared_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthesized output for every script run here (each script synthesizes into it again)."""
    return tmp_path_factory.mktemp("scripts") / "cdktf.out"


@pytest.fixture
def fake(tmp_path: Path) -> dict[str, str]:
    binary = tmp_path / "bin" / "terraform"
    binary.parent.mkdir()
    binary.write_text(FAKE_TERRAFORM)
    binary.chmod(0o755)
    return {"TERRAFORM": str(binary), "FAKE_TF_LOG": str(tmp_path / "terraform.log")}


def run(script: str, *args: str, env: dict[str, str], secrets: bool = True) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TF_VAR_")}
    environment.update(env)
    if secrets:
        environment.update(DUMMY_SECRETS)
    return subprocess.run(
        ["bash", str(REPO / "scripts" / script), *args],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def calls(fake: dict[str, str], outdir: Path) -> list[str]:
    log = Path(fake["FAKE_TF_LOG"])
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.replace(f"-chdir={outdir}/stacks/", "@") for line in lines if not line.startswith("version")]


def test_init_bootstraps_state_then_initializes_the_environment(fake, shared_outdir: Path) -> None:
    done = run("init.sh", "staging", "--auto-approve", env={**fake, "CDKTF_OUTDIR": str(shared_outdir)})
    assert done.returncode == 0, done.stderr
    assert calls(fake, shared_outdir) == [
        "@state-staging init -input=false",
        "@state-staging apply -input=false -auto-approve",
        "@staging init -input=false",
    ]
    assert (shared_outdir / "stacks" / "staging" / "cdk.tf.json").is_file()


def test_deploy_plans_to_a_file_and_applies_exactly_that_plan(fake, shared_outdir: Path) -> None:
    done = run("deploy.sh", "dev", "--auto-approve", env={**fake, "CDKTF_OUTDIR": str(shared_outdir)})
    assert done.returncode == 0, done.stderr
    assert calls(fake, shared_outdir) == [
        "@dev init -input=false",
        "@dev plan -input=false -out=tfplan",
        "@dev apply -input=false tfplan",
    ]


def test_deploy_plan_only_never_applies(fake, shared_outdir: Path) -> None:
    done = run("deploy.sh", "prod", "--plan-only", env={**fake, "CDKTF_OUTDIR": str(shared_outdir)})
    assert done.returncode == 0, done.stderr
    assert not [c for c in calls(fake, shared_outdir) if " apply" in c]


def test_deploy_without_a_terminal_or_approval_applies_nothing(fake, shared_outdir: Path) -> None:
    done = run("deploy.sh", "prod", env={**fake, "CDKTF_OUTDIR": str(shared_outdir)})
    assert done.returncode == 1
    assert "refusing to apply prod without a terminal" in done.stderr
    assert not [c for c in calls(fake, shared_outdir) if " apply" in c]


def test_deploy_requires_the_secret_variables(fake, tmp_path: Path) -> None:
    done = run("deploy.sh", "dev", env={**fake, "CDKTF_OUTDIR": str(tmp_path / "out")}, secrets=False)
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == "error: TF_VAR_db_password is not set (export it; see README: never put secrets in files)"
    )
    assert calls(fake, tmp_path / "out") == []


def test_scripts_reject_unknown_environments_and_old_terraform(fake, tmp_path: Path) -> None:
    done = run("init.sh", "qa", env=fake)
    assert (done.returncode, done.stderr.strip()) == (
        1,
        "error: unknown environment 'qa': expected one of dev staging prod",
    )
    done = run("init.sh", "dev", env={**fake, "FAKE_TF_VERSION": "1.6.6"})
    assert (done.returncode, done.stderr.strip()) == (1, "error: terraform 1.6.6 is too old (need >= 1.10.0)")


def test_destroy_refuses_prod_without_allow_production(fake, tmp_path: Path) -> None:
    done = run("destroy.sh", "prod", "--auto-approve", env={**fake, "CDKTF_OUTDIR": str(tmp_path / "out")})
    assert done.returncode == 1
    assert "refusing to destroy prod" in done.stderr
    assert calls(fake, tmp_path / "out") == []


def test_destroy_prod_is_never_unattended(fake, shared_outdir: Path) -> None:
    args = ("prod", "--allow-production", "--auto-approve")
    done = run("destroy.sh", *args, env={**fake, "CDKTF_OUTDIR": str(shared_outdir)})
    assert done.returncode == 1
    assert "refusing to destroy prod without a terminal" in done.stderr
    assert not [c for c in calls(fake, shared_outdir) if "destroy" in c]


def test_destroy_dev_destroys_only_the_environment_stack(fake, shared_outdir: Path) -> None:
    done = run("destroy.sh", "dev", "--auto-approve", env={**fake, "CDKTF_OUTDIR": str(shared_outdir)})
    assert done.returncode == 0, done.stderr
    assert calls(fake, shared_outdir) == ["@dev init -input=false", "@dev destroy -input=false -auto-approve"]
