"""scripts/init.sh, deploy.sh, destroy.sh: driven end to end against a recording fake terraform."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DUMMY_SECRETS, REPO

FAKE_TERRAFORM = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_TF_LOG"
if [[ "$*" == *" show -json destroy.tfplan"* ]]; then cat "${FAKE_TF_DESTROY_JSON:?}"; exit 0; fi
override="${1#-chdir=}/backend_override.tf.json"
if [[ -f "$override" ]]; then echo "  with $(cat "$override")" >> "$FAKE_TF_LOG"; fi
if [[ "$1" == "version" ]]; then echo '{"terraform_version": "'"${FAKE_TF_VERSION:-1.11.4}"'"}'; fi
args=" $* "
# As Terraform, a plan or an apply (of a saved plan too: ephemeral variables are given again) refuses to run without
# a value for every input variable the stack declares without a default.
if [[ "$args" == *" plan "* || "$args" == *" apply "* ]]; then
  python3 - "${1#-chdir=}/cdk.tf.json" <<'PY' || exit 1
import json, os, sys
variables = json.load(open(sys.argv[1])).get("variable", {})
missing = sorted(n for n, v in variables.items() if "default" not in v and not os.environ.get(f"TF_VAR_{n}"))
if missing:
    sys.exit(f"Error: No value for required variable(s): {', '.join(missing)}")
PY
fi
# A plan answers with -detailed-exitcode's convention: 0 no changes, 1 error, 2 changes (the default here).
if [[ "$args" == *" plan "* && "$args" == *" -detailed-exitcode "* ]]; then exit "${FAKE_TF_PLAN_EXIT:-2}"; fi
if [[ "$args" == *" show -json tfplan "* ]]; then cat "${FAKE_TF_PLAN_JSON:?}"; fi
if [[ "$args" == *" output -json "* ]]; then cat "${FAKE_TF_OUTPUTS:?}"; fi
# state list ADDRESS...: the addresses the state holds among those (all of them, unless FAKE_TF_STATE_EMPTY).
if [[ "$args" == *" state list "* && -z "${FAKE_TF_STATE_EMPTY:-}" ]]; then printf '%s\n' "${@:4}"; fi
exit 0
"""
# aws and curl on PATH: they record their arguments (one line per call, in the terraform log, so the sequence of
# all three is one list) and answer as the FAKE_* variables say.
FAKE_AWS = """#!/usr/bin/env bash
echo "aws $*" >> "$FAKE_TF_LOG"
case "$1 $2" in
  "sts get-caller-identity") echo "${FAKE_AWS_ACCOUNT:-111111111111}" ;;
  "s3api head-bucket") [[ "${FAKE_STATE_BUCKET:-exists}" == exists ]] || exit 254 ;;
  "rds describe-db-instances")
    if [[ "${FAKE_DB_STATUS:-available}" == missing ]]; then
      echo "An error occurred (DBInstanceNotFound) when calling the DescribeDBInstances operation" >&2; exit 254
    fi
    if [[ "${FAKE_DB_STATUS:-available}" == denied ]]; then
      echo "An error occurred (AccessDenied) when calling the DescribeDBInstances operation" >&2; exit 254
    fi
    echo "${FAKE_DB_STATUS:-available}" ;;
  "rds deregister-db-proxy-targets")
    [[ -z "${FAKE_TARGET_GONE:-}" ]] || { echo "An error occurred (DBProxyTargetNotFoundFault)" >&2; exit 254; } ;;
  "elasticache describe-replication-groups")
    [[ -z "${FAKE_CACHE_GONE:-}" ]] || { echo "An error occurred (ReplicationGroupNotFoundFault)" >&2; exit 254; }
    echo available ;;
  "rds create-db-snapshot") [[ -z "${FAKE_SNAPSHOT_FAILS:-}" ]] || exit 254; echo creating ;;
  "rds wait") exit 0 ;;
  "ecs wait") exit "${FAKE_ECS_WAIT_EXIT:-0}" ;;
  "cloudwatch describe-alarms") echo "${FAKE_ALARMS_IN_ALARM:-}" ;;
  "cloudwatch get-metric-statistics") echo "${FAKE_REPLICA_LAG:-2.0}" ;;
  "rds promote-read-replica") echo promoting ;;
  "rds modify-db-instance") [[ -z "${FAKE_MODIFY_FAILS:-}" ]] || exit 254; echo modifying ;;
  "elasticache describe-global-replication-groups") echo "${FAKE_GLOBAL_ID-ldgnf-roi-systems-prod-redis}" ;;
  "elasticache failover-global-replication-group") [[ -z "${FAKE_GLOBAL_FAILOVER_FAILS:-}" ]] || exit 254 ;;
  "elasticache disassociate-global-replication-group") [[ -z "${FAKE_DISASSOCIATE_FAILS:-}" ]] || exit 254 ;;
  "rds describe-db-proxy-targets") echo "${FAKE_PROXY_HEALTH-AVAILABLE}" ;;
  "dynamodb put-item") [[ -z "${FAKE_PUT_ITEM_FAILS:-}" ]] || exit 254 ;;
  # S3 as a directory (FAKE_S3/<bucket>/<key>): s3 cp --region R SOURCE DESTINATION [options].
  "s3 cp")
    from="$5" to="$6"
    [[ "$from" != s3://* ]] || from="${FAKE_S3:?}/${from#s3://}"
    if [[ "$to" == s3://* ]]; then to="${FAKE_S3:?}/${to#s3://}"; mkdir -p "$(dirname "$to")"; fi
    cp "$from" "$to" 2>/dev/null || { echo "fatal error: An error occurred (404)" >&2; exit 1; } ;;
esac
"""
FAKE_CURL = """#!/usr/bin/env bash
echo "curl $*" >> "$FAKE_TF_LOG"
count=$(( $(cat "$FAKE_CURL_COUNT" 2>/dev/null || echo 0) + 1 ))
echo "$count" > "$FAKE_CURL_COUNT"
# -w %{http_code} without -f: curl prints the status and succeeds whatever it is (the first FAKE_CURL_FAILS calls
# get FAKE_CURL_FAIL_CODE, the others FAKE_CURL_CODE); with -f it fails the first FAKE_CURL_FAILS calls.
if [[ " $* " == *" -w "* ]]; then
  code="${FAKE_CURL_FAIL_CODE:-503}"
  (( count <= ${FAKE_CURL_FAILS:-0} )) || code="${FAKE_CURL_CODE:-200}"
  echo "$code"
  exit 0
fi
(( count > ${FAKE_CURL_FAILS:-0} ))
"""
# What the fake terraform shows for a plan with changes, and the outputs of an applied stack.
PLAN_JSON = {"resource_changes": [{"address": "aws_sqs_queue.events", "type": "aws_sqs_queue", "mode": "managed",
                                   "change": {"actions": ["update"]}}]}  # fmt: skip
OUTPUTS = {
    "cdn_url": {"value": "https://app.example.com"},
    "api_load_balancer_dns_name": {"value": "api-lb-123.us-east-1.elb.amazonaws.com"},
    "ecs_cluster_name": {"value": "roi-systems-ENV-cluster"},
    "api_service_name": {"value": "roi-systems-ENV-api"},
    "ml_service_name": {"value": "roi-systems-ENV-ml"},
    # The pilot light's application tier (prod failed over): what failover.sh starts.
    "dr_ecs_cluster_name": {"value": "roi-systems-ENV-dr-cluster"},
    "dr_api_service_name": {"value": "roi-systems-ENV-dr-api"},
    "dr_ml_service_name": {"value": "roi-systems-ENV-dr-ml"},
    "dr_api_task_definition_arn": {
        "value": "arn:aws:ecs:us-west-2:222222222222:task-definition/roi-systems-ENV-dr-api:7"
    },
    "dr_ml_task_definition_arn": {
        "value": "arn:aws:ecs:us-west-2:222222222222:task-definition/roi-systems-ENV-dr-ml:5"
    },
    "dr_event_processor_function_name": {"value": "roi-systems-ENV-dr-events"},
}


# Test accounts for the environments the scripts only apply to named accounts.
ACCOUNTS = {"staging": "111111111111", "prod": "222222222222"}


def write_environments(directory: Path) -> Path:
    """The repository's environments with allowed_account_ids set where the scripts require them, and staging's
    protection off, so a destroy can be driven to its end."""
    shutil.copytree(REPO / "environments", directory, dirs_exist_ok=True)
    for env, account in ACCOUNTS.items():
        path = directory / f"{env}.json"
        data = json.loads(path.read_text())
        data["allowed_account_ids"] = [account]
        if env == "staging":
            data["protection"]["prevent_destroy"] = False
        path.write_text(json.dumps(data, indent=2))
    return directory


@pytest.fixture(scope="module")
def environments_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_environments(tmp_path_factory.mktemp("environments"))


@pytest.fixture(scope="session")
def presynthesized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every environment of write_environments() synthesized once for the whole run (all workers: the first one
    synthesizes under a lock, the others wait and reuse it), stamped as the scripts stamp their synths."""
    from roi_tf.config import ENVIRONMENTS
    from roi_tf.tools import fingerprint

    root = tmp_path_factory.getbasetemp()
    root = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root  # shared by the workers
    target = root / "scripts-presynthesized"
    with (root / "scripts-presynthesized.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "done").exists():
            shutil.rmtree(target, ignore_errors=True)
            from roi_tf.app import synth
            from roi_tf.config import load_environments

            environments = write_environments(target / "environments")
            outdir = target / "cdktf.out"
            # main.py's synth, in this process: the provider package is imported here already (the session's).
            synth(load_environments(environments_dir=environments), outdir)
            for env in ENVIRONMENTS:
                fingerprint.stamp(env, fingerprint.digest(env, environments), outdir)
            (target / "done").touch()
    return target / "cdktf.out"


@pytest.fixture
def shared_outdir(presynthesized: Path, tmp_path: Path) -> Path:
    """This test's copy of the synthesized stacks, current for the scripts' environments: they synthesize again
    only what a test changes (a test that needs a synth from scratch uses an empty output directory)."""
    outdir = tmp_path / "cdktf.out"
    shutil.copytree(presynthesized, outdir)
    return outdir


@pytest.fixture
def fake(tmp_path: Path, environments_dir: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (("terraform", FAKE_TERRAFORM), ("aws", FAKE_AWS), ("curl", FAKE_CURL)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "plan.json").write_text(json.dumps(PLAN_JSON))
    (tmp_path / "outputs.json").write_text(json.dumps(OUTPUTS))
    return {
        "TERRAFORM": str(bin_dir / "terraform"),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_TF_LOG": str(tmp_path / "terraform.log"),
        "FAKE_TF_PLAN_JSON": str(tmp_path / "plan.json"),
        "FAKE_TF_OUTPUTS": str(tmp_path / "outputs.json"),
        "FAKE_TF_DESTROY_JSON": str(tmp_path / "plan.json"),
        "FAKE_CURL_COUNT": str(tmp_path / "curl.count"),
        "VALIDATION_BACKOFF_SECONDS": "0",
        "ROI_TF_ENVIRONMENTS_DIR": str(environments_dir),
    }


# What CI would deploy: the image tags and the event processor's package.
DEPLOYMENT_INPUTS = {
    "TF_VAR_api_image_tag": "1.4.2",
    "TF_VAR_ml_image_tag": "2.0.1",
    "TF_VAR_event_processor_code": "event-processor/1.0.0.zip",
}
# Where prod's critical alerts page (only prod's stack declares it).
ALERT_INPUTS = {"TF_VAR_pagerduty_integration_url": "https://events.pagerduty.com/integration/0123456789abcdef/enqueue"}


# What the scripts read from their environment (every `${NAME:-default}` in them: CI, CDKTF_OUTDIR, TERRAFORM...).
# A test sets these itself; the runner's own values (a CI machine exports CI=true) must not leak into a run.
SCRIPT_INPUTS = frozenset(
    name
    for script in (REPO / "scripts").glob("*.sh")
    for name in re.findall(r"\$\{([A-Z_][A-Z0-9_]*):-", script.read_text())
)


def script_env(env: dict[str, str], secrets: bool = True) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TF_VAR_") and k not in SCRIPT_INPUTS}
    environment.update(env)
    if secrets:
        environment.update({**DUMMY_SECRETS, **DEPLOYMENT_INPUTS, **ALERT_INPUTS})
    return environment


def run(script: str, *args: str, env: dict[str, str], secrets: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / script), *args],
        env=script_env(env, secrets),
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


STS = "aws sts get-caller-identity --query Account --output text"


def planned(env_name: str, *targets: str) -> list[str]:
    """init, a plan with -detailed-exitcode into tfplan, and its summary."""
    target = "".join(f" -target={t}" for t in targets)
    return [
        f"@{env_name} init -input=false",
        f"@{env_name} plan -input=false -detailed-exitcode -out=tfplan{target}",
        f"@{env_name} show -json tfplan",
    ]


def validated(env_name: str, region: str, *urls: str) -> list[str]:
    """What deploy.sh runs after an apply to validate it (the fake outputs name the cluster and services)."""
    prefix = f"roi-systems-{env_name}"
    return [
        f"@{env_name} output -json",
        *(f"curl -fsS -o /dev/null --max-time 10 {url}" for url in urls),
        f"aws ecs wait services-stable --region {region} --cluster roi-systems-ENV-cluster --services "
        "roi-systems-ENV-api roi-systems-ENV-ml",
        f"aws cloudwatch describe-alarms --region {region} --alarm-name-prefix {prefix}- --state-value ALARM "
        "--query MetricAlarms[].AlarmName --output text",
        f"aws rds describe-db-instances --region {region} --db-instance-identifier {prefix}-postgres "
        "--query DBInstances[0].DBInstanceStatus --output text",
    ]


def destroyed(env_name: str) -> list[str]:
    """init, the destroy planned into destroy.tfplan and summarized, then exactly that plan applied."""
    return [
        f"@{env_name} init -input=false",
        f"@{env_name} plan -destroy -input=false -out=destroy.tfplan",
        f"@{env_name} show -json destroy.tfplan",
        f"@{env_name} apply -input=false destroy.tfplan",
    ]


DEV_URLS = ("https://app.example.com/", "http://api-lb-123.us-east-1.elb.amazonaws.com/health")


@pytest.mark.parametrize(
    ("env_name", "flags", "state_apply"),
    [
        ("staging", ("--auto-approve",), "apply -input=false -auto-approve"),
        # Without the flag, Terraform itself asks before it creates the state bucket, lock table and key.
        ("dev", (), "apply -input=false"),
    ],
)
def test_init_bootstraps_state_on_a_local_file_then_moves_it_into_its_bucket(
    fake, shared_outdir: Path, env_name: str, flags: tuple[str, ...], state_apply: str
) -> None:
    """Guards the order (state backend first), the migration (nothing left only on this laptop: the local file is
    used for the one apply that creates the bucket, then moved into it) and init.sh's --auto-approve: passed to the
    state apply only when given (a script that always passes -auto-approve creates the backend unreviewed)."""
    env = {**fake, "CDKTF_OUTDIR": str(shared_outdir), "FAKE_STATE_BUCKET": "missing",
           "FAKE_AWS_ACCOUNT": ACCOUNTS.get(env_name, "")}  # fmt: skip
    done = run("init.sh", env_name, *flags, env=env)
    assert done.returncode == 0, done.stderr
    local = (
        f'{{"terraform": {{"backend": {{"local": {{"path": "{REPO}/bootstrap-state/state-{env_name}.tfstate"}}}}}}}}'
    )
    bucket = f"roi-systems-terraform-state-{env_name}"
    assert calls(fake, shared_outdir) == [
        STS,
        f"aws s3api head-bucket --region us-east-1 --bucket {bucket}",
        f"@state-{env_name} init -input=false -reconfigure",
        f"  with {local}",
        f"@state-{env_name} {state_apply}",
        f"  with {local}",
        f"@state-{env_name} init -input=false -migrate-state -force-copy",
        f"@{env_name} init -input=false",
    ]
    assert not (shared_outdir / "stacks" / f"state-{env_name}" / "backend_override.tf.json").exists()
    assert f"moving its state into s3://{bucket}/state-{env_name}/terraform.tfstate" in done.stderr


def test_init_again_uses_the_state_in_the_bucket(fake, shared_outdir: Path) -> None:
    """A re-run (or another operator's first run on a fresh clone): the bucket exists, so the state stack starts
    from the state stored there, never from an empty local one that would try to create the bucket again."""
    done = run("init.sh", "dev", "--auto-approve", env={**fake, "CDKTF_OUTDIR": str(shared_outdir)})
    assert done.returncode == 0, done.stderr
    assert calls(fake, shared_outdir) == [
        STS,
        "aws s3api head-bucket --region us-east-1 --bucket roi-systems-terraform-state-dev",
        "@state-dev init -input=false -migrate-state -force-copy",
        "@state-dev apply -input=false -auto-approve",
        "@dev init -input=false",
    ]


def test_deploy_plans_to_a_file_and_applies_exactly_that_plan(fake, shared_outdir: Path) -> None:
    env = {**fake, "CDKTF_OUTDIR": str(shared_outdir)}
    done = run("deploy.sh", "dev", "--auto-approve", env=env)
    assert done.returncode == 0, done.stderr
    assert calls(fake, shared_outdir) == [
        STS,
        *planned("dev"),
        "@dev apply -input=false tfplan",
        *validated("dev", "us-east-1", *DEV_URLS),
    ]
    assert "plan: 0 to add, 1 to change, 0 to destroy, 0 to replace" in done.stderr
    assert done.stderr.strip().splitlines()[-2:] == [
        "==> dev validated: web app answering, services stable, database available, no alarm in ALARM",
        "==> dev deployed",
    ]


def test_unchanged_stacks_are_not_synthesized_again_and_an_edited_environment_is(
    fake, shared_outdir: Path, tmp_path: Path
) -> None:
    """Guards against a plan of stale stacks: a run reuses the stacks only while every input and the stacks
    themselves are what their synth saw (roi_tf/tools/fingerprint.py; its cases, an edited stack among them:
    tests/test_fingerprint.py). Also: the scripts synthesize only the environment they act on, so a broken file of
    another environment (staging.json here) does not block a deploy."""
    env = {**fake, "CDKTF_OUTDIR": str(shared_outdir)}
    first = run("deploy.sh", "dev", "--plan-only", env=env)  # synthesizes, unless another test just did
    assert first.returncode == 0, first.stderr
    second = run("deploy.sh", "dev", "--plan-only", env=env)
    assert second.returncode == 0, second.stderr
    assert f"dev: stacks in {shared_outdir} are up to date" in second.stderr and "synthesizing" not in second.stderr
    # An edit to dev's own file (a trailing newline): its stacks are synthesized again, not reused.
    environments = tmp_path / "environments"
    shutil.copytree(fake["ROI_TF_ENVIRONMENTS_DIR"], environments)
    (environments / "staging.json").write_text("{ not json")
    (environments / "dev.json").write_text((environments / "dev.json").read_text() + "\n")
    third = run("deploy.sh", "dev", "--plan-only", env={**env, "ROI_TF_ENVIRONMENTS_DIR": str(environments)})
    assert third.returncode == 0, third.stderr
    assert "synthesizing dev into" in third.stderr
    from roi_tf.tools import fingerprint

    assert fingerprint.fresh("dev", environments, shared_outdir)  # the new synth, stamped for the edited file
    assert [c for c in calls(fake, shared_outdir) if " plan " in c] == [planned("dev")[1]] * 3


def deploy(fake: dict[str, str], outdir: Path, env_name: str, *args: str, **answers: str):
    """deploy.sh ENV ARGS with the fakes answering as ``answers`` say (FAKE_* variables), the account ENV's."""
    env = {**fake, "CDKTF_OUTDIR": str(outdir), "FAKE_AWS_ACCOUNT": ACCOUNTS.get(env_name, "999999999999"), **answers}
    return run("deploy.sh", env_name, *args, env=env)


PROD_SNAPSHOT = re.compile(
    r"^aws rds create-db-snapshot --region us-east-1 --db-instance-identifier roi-systems-prod-postgres "
    r"--db-snapshot-identifier (roi-systems-prod-postgres-pre-deploy-\d{8}-\d{6}) --output text "
    r"--query DBSnapshot.Status$"
)


def test_prod_in_ci_snapshots_the_database_applies_the_plan_and_validates(fake, shared_outdir: Path) -> None:
    """The whole prod path, in order: plan and summary, the snapshot taken and waited for before the apply, the
    saved plan applied, then the validation (prod's load balancer admits only CloudFront: the web app through
    CloudFront, the API through its services' health)."""
    done = deploy(fake, shared_outdir, "prod", "--auto-approve", CI="true")
    assert done.returncode == 0, done.stderr
    found = calls(fake, shared_outdir)
    describe = ("aws rds describe-db-instances --region us-east-1 --db-instance-identifier roi-systems-prod-postgres "
                "--query DBInstances[0].DBInstanceStatus --output text")  # fmt: skip
    snapshot = PROD_SNAPSHOT.match(found[5])
    assert snapshot, found[5]
    assert found == [
        STS,
        *planned("prod"),
        describe,
        found[5],
        f"aws rds wait db-snapshot-available --region us-east-1 --db-snapshot-identifier {snapshot[1]}",
        "@prod apply -input=false tfplan",
        *validated("prod", "us-east-1", "https://app.example.com/"),
    ]


@pytest.mark.parametrize(
    ("env_name", "args", "answers", "expected", "message"),
    [
        pytest.param("dev", ("--auto-approve",), {"FAKE_TF_PLAN_EXIT": "0"}, [STS, *planned("dev")[:2]],
                     "==> dev: no changes; nothing to apply", id="no-changes"),
        pytest.param("dev", ("--auto-approve",), {"FAKE_TF_PLAN_EXIT": "1"}, [STS, *planned("dev")[:2]],
                     "error: terraform plan failed for dev (exit 1): nothing was applied", id="failed-plan"),
        pytest.param("prod", ("--auto-approve",), {}, [],
                     "error: refusing --auto-approve for prod outside CI (CI=true): type the confirmation instead",
                     id="prod-auto-approve-outside-ci"),
        pytest.param("staging", ("--auto-approve",), {"FAKE_AWS_ACCOUNT": "333333333333"}, [STS],
                     "error: the credentials are for account 333333333333, not one of staging's allowed_account_ids "
                     "(111111111111)", id="wrong-account"),
        pytest.param("prod", ("--auto-approve",), {"CI": "true", "FAKE_SNAPSHOT_FAILS": "1"}, None,
                     "error: the snapshot of roi-systems-prod-postgres could not be started: nothing was applied",
                     id="snapshot-failure"),
        pytest.param("prod", ("--auto-approve",), {"CI": "true", "FAKE_DB_STATUS": "denied"}, None,
                     "error: could not read the status of roi-systems-prod-postgres: An error occurred (AccessDenied) "
                     "when calling the DescribeDBInstances operation", id="database-unreadable-before-snapshot"),
        pytest.param("dev", ("--auto-approve",), {"FAKE_DB_STATUS": "stopped"}, None,
                     "error: dev was applied but does not validate (see above)", id="database-not-available"),
        pytest.param("dev", ("--auto-approve",), {"FAKE_CURL_FAILS": "99"}, None,
                     "error: dev was applied but does not validate (see above)", id="failed-health-check"),
        pytest.param("dev", ("--auto-approve",), {"FAKE_ALARMS_IN_ALARM": "roi-systems-dev-critical-api-error-rate"},
                     None, "error: dev was applied but does not validate (see above)", id="alarm-in-alarm"),
    ],
)  # fmt: skip
def test_each_refusal_stops_where_it_must(
    fake, shared_outdir: Path, env_name: str, args: tuple[str, ...], answers: dict[str, str],
    expected: list[str] | None, message: str,
) -> None:  # fmt: skip
    done = deploy(fake, shared_outdir, env_name, *args, **answers)
    assert done.returncode == (0 if "no changes" in message else 1), done.stderr
    assert done.stderr.strip().splitlines()[-1] == message
    found = calls(fake, shared_outdir)
    if expected is not None:
        assert found == expected
    applied = [c for c in found if c.endswith(" apply -input=false tfplan")]
    # A failed snapshot applies nothing; a failed validation comes after the apply and says so.
    assert bool(applied) is ("validate" in message), found
    if "FAKE_CURL_FAILS" in answers:
        assert sum(c.startswith("curl ") for c in found) == 2 * 5  # each URL retried with backoff, then loud
        assert "https://app.example.com/ does not answer" in done.stderr
    if answers.get("FAKE_DB_STATUS") == "stopped":
        assert "error: database roi-systems-dev-postgres is stopped, not available" in done.stderr
    if answers.get("FAKE_DB_STATUS") == "denied":
        assert not [c for c in found if "create-db-snapshot" in c]
    if "FAKE_ALARMS_IN_ALARM" in answers:
        assert "in ALARM: roi-systems-dev-critical-api-error-rate" in done.stderr


def test_a_saved_plan_is_applied_as_reviewed_without_planning_again(fake, shared_outdir: Path) -> None:
    """A pipeline's reviewed plan artifact: shown, applied, validated; no new plan (Terraform itself refuses a saved
    plan the state has moved past). Without the file, nothing is applied."""
    missing = deploy(fake, shared_outdir, "dev", "--saved-plan", "--auto-approve")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == (
        f"error: no saved plan at {shared_outdir}/stacks/dev/tfplan (--saved-plan applies a reviewed plan: plan first)"
    )
    assert calls(fake, shared_outdir) == [STS, "@dev init -input=false"]
    Path(fake["FAKE_TF_LOG"]).unlink()
    (shared_outdir / "stacks" / "dev" / "tfplan").write_bytes(b"reviewed plan")
    done = deploy(fake, shared_outdir, "dev", "--saved-plan", "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert calls(fake, shared_outdir) == [
        STS,
        "@dev init -input=false",
        "@dev show -json tfplan",
        "@dev apply -input=false tfplan",
        *validated("dev", "us-east-1", *DEV_URLS),
    ]
    both = deploy(fake, shared_outdir, "dev", "--saved-plan", "--plan-only")
    assert both.stderr.strip().splitlines()[-1] == (
        "error: --saved-plan applies a reviewed plan: not with --plan-only or --registries-only"
    )


def test_a_slow_health_endpoint_is_retried_until_it_answers(fake, shared_outdir: Path) -> None:
    done = deploy(fake, shared_outdir, "dev", "--auto-approve", FAKE_CURL_FAILS="2")
    assert done.returncode == 0, done.stderr
    curls = [c for c in calls(fake, shared_outdir) if c.startswith("curl ")]
    assert curls == [f"curl -fsS -o /dev/null --max-time 10 {DEV_URLS[0]}"] * 3 + [
        f"curl -fsS -o /dev/null --max-time 10 {DEV_URLS[1]}"
    ]


def test_the_first_prod_deployment_has_no_database_to_snapshot(fake, shared_outdir: Path) -> None:
    done = deploy(
        fake, shared_outdir, "prod", "--auto-approve", "--skip-validation", CI="true", FAKE_DB_STATUS="missing"
    )
    assert done.returncode == 0, done.stderr
    assert "roi-systems-prod-postgres does not exist yet (first deployment): no snapshot to take" in done.stderr
    found = calls(fake, shared_outdir)
    assert not [c for c in found if "snapshot" in c] and found[-1] == "@prod apply -input=false tfplan"


def test_the_plan_summary_names_data_at_risk_loudly(fake, shared_outdir: Path, tmp_path: Path) -> None:
    plan = {"resource_changes": [
        {"address": "aws_db_instance.db", "type": "aws_db_instance", "mode": "managed",
         "change": {"actions": ["delete", "create"]}},
        {"address": "aws_s3_bucket.docs", "type": "aws_s3_bucket", "mode": "managed",
         "change": {"actions": ["delete"]}},
        {"address": "aws_lb.api", "type": "aws_lb", "mode": "managed", "change": {"actions": ["create", "delete"]}},
        {"address": "aws_sqs_queue.q", "type": "aws_sqs_queue", "mode": "managed", "change": {"actions": ["create"]}},
    ]}  # fmt: skip
    (tmp_path / "risky.json").write_text(json.dumps(plan))
    done = deploy(fake, shared_outdir, "dev", "--plan-only", FAKE_TF_PLAN_JSON=str(tmp_path / "risky.json"))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    start = lines.index("plan: 1 to add, 0 to change, 1 to destroy, 2 to replace")
    assert lines[start + 1 : start + 3] == [
        "!!! REPLACES aws_db_instance.db: the database (replicas: the copies failover relies on)",
        "!!! DESTROYS aws_s3_bucket.docs: the objects and all their versions",
    ]


@pytest.mark.parametrize("script", ["init.sh", "deploy.sh", "destroy.sh"])
def test_a_missing_node_is_named_before_anything_runs(fake, tmp_path: Path, script: str) -> None:
    """Prerequisites are named exactly: here node, which the synth's jsii runtime starts (JSII_NODE or PATH)."""
    env = {**fake, "CDKTF_OUTDIR": str(tmp_path / "out"), "JSII_NODE": str(tmp_path / "no" / "node")}
    done = run(script, "dev", "--auto-approve", env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: node not found ({tmp_path}/no/node): the synth needs Node.js >= 20.0.0 (install it, or set JSII_NODE)"
    )
    assert calls(fake, tmp_path / "out") == [] and not (tmp_path / "out").exists()


def printed(stderr: str, outdir: Path) -> list[str]:
    """The commands a --dry-run printed, in order (the stacks' directory shortened as calls() does)."""
    return [
        line.removeprefix("+ ").replace(f"-chdir={outdir}/stacks/", "@")
        for line in stderr.splitlines()
        if line.startswith("+ ")
    ]


@pytest.mark.parametrize(
    ("script", "env_name", "args", "expected"),
    [
        pytest.param(
            "deploy.sh", "prod", ("--auto-approve",),
            [STS, *(f"terraform {c}" for c in planned("prod")),
             "aws rds describe-db-instances --region us-east-1 --db-instance-identifier roi-systems-prod-postgres "
             "--query DBInstances[0].DBInstanceStatus --output text",
             "aws rds create-db-snapshot --region us-east-1 --db-instance-identifier roi-systems-prod-postgres "
             "--db-snapshot-identifier roi-systems-prod-postgres-pre-deploy-<UTC-time> --output text "
             "--query DBSnapshot.Status",
             "aws rds wait db-snapshot-available --region us-east-1 --db-snapshot-identifier "
             "roi-systems-prod-postgres-pre-deploy-<UTC-time>",
             "terraform @prod apply -input=false tfplan", "terraform @prod output -json",
             "curl -fsS -o /dev/null --max-time 10 <cdn_url>/",
             "aws ecs wait services-stable --region us-east-1 --cluster <ecs_cluster_name> --services "
             "<api_service_name> <ml_service_name>",
             "aws cloudwatch describe-alarms --region us-east-1 --alarm-name-prefix roi-systems-prod- --state-value "
             "ALARM --query MetricAlarms[].AlarmName --output text",
             "aws rds describe-db-instances --region us-east-1 --db-instance-identifier roi-systems-prod-postgres "
             "--query DBInstances[0].DBInstanceStatus --output text"],
            id="deploy-prod",
        ),
        pytest.param(
            "init.sh", "dev", (),
            [STS, "aws s3api head-bucket --region us-east-1 --bucket roi-systems-terraform-state-dev",
             "terraform @state-dev init -input=false -reconfigure", "terraform @state-dev apply -input=false",
             "terraform @state-dev init -input=false -migrate-state -force-copy", "terraform @dev init -input=false"],
            id="init-dev-first-bootstrap",
        ),
        pytest.param(
            "destroy.sh", "dev", (),
            [f"terraform {c}" for c in destroyed("dev")],
            id="destroy-dev",
        ),
    ],
)  # fmt: skip
def test_dry_run_prints_every_command_and_runs_none(
    fake, shared_outdir: Path, script: str, env_name: str, args: tuple[str, ...], expected: list[str]
) -> None:
    """Guards --dry-run: every terraform, aws and curl command of the run, in order, printed and none run (the
    recording fakes see only the version check); a prod deploy prints its snapshot and its validation too."""
    env = {**fake, "CDKTF_OUTDIR": str(shared_outdir), "CI": "true", "FAKE_AWS_ACCOUNT": ACCOUNTS.get(env_name, "")}
    done = run(script, env_name, *args, "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    assert calls(fake, shared_outdir) == []
    assert printed(done.stderr, shared_outdir) == expected
    assert done.stderr.strip().splitlines()[-1] == "==> dry run: the commands above were printed, not run"


def test_deploy_registries_only_plans_exactly_the_artifact_stores(fake, shared_outdir: Path) -> None:
    """First deployment: the repositories and the artifacts bucket (what stackinfo names), nothing else."""
    from roi_tf.tools.stackinfo import artifact_targets

    done = run(
        "deploy.sh", "dev", "--auto-approve", "--registries-only", env={**fake, "CDKTF_OUTDIR": str(shared_outdir)}
    )
    assert done.returncode == 0, done.stderr
    targets = artifact_targets(json.loads((shared_outdir / "stacks" / "dev" / "cdk.tf.json").read_text()))
    assert len(targets) > 4
    assert calls(fake, shared_outdir) == [STS, *planned("dev", *targets), "@dev apply -input=false tfplan"]
    assert "push the images" in done.stderr and "deployed" not in done.stderr


@pytest.mark.parametrize("script", ["deploy.sh", "destroy.sh"])
@pytest.mark.parametrize("missing", sorted(DEPLOYMENT_INPUTS))
def test_deploy_and_destroy_require_every_deployment_input(fake, tmp_path: Path, script: str, missing: str) -> None:
    """The image tags and the event processor's package are variables without defaults: refused before synth."""
    outdir = tmp_path / "out"
    env = {**fake, "CDKTF_OUTDIR": str(outdir)}
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / script), "dev", "--auto-approve"],
        env={k: v for k, v in script_env(env).items() if k != missing},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f'error: {missing} is not set (the image tag or package to deploy: docs/DEPLOYMENT.md, "Deploying a new image")'
    )
    assert not Path(fake["FAKE_TF_LOG"]).exists() and not outdir.exists(), "refused before terraform and synth"


def test_prod_needs_the_pagerduty_url_its_stack_declares(fake, shared_outdir: Path) -> None:
    """Guards against a plan that stops to prompt for a variable (or, unattended, fails) only Terraform would name:
    after the synth, every variable the stack declares without a default must be set. With it set, prod plans
    (test_deploy_plan_only_never_applies); dev and staging declare no PagerDuty URL (tests/test_stacks.py)."""
    outdir = shared_outdir
    env = {k: v for k, v in script_env({**fake, "CDKTF_OUTDIR": str(outdir)}).items()
           if k != "TF_VAR_pagerduty_integration_url"}  # fmt: skip
    command = ["bash", str(REPO / "scripts" / "deploy.sh"), "prod", "--plan-only"]
    done = subprocess.run(
        command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: TF_VAR_pagerduty_integration_url is not set (prod needs it: PagerDuty integration URL (Amazon "
        "CloudWatch integration) for critical alerts (export TF_VAR_pagerduty_integration_url).)"
    )
    assert calls(fake, outdir) == []


def test_deploy_plan_only_never_applies(fake, shared_outdir: Path) -> None:
    done = run("deploy.sh", "prod", "--plan-only", env={**fake, "CDKTF_OUTDIR": str(shared_outdir)})
    assert done.returncode == 0, done.stderr
    assert not [c for c in calls(fake, shared_outdir) if " apply" in c]


@pytest.mark.parametrize("env_name", ["dev"])
def test_deploy_without_a_terminal_or_approval_applies_nothing(fake, shared_outdir: Path, env_name: str) -> None:
    """Guards the confirmation in every environment, not only prod (dev: a deploy.sh that confirms prod only; prod's
    refusal at a terminal is in test_typed_confirmation_at_a_terminal)."""
    done = run("deploy.sh", env_name, env={**fake, "CDKTF_OUTDIR": str(shared_outdir)})
    assert done.returncode == 1
    assert (
        done.stderr.splitlines()[-1] == f"error: refusing to apply {env_name} without a terminal: pass --auto-approve"
    )
    assert calls(fake, shared_outdir) == [STS, *planned(env_name)]


@pytest.mark.parametrize("script", ["deploy.sh", "destroy.sh"])
def test_deploy_and_destroy_require_the_secret_variables(fake, tmp_path: Path, script: str) -> None:
    """Guards require_secrets in both scripts (cheap: refused before synth): without it, destroy.sh synthesizes and
    runs terraform with the secret variables unset."""
    outdir = tmp_path / "out"
    done = run(script, "dev", "--auto-approve", env={**fake, "CDKTF_OUTDIR": str(outdir)}, secrets=False)
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == "error: TF_VAR_db_password is not set (export it; see README: never put secrets in files)"
    )
    assert not Path(fake["FAKE_TF_LOG"]).exists(), "terraform never ran, not even for its version"
    assert not outdir.exists(), "refused before synth"


def test_scripts_reject_unknown_environments_and_old_terraform(fake, tmp_path: Path) -> None:
    done = run("init.sh", "qa", env=fake)
    assert (done.returncode, done.stderr.strip()) == (
        1,
        "error: unknown environment 'qa': expected one of dev staging prod",
    )
    # 1.10 knows ephemeral variables but not write-only arguments, which the secrets need.
    for old in ("1.6.6", "1.10.5"):
        done = run("init.sh", "dev", env={**fake, "FAKE_TF_VERSION": old})
        assert (done.returncode, done.stderr.strip()) == (1, f"error: terraform {old} is too old (need >= 1.11.0)")


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


@pytest.mark.parametrize(("script", "env_name"), [("init.sh", "staging"), ("deploy.sh", "prod")])
def test_staging_and_prod_are_refused_without_allowed_account_ids(fake, tmp_path, script: str, env_name: str) -> None:
    """Guards against applying production to whatever account the shell's credentials happen to point at."""
    repository_config = {**fake, "ROI_TF_ENVIRONMENTS_DIR": str(REPO / "environments")}
    env = {**repository_config, "CDKTF_OUTDIR": str(tmp_path / "out"), "CI": "true"}
    done = run(script, env_name, "--auto-approve", env=env)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f'error: {env_name} has no allowed_account_ids: add "allowed_account_ids": ["<12-digit account id>"] to '
        f"environments/{env_name}.json, so Terraform refuses any other account (docs/DEPLOYMENT.md)"
    )
    assert calls(fake, tmp_path / "out") == []


def test_destroy_lists_what_protection_keeps_and_destroys_nothing(fake, current_outdir: Path) -> None:
    """Where protection is on (staging here), destroy.sh says exactly which resources Terraform would refuse to
    destroy, and how to destroy on purpose, instead of starting a destroy that fails."""
    repository_config = {**fake, "ROI_TF_ENVIRONMENTS_DIR": str(REPO / "environments")}
    outdir = current_outdir  # the session's synth of the shipped configurations: not synthesized again
    done = run("destroy.sh", "staging", "--auto-approve", env={**repository_config, "CDKTF_OUTDIR": str(outdir)})
    assert done.returncode == 1
    stack = json.loads((outdir / "stacks" / "staging" / "cdk.tf.json").read_text())
    protected = sorted(
        f"{rtype}.{name}"
        for rtype, resources in stack["resource"].items()
        for name, body in resources.items()
        if body.get("lifecycle", {}).get("prevent_destroy")
    )
    listed = sorted(line.split()[0] for line in done.stderr.splitlines() if line.startswith("  aws_"))
    assert listed == protected and len(protected) > 20
    assert f"staging keeps {len(protected)} resources that hold data or audit history" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: nothing was destroyed. To destroy staging on purpose, set")
    assert calls(fake, outdir) == []


def test_destroy_dev_plans_shows_what_goes_and_destroys_only_the_environment_stack(
    fake, shared_outdir: Path, tmp_path: Path
) -> None:
    plan = {"resource_changes": [
        {"address": "aws_db_instance.db", "type": "aws_db_instance", "mode": "managed",
         "change": {"actions": ["delete"]}},
        {"address": "aws_lb.api", "type": "aws_lb", "mode": "managed", "change": {"actions": ["delete"]}},
    ]}  # fmt: skip
    (tmp_path / "destroy.json").write_text(json.dumps(plan))
    env = {**fake, "CDKTF_OUTDIR": str(shared_outdir), "FAKE_TF_DESTROY_JSON": str(tmp_path / "destroy.json")}
    done = run("destroy.sh", "dev", "--auto-approve", env=env)
    assert done.returncode == 0, done.stderr
    assert calls(fake, shared_outdir) == destroyed("dev")
    lines = done.stderr.splitlines()
    start = lines.index("plan: 0 to add, 0 to change, 2 to destroy, 0 to replace")
    assert lines[start + 1] == "!!! DESTROYS aws_db_instance.db: the database (replicas: the copies failover relies on)"


def test_tf_refuses_a_stack_that_was_not_synthesized(fake, tmp_path: Path) -> None:
    """Guards lib.sh's tf() check (cheap: no synth): terraform never runs in a stack directory that synth did not
    write, where an empty configuration would plan to destroy everything in the state."""
    outdir = tmp_path / "out"
    outdir.mkdir()
    code = 'source "$0"; tf "$1" plan -input=false; echo "tf returned"'
    argv = ["bash", "-c", code, str(REPO / "scripts" / "lib.sh"), "dev"]
    env = script_env({**fake, "CDKTF_OUTDIR": str(outdir)})

    def tf() -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)

    missing = f"error: stack 'dev' was not synthesized ({outdir}/stacks/dev/cdk.tf.json missing)"
    done = tf()  # an empty output directory
    assert (done.returncode, done.stdout, done.stderr.strip()) == (1, "", missing)
    (outdir / "stacks" / "dev").mkdir(parents=True)
    done = tf()  # the stack's directory, without its cdk.tf.json
    assert (done.returncode, done.stdout, done.stderr.strip()) == (1, "", missing)
    assert not Path(fake["FAKE_TF_LOG"]).exists()

    # Negative control: once synthesized, tf runs terraform in the stack's directory with the arguments given.
    (outdir / "stacks" / "dev" / "cdk.tf.json").write_text("{}\n")
    done = tf()
    assert (done.returncode, done.stdout) == (0, "tf returned\n"), done.stderr
    assert calls(fake, outdir) == ["@dev plan -input=false"]


def test_registry_targets_are_one_target_argument_per_line_or_the_script_dies(stacks, tmp_path: Path) -> None:
    """Guards deploy.sh --registries-only (cheap: no synth): each line one '-target=ADDRESS' argument, and a lookup
    that fails or finds nothing stops the script instead of becoming an untargeted plan of the whole stack."""
    from roi_tf.tools.stackinfo import artifact_targets

    stack_file = tmp_path / "out" / "stacks" / "dev" / "cdk.tf.json"
    stack_file.parent.mkdir(parents=True)

    def registry_targets(stack: dict, prelude: str = "") -> subprocess.CompletedProcess[str]:
        stack_file.write_text(json.dumps(stack))
        code = f'source "$0"; {prelude} found="$(registry_targets dev)" || exit 1; printf "%s\\n" "$found"'
        return subprocess.run(
            ["bash", "-c", code, str(REPO / "scripts" / "lib.sh")],
            env=script_env({"CDKTF_OUTDIR": str(tmp_path / "out")}),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    good = stacks["dev"].json
    done = registry_targets(good)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [f"-target={address}" for address in artifact_targets(good)] and len(lines) > 4
    assert all(re.fullmatch(r"-target=aws_[a-z0-9_]+\.[A-Za-z0-9_]+", line) for line in lines), lines

    broken = json.loads(json.dumps(good))
    broken["output"]["artifacts_bucket_name"]["value"] = "roi-systems-dev-artifacts"
    done = registry_targets(broken)
    assert (done.returncode, done.stdout) == (1, ""), done.stdout
    assert "artifacts_bucket_name does not name a resource" in done.stderr
    assert done.stderr.strip().endswith("error: could not list the artifact stores of dev's stack (see above)")

    done = registry_targets(good, prelude="artifact_targets() { :; };")
    assert (done.returncode, done.stdout, done.stderr.strip()) == (
        1,
        "",
        "error: no artifact stores found in dev's stack",
    )


# --- a failed synth stops the scripts -----------------------------------------------------------


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("script", ["init.sh", "deploy.sh", "destroy.sh"])
@pytest.mark.parametrize("how", ["outdir-parent-is-a-file", "stale-output-and-tmpdir-deleted"])
def test_a_failed_synth_stops_the_script_before_terraform(fake, tmp_path: Path, script: str, how: str) -> None:
    """Guards `set -e` around synth: if main.py fails, the script must stop there, not run terraform on whatever
    an earlier synth left in the output directory (here: stale stacks that would pass tf's cdk.tf.json check)."""
    if how == "outdir-parent-is-a-file":
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("a regular file\n")
        outdir, extra_env = blocker / "cdktf.out", {}
    else:
        # A real failure half-way through synthesis: the jsii node kernel cannot unpack cdktf into $TMPDIR.
        outdir, extra_env = tmp_path / "cdktf.out", {"TMPDIR": str(tmp_path / "deleted-tmp")}
        for stack in ("dev", "state-dev"):
            (outdir / "stacks" / stack).mkdir(parents=True)
            (outdir / "stacks" / stack / "cdk.tf.json").write_text('{"stale": true}\n')
    before = tree(outdir) if outdir.is_dir() else {}

    done = run(script, "dev", "--auto-approve", env={**fake, "CDKTF_OUTDIR": str(outdir), **extra_env})

    assert done.returncode == 1, done.stderr
    assert Path(fake["FAKE_TF_LOG"]).read_text().splitlines() == ["version -json"], "terraform ran only for its version"
    assert "error: synthesis failed: " in done.stderr
    assert done.stderr.splitlines()[-1] == f"{outdir} left unchanged (set ROI_TF_DEBUG=1 for the traceback)"
    assert (tree(outdir) if outdir.is_dir() else {}) == before


# --- typed confirmation through a real terminal -------------------------------------------------


def run_in_terminal(
    argv: list[str], answer: str, prompt: str, env: dict[str, str], timeout: float = 300
) -> tuple[int, str, bool]:
    """Run argv with a pseudo-terminal as stdin/stdout/stderr, type ``answer`` once ``prompt`` appears.

    Returns (exit code, everything the terminal showed with CRLF as LF, whether the prompt was answered).
    """
    master, slave = os.openpty()
    try:
        process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    output, answered = b"", False
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout} s; the terminal showed:\n{output.decode()}")
            ready, _, _ = select.select([master], [], [], min(remaining, 1.0))
            if not ready:
                if process.poll() is not None:
                    break  # exited, and nothing is left to read (a grandchild may still hold the terminal)
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError as error:  # Linux: EIO once every holder of the terminal has closed it
                if error.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            output += chunk
            if not answered and prompt.encode() in output:
                os.write(master, answer.encode() + b"\n")
                answered = True
        returncode = process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        os.close(master)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return returncode, output.decode(errors="replace").replace("\r\n", "\n"), answered


@pytest.mark.parametrize(
    ("env_name", "action", "answer", "confirmed"),
    [
        ("prod", "apply", "prod", True),
        ("prod", "apply", "dev", False),
        ("prod", "apply", "Prod", False),
        ("prod", "apply", "", False),
        ("prod", "apply", "prod-yes", False),
        ("prod", "destroy", "yes", False),
        ("dev", "destroy", "dev", True),
        ("dev", "destroy", "y", False),
    ],
)
def test_confirm_accepts_only_the_environment_name(env_name: str, action: str, answer: str, confirmed: bool) -> None:
    """Guards lib.sh's confirm itself (cheap: no synth): only the exact environment name goes through."""
    prompt = f"Type '{env_name}' to {action} the {env_name} environment: "
    code = 'source "$0"; confirm "$1" "$2"; echo "confirm returned"'
    argv = ["bash", "-c", code, str(REPO / "scripts" / "lib.sh"), env_name, action]

    returncode, shown, answered = run_in_terminal(argv, answer, prompt, script_env({}), timeout=60)

    assert answered, shown
    if confirmed:
        assert (returncode, shown.splitlines()[-1]) == (0, "confirm returned"), shown
    else:
        assert returncode == 1, shown
        assert shown.splitlines()[-1] == "error: not confirmed; nothing was changed"
        assert "confirm returned" not in shown


@pytest.mark.parametrize(
    ("given", "answer", "outcome"),
    [
        ("", "prod", (0, "confirmed")),
        ("", "Prod", (1, "error: not confirmed; nothing was changed")),
        ("", "", (1, "error: not confirmed; nothing was changed")),
        ("prod", None, (0, "confirmed")),
        ("staging", None, (1, "error: --confirm 'staging' does not name prod; nothing was changed")),
    ],
    ids=["typed", "typed-other-case", "typed-nothing", "given", "given-other"],
)
def test_confirm_named_takes_the_name_given_or_typed(given: str, answer: str | None, outcome) -> None:
    """Guards lib.sh's confirm_named, the gate of failover.sh and failback.sh (cheap: no synth): --confirm <env>, or
    the exact name typed at a terminal."""
    prompt = "Type 'prod' to swap the regions: "
    code = 'source "$0"; confirm_named prod "$1" "swap the regions of prod" "swap the regions"; echo confirmed'
    argv = ["bash", "-c", code, str(REPO / "scripts" / "lib.sh"), given]
    if answer is None:  # no terminal needed: the name was given
        done = subprocess.run(argv, env=script_env({}), capture_output=True, text=True, timeout=60, check=False)
        returncode, shown = done.returncode, done.stdout + done.stderr
    else:
        returncode, shown, answered = run_in_terminal(argv, answer, prompt, script_env({}), timeout=60)
        assert answered, shown
    assert (returncode, shown.strip().splitlines()[-1]) == outcome, shown


@pytest.mark.parametrize(
    ("args", "answer", "expected_calls"),
    [
        pytest.param(
            ("deploy.sh", "prod"),
            "dev",
            [STS, *planned("prod")],
            id="deploy-prod-answered-dev",
        ),
        pytest.param(
            ("destroy.sh", "staging"),
            "staging",
            destroyed("staging"),
            id="destroy-staging-answered-staging",
        ),
    ],
)
def test_typed_confirmation_at_a_terminal(
    fake, shared_outdir: Path, args: tuple[str, ...], answer: str, expected_calls: list[str]
) -> None:
    """Guards the human gate end to end: at a real terminal, deploy/destroy wait for the typed environment name;
    a wrong answer changes nothing, the right one destroys only that stack. (Each case synthesizes every stack,
    ~6 s: the answers themselves are covered without synth by test_confirm_accepts_only_the_environment_name, and
    applying exactly the saved plan by test_deploy_plans_to_a_file_and_applies_exactly_that_plan.)"""
    script, env_name = args[0], args[1]
    action = "apply" if script == "deploy.sh" else "destroy"
    prompt = f"Type '{env_name}' to {action} the {env_name} environment: "
    argv = ["bash", str(REPO / "scripts" / script), *args[1:]]
    env = script_env({**fake, "CDKTF_OUTDIR": str(shared_outdir), "FAKE_AWS_ACCOUNT": ACCOUNTS.get(env_name, "")})

    returncode, shown, answered = run_in_terminal(argv, answer, prompt, env)

    assert answered, shown
    assert calls(fake, shared_outdir) == expected_calls
    if answer == env_name:
        assert returncode == 0, shown
        assert "not confirmed" not in shown
    else:
        assert returncode == 1, shown
        assert shown.splitlines()[-1] == "error: not confirmed; nothing was changed"


def test_the_runners_own_environment_does_not_reach_the_scripts(monkeypatch) -> None:
    # CI machines export CI=true: a script run that inherited it would let prod's --auto-approve through.
    assert {"CI", "CDKTF_OUTDIR", "TERRAFORM", "AWS", "CURL"} <= SCRIPT_INPUTS
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("TF_VAR_db_password", "from-the-runner")
    environment = script_env({}, secrets=False)
    assert "CI" not in environment and "TF_VAR_db_password" not in environment
    assert script_env({"CI": "true"}, secrets=False)["CI"] == "true"


# --- failover.sh ------------------------------------------------------------------------------------------------

DR_REGION, REPLICA = "us-west-2", "roi-systems-prod-postgres-dr"
LAG = (
    f"aws cloudwatch get-metric-statistics --region {DR_REGION} --namespace AWS/RDS --metric-name ReplicaLag "
    f"--dimensions Name=DBInstanceIdentifier,Value={REPLICA} --statistics Maximum --period 60"
)
PROMOTED = [
    f"aws rds promote-read-replica --region {DR_REGION} --db-instance-identifier {REPLICA} "
    "--backup-retention-period 30",
    f"aws rds wait db-instance-available --region {DR_REGION} --db-instance-identifier {REPLICA}",
]
FAILED_OVER = [
    "@prod init -reconfigure -input=false",
    "@prod plan -refresh=false -input=false -out=failover.tfplan",  # + one -target= per DR resource
    "@prod apply -input=false failover.tfplan",
    f"aws rds describe-db-instances --region {DR_REGION} --db-instance-identifier {REPLICA} --query "
    "DBInstances[0].[DBInstanceStatus,ReadReplicaSourceDBInstanceIdentifier] --output text",
    f"aws rds describe-db-proxy-targets --region {DR_REGION} --db-proxy-name {REPLICA} "
    "--query Targets[].TargetHealth.State --output text",
]


DR_CLUSTER, DR_TASKS = (
    "roi-systems-ENV-dr-cluster",
    "arn:aws:ecs:us-west-2:222222222222:task-definition/roi-systems-ENV",
)
STARTED = [  # prod's counts (api 3, ml 2), on the task definitions Terraform registered in us-west-2 (the outputs)
    f"aws ecs update-service --region {DR_REGION} --cluster {DR_CLUSTER} --service roi-systems-ENV-dr-api "
    f"--task-definition {DR_TASKS}-dr-api:7 --desired-count 3 --query service.serviceName --output text",
    f"aws ecs update-service --region {DR_REGION} --cluster {DR_CLUSTER} --service roi-systems-ENV-dr-ml "
    f"--task-definition {DR_TASKS}-dr-ml:5 --desired-count 2 --query service.serviceName --output text",
    f"aws ecs wait services-stable --region {DR_REGION} --cluster {DR_CLUSTER} --services roi-systems-ENV-dr-api "
    "roi-systems-ENV-dr-ml",
]
# Through CloudFront's API behaviour (prod's cdn.api_path_pattern /api/*): any answer below 500.
ANSWERS = "curl -sS -o /dev/null -w %{http_code} --max-time 10 https://app.example.com/api/"


def dry_started(terraform: str) -> list[str]:
    """Steps 7/8 and 8/8 under --dry-run: the outputs an apply would give stand as <placeholders>."""
    cluster = f"--region {DR_REGION} --cluster <dr_ecs_cluster_name>"
    return [
        f"{terraform} output -json",
        *(f"aws ecs update-service {cluster} --service <dr_{s}_service_name> --task-definition "
          f"<dr_{s}_task_definition_arn> --desired-count {n} --query service.serviceName --output text"
          for s, n in (("api", 3), ("ml", 2))),
        f"aws ecs wait services-stable {cluster} --services <dr_api_service_name> <dr_ml_service_name>",
        "curl -sS -o /dev/null -w %\\{http_code\\} --max-time 10 <cdn_url>/api/",
    ]  # fmt: skip


def failover_env(fake: dict[str, str], outdir: Path, **extra: str) -> dict[str, str]:
    return {**fake, "CDKTF_OUTDIR": str(outdir), "FAKE_AWS_ACCOUNT": ACCOUNTS["prod"],
            "FAKE_DB_STATUS": "available\tNone", **extra}  # fmt: skip


def without_lag_window(lines: list[str]) -> list[str]:
    """The lag query's time window changes every run: cut it off after the period."""
    return [line.split(" --start-time")[0] if line.startswith(LAG) else line for line in lines]


def test_failover_promotes_the_replica_sets_the_switch_and_applies_the_dr_region(
    fake, shared_outdir: Path, tmp_path: Path
) -> None:
    """The happy path: sts, the lag (within the RPO), the promotion and its wait, dr.active set in the environment
    file (only that value), the failed-over stack synthesized on the state's DR copy and initialized there, a plan of
    exactly the DR region's resources without refresh and its apply, the checks of the database and its proxy."""
    environments = write_environments(tmp_path / "environments")
    before = json.loads((environments / "prod.json").read_text())
    env = failover_env(fake, shared_outdir, ROI_TF_ENVIRONMENTS_DIR=str(environments))
    done = run("failover.sh", "prod", "--confirm", "prod", env=env)
    assert done.returncode == 0, done.stderr
    made = without_lag_window(calls(fake, shared_outdir))
    plan = made[5]
    assert [*made[:5], plan.split(" -target=")[0], *made[6:]] == [
        STS, LAG, *PROMOTED, *FAILED_OVER, "@prod output -json", *STARTED, ANSWERS
    ]  # fmt: skip
    assert json.loads((environments / "prod.json").read_text()) == {**before, "dr": {**before["dr"], "active": True}}
    stack = json.loads((shared_outdir / "stacks" / "prod" / "cdk.tf.json").read_text())
    assert stack["terraform"]["backend"]["s3"]["bucket"] == "roi-systems-terraform-state-prod-us-west-2"
    (promoted,) = [b for b in stack["resource"]["aws_db_instance"].values() if b.get("provider") == "aws.dr"]
    assert "replicate_source_db" not in promoted  # the failed-over shape was synthesized and applied
    in_dr = {
        f"{t}.{n}" for t, items in stack["resource"].items() for n, b in items.items() if b.get("provider") == "aws.dr"
    }
    assert set(plan.split(" -target=")[1:]) == in_dr and len(in_dr) > 50
    steps = [line for line in done.stderr.splitlines() if line.startswith("==> ") and "(usually " in line]
    assert [line.split()[1] for line in steps] == [f"{n}/8" for n in range(1, 9)]
    assert "==> https://app.example.com/api/ answers" in done.stderr.splitlines()
    assert done.stderr.rstrip().splitlines()[-1].startswith("==> commit environments/prod.json (dr.active: true)")


@pytest.mark.parametrize(
    ("health", "outcome"),
    [
        ("AVAILABLE", (0, "==> RDS Proxy db-dr reaches its database")),
        ("UNAVAILABLE", (1, "error: RDS Proxy db-dr in us-west-2 reports its database 'UNAVAILABLE', not AVAILABLE")),
        ("", (1, "error: RDS Proxy db-dr in us-west-2 reports its database '', not AVAILABLE")),
    ],
)
def test_the_proxy_check_passes_only_an_available_target(fake, health: str, outcome: tuple[int, str]) -> None:
    """Guards lib.sh's require_proxy_available, failover.sh's last check (cheap: no synth)."""
    code = 'source "$0"; require_proxy_available us-west-2 db-dr; echo "checked"'
    env = script_env({**fake, "FAKE_PROXY_HEALTH": health})
    argv = ["bash", "-c", code, str(REPO / "scripts" / "lib.sh")]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr.strip().splitlines()[-1][: len(outcome[1])]) == outcome
    assert done.stdout == ("checked\n" if outcome[0] == 0 else "")
    assert Path(fake["FAKE_TF_LOG"]).read_text().splitlines() == [
        "aws rds describe-db-proxy-targets --region us-west-2 --db-proxy-name db-dr "
        "--query Targets[].TargetHealth.State --output text"
    ]


@pytest.mark.parametrize(
    ("env_name", "flags", "extra", "error", "calls_made"),
    [
        ("staging", ("--confirm", "staging"), {}, "staging is not a production environment", []),
        ("prod", ("--confirm", "prod"), {"FAKE_REPLICA_LAG": "900.0"},
         "the replica is 900.0 s behind, more than the RPO of 300 s", [STS, LAG]),
        ("prod", ("--confirm", "prod"), {"FAKE_REPLICA_LAG": "None"}, "the replica's lag over the last 10 minutes "
         "is unknown ('None')", [STS, LAG]),
        ("prod", (), {}, "refusing to fail prod over without a confirmation", [STS, LAG]),
        # --accept-data-loss passes the lag gate (above the RPO, or unknown), and still asks.
        ("prod", ("--accept-data-loss", "--confirm", "x"), {"FAKE_REPLICA_LAG": "900.0"},
         "--confirm 'x' does not name prod", [STS, LAG]),
        ("prod", ("--accept-data-loss",), {"FAKE_REPLICA_LAG": "None"},
         "refusing to fail prod over without a confirmation", [STS, LAG]),
    ],
    ids=["not-prod", "replica-behind", "lag-unknown", "no-confirmation", "behind-accepted-wrong-confirmation",
         "unknown-accepted-still-asks"],
)  # fmt: skip
def test_failover_refuses_and_changes_nothing(
    fake,
    shared_outdir: Path,
    env_name: str,
    flags: tuple[str, ...],
    extra: dict[str, str],
    error: str,
    calls_made: list[str],
) -> None:
    done = run("failover.sh", env_name, *flags, env=failover_env(fake, shared_outdir, **extra))
    assert done.returncode == 1
    assert error in done.stderr.splitlines()[-1]
    assert without_lag_window(calls(fake, shared_outdir)) == calls_made  # never a promotion, never an init


def test_failover_refuses_without_a_deploys_inputs_and_changes_nothing(fake, shared_outdir: Path) -> None:
    """The plan needs every input a deploy needs: the secrets, and the last deployment's images and package, which
    the DR region's services and function run. Missing, nothing is asked of AWS."""
    done = run("failover.sh", "prod", "--confirm", "prod", env=failover_env(fake, shared_outdir), secrets=False)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith("error: TF_VAR_api_image_tag is not set (prod needs it")
    assert calls(fake, shared_outdir) == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        # prod without its dr section is refused by the configuration itself, before anything runs.
        (lambda d: d.pop("dr"), "error: could not read prod's configuration (the problems are above)"),
        (lambda d: d.update(allowed_account_ids=[]), "error: prod has no allowed_account_ids"),
    ],
    ids=["no-pilot-light", "no-allowed-accounts"],
)
def test_failover_refuses_a_prod_it_cannot_trust(fake, shared_outdir: Path, tmp_path: Path, change, error) -> None:
    environments = write_environments(tmp_path / "environments")
    prod = environments / "prod.json"
    data = json.loads(prod.read_text())
    change(data)
    prod.write_text(json.dumps(data))
    env = failover_env(fake, shared_outdir, ROI_TF_ENVIRONMENTS_DIR=str(environments))
    done = run("failover.sh", "prod", "--confirm", "prod", env=env, secrets=False)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(error)
    assert calls(fake, shared_outdir) == []


def test_failover_resumes_at_step_4_once_the_switch_is_set(fake, shared_outdir: Path, tmp_path: Path) -> None:
    """A run that stopped after the switch (a failed apply): no lag check, promotion or switch again; the promoted
    database is checked before anything is applied (dry run: the synth is printed, not run)."""
    environments = write_environments(tmp_path / "environments")
    prod = json.loads((environments / "prod.json").read_text())
    prod["dr"]["active"] = True
    (environments / "prod.json").write_text(json.dumps(prod))
    env = failover_env(fake, shared_outdir, ROI_TF_ENVIRONMENTS_DIR=str(environments))
    done = run("failover.sh", "prod", "--dry-run", env=env, secrets=False)
    assert done.returncode == 0, done.stderr
    printed = [line[2:] for line in done.stderr.splitlines() if line.startswith("+ ")]
    terraform = f"terraform -chdir={shared_outdir}/stacks/prod"
    check = FAILED_OVER[3].removeprefix("aws ")
    assert printed == [
        f"python {REPO}/main.py --env prod --state dr --outdir {shared_outdir} --environments-dir {environments}",
        f"{terraform} init -reconfigure -input=false", STS, f"aws {check}",
        f"{terraform} plan -refresh=false -input=false -out=failover.tfplan "
        "-target=\\<every\\ resource\\ of\\ the\\ stack\\ in\\ us-west-2:\\ stackinfo\\ dr-targets\\>",
        f"{terraform} apply -input=false failover.tfplan", f"aws {check}", FAILED_OVER[4], *dry_started(terraform),
    ]  # fmt: skip
    steps = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("==> ") and "(usually " in line]
    assert steps == ["4/8", "5/8", "6/8", "7/8", "8/8"]


def run_lib(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Functions of lib.sh on their own (cheap: no synth)."""
    argv = ["bash", "-c", f'source "$0"; {code}', str(REPO / "scripts" / "lib.sh"), *args]
    return subprocess.run(argv, env=script_env(env), capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("wait_exit", "outcome"),
    [
        ("0", (0, "origin https://app.example.com/api/")),
        ("255", (1, "error: the services roi-systems-ENV-dr-api roi-systems-ENV-dr-ml in us-west-2 are not stable")),
    ],
    ids=["stable", "not-stable"],
)
def test_step_7_starts_the_dr_services_at_the_configured_counts(fake, tmp_path: Path, wait_exit, outcome) -> None:
    """Guards lib.sh's start_standby_services: from the applied stack's outputs, each DR service on the task
    definition Terraform registered there at prod's count, then the wait for both; it names what step 8/8 tries."""
    (tmp_path / "out" / "stacks" / "prod").mkdir(parents=True)
    (tmp_path / "out" / "stacks" / "prod" / "cdk.tf.json").write_text("{}")
    env = {**fake, "CDKTF_OUTDIR": str(tmp_path / "out"), "FAKE_ECS_WAIT_EXIT": wait_exit}
    done = run_lib('start_standby_services prod; printf "%s\\n" "${api_checks[@]}"', env)
    assert (done.returncode, (done.stdout or done.stderr).strip().splitlines()[-1][: len(outcome[1])]) == outcome
    assert calls(fake, tmp_path / "out") == ["@prod output -json", *STARTED]


@pytest.mark.parametrize(
    ("check", "extra", "outcome", "tries"),
    [
        ("origin", {"FAKE_CURL_FAILS": "2"}, (0, "==> https://a.example/api/ answers"), 3),
        ("origin", {"FAKE_CURL_CODE": "404"}, (0, "==> https://a.example/api/ answers"), 1),  # the API answered
        ("origin", {"FAKE_CURL_FAILS": "6"}, (1, "error: https://a.example/api/ does not answer from us-west-2"), 6),
        ("origin", {"FAKE_CURL_FAILS": "6", "FAKE_CURL_FAIL_CODE": "000"}, (1, "error: https://a.example/api/"), 6),
        ("url", {"FAKE_CURL_FAILS": "1"}, (0, "==> https://a.example/api/ answers"), 2),
        ("url", {"FAKE_CURL_FAILS": "6"}, (1, "error: https://a.example/api/ does not answer from us-west-2"), 6),
    ],
    ids=["5xx-then-answers", "404-is-an-answer", "always-5xx", "never-connects", "health-ok", "health-never"],
)  # fmt: skip
def test_step_8_sees_the_api_answer_below_500_through_cloudfront(fake, check, extra, outcome, tries) -> None:
    """Guards lib.sh's check_api_answers: through CloudFront any status below 500 is the API's answer (502-504 are
    CloudFront's own, when its origin does not answer), tried 6 times with backoff; at the API's own name, 2xx."""
    done = run_lib(f'api_checks=("{check} https://a.example/api/"); check_api_answers us-west-2', {**fake, **extra})
    assert (done.returncode, done.stderr.strip().splitlines()[-1][: len(outcome[1])]) == outcome
    made = Path(fake["FAKE_TF_LOG"]).read_text().splitlines()
    flags = "-sS -o /dev/null -w %{http_code}" if check == "origin" else "-fsS -o /dev/null"
    assert made == [f"curl {flags} --max-time 10 https://a.example/api/"] * tries


@pytest.mark.parametrize(
    ("described", "status", "outcome"),
    [
        ("available\tNone", "", (0, "==> db-dr in us-west-2 is a standalone database (available)")),
        ("modifying\tNone", "", (0, "==> db-dr in us-west-2 is a standalone database (modifying)")),
        ("modifying\tNone", "available", (1, "error: db-dr in us-west-2 is 'modifying', not available")),
        ("available\tdb", "", (1, "error: db-dr in us-west-2 still replicates from 'db'")),
    ],
    ids=["promoted", "promoted-modifying", "not-yet-available", "still-a-replica"],
)
def test_the_promotion_check_passes_only_a_standalone_database(fake, described, status, outcome) -> None:
    """Guards lib.sh's require_promoted: failover.sh's resume check and its last check (cheap: no synth)."""
    code = 'source "$0"; require_promoted us-west-2 db-dr "$1"; echo "checked"'
    env = script_env({**fake, "FAKE_DB_STATUS": described})
    argv = ["bash", "-c", code, str(REPO / "scripts" / "lib.sh"), status]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr.strip().splitlines()[-1][: len(outcome[1])]) == outcome
    assert done.stdout == ("checked\n" if outcome[0] == 0 else "")


def test_failover_dry_run_prints_every_step_and_runs_nothing(fake, shared_outdir: Path) -> None:
    before = (shared_outdir / "stacks" / "prod" / "cdk.tf.json").read_bytes()
    done = run("failover.sh", "prod", "--dry-run", env=failover_env(fake, shared_outdir), secrets=False)
    assert done.returncode == 0, done.stderr
    assert calls(fake, shared_outdir) == []
    printed = [line[2:] for line in done.stderr.splitlines() if line.startswith("+ ")]
    terraform = f"terraform -chdir={shared_outdir}/stacks/prod"
    assert [line.split(" --start-time")[0] for line in printed] == [
        STS, LAG, *PROMOTED,
        f"stackinfo set-dr {fake['ROI_TF_ENVIRONMENTS_DIR']} prod active=true",
        f"python {REPO}/main.py --env prod --state dr --outdir {shared_outdir} --environments-dir "
        f"{fake['ROI_TF_ENVIRONMENTS_DIR']}",
        f"{terraform} init -reconfigure -input=false",
        f"{terraform} plan -refresh=false -input=false -out=failover.tfplan "
        "-target=\\<every\\ resource\\ of\\ the\\ stack\\ in\\ us-west-2:\\ stackinfo\\ dr-targets\\>",
        f"{terraform} apply -input=false failover.tfplan", *FAILED_OVER[3:], *dry_started(terraform),
    ]  # fmt: skip
    assert (shared_outdir / "stacks" / "prod" / "cdk.tf.json").read_bytes() == before
    assert "active" not in json.loads((Path(fake["ROI_TF_ENVIRONMENTS_DIR"]) / "prod.json").read_text())["dr"]


def documented_steps(script: str, heading: str, end: str) -> tuple[list[str], list[tuple[str, str]], str]:
    """(the steps a runbook script announces, the (step, minutes) rows of its table in docs/DEPLOYMENT.md under
    ``heading``, that section's text)."""
    source = (REPO / "scripts" / script).read_text()
    announced = sorted(set(re.findall(r'^\s*step "(\d+/\d+) ', source, flags=re.MULTILINE)))
    docs = (REPO / "docs" / "DEPLOYMENT.md").read_text()
    section = docs.split(heading, 1)[1].split(end, 1)[0]
    return announced, re.findall(r"^\| (\d+/\d+) \| .* \| (\d+) \|$", section, flags=re.MULTILINE), section


def test_the_documented_failover_steps_are_the_scripts_and_add_up() -> None:
    """docs/DEPLOYMENT.md's table names each step failover.sh announces, and its total is the sum of the rows."""
    heading = "### Failing over: `scripts/failover.sh prod`"
    announced, rows, section = documented_steps("failover.sh", heading, "\n### ")
    (total,) = re.findall(r"^\| \| \*\*in total\*\* \| \*\*(\d+)\*\* \|$", section, flags=re.MULTILINE)
    assert [step for step, _ in rows] == announced == [f"{n}/8" for n in range(1, 9)]
    assert sum(int(minutes) for _, minutes in rows) == int(total) <= 60


# --- failback.sh ------------------------------------------------------------------------------------------------

STATE, COPY = (
    "s3://roi-systems-terraform-state-prod/prod/terraform.tfstate",
    ("s3://roi-systems-terraform-state-prod-us-west-2/prod/terraform.tfstate"),
)


def state(serial: int, lineage: str = "b7c1") -> str:
    return json.dumps({"version": 4, "serial": serial, "lineage": lineage, "resources": [{"serial": serial}]})


def failback(fake, outdir: Path, tmp_path: Path, dr: str | None, primary: str | None, *flags: str, **extra: str):
    """failback.sh prod with the two state objects in a fake S3 (None: the object is missing)."""
    s3 = tmp_path / "s3"
    for url, text in ((COPY, dr), (STATE, primary)):
        if text is not None:
            path = s3 / url.removeprefix("s3://")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    env = {**fake, "CDKTF_OUTDIR": str(outdir), "FAKE_AWS_ACCOUNT": ACCOUNTS["prod"], "FAKE_S3": str(s3), **extra}
    done = run("failback.sh", "prod", *flags, env=env, secrets=False)
    return done, (s3 / STATE.removeprefix("s3://"))


def reads(tmp_path: Path) -> list[str]:
    return [
        f"aws s3 cp --region us-west-2 {COPY} {{work}}/dr.tfstate --only-show-errors",
        f"aws s3 cp --region us-east-1 {STATE} {{work}}/primary.tfstate --only-show-errors",
    ]


def without_workdir(lines: list[str]) -> list[str]:
    return [re.sub(r" /tmp/[^ ]+/(dr|primary)\.tfstate", r" {work}/\1.tfstate", line) for line in lines]


def test_failback_copies_a_newer_dr_copy_back_with_its_digest(fake, shared_outdir: Path, tmp_path: Path) -> None:
    newer = state(12)
    done, primary = failback(fake, shared_outdir, tmp_path, newer, state(9), "--confirm", "prod")
    assert done.returncode == 0, done.stderr
    assert primary.read_text() == newer
    md5 = hashlib.md5(newer.encode()).hexdigest()  # noqa: S324
    assert without_workdir(calls(fake, shared_outdir)) == [
        STS, *reads(tmp_path),
        f"aws s3 cp --region us-east-1 {{work}}/dr.tfstate {STATE} --sse aws:kms --sse-kms-key-id "
        "alias/roi-systems-prod-tfstate --only-show-errors",
        "aws dynamodb put-item --region us-east-1 --table-name roi-systems-terraform-locks-prod --item "
        '{"LockID": {"S": "roi-systems-terraform-state-prod/prod/terraform.tfstate-md5"}, '
        f'"Digest": {{"S": "{md5}"}}}}',
        "@prod init -reconfigure -input=false",
    ]  # fmt: skip
    backend = json.loads((shared_outdir / "stacks" / "prod" / "cdk.tf.json").read_text())["terraform"]["backend"]
    assert backend["s3"]["bucket"] == "roi-systems-terraform-state-prod"  # the primary bucket again
    steps = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("==> ") and "(usually " in line]
    assert steps == ["1/3", "2/3", "3/3"]


@pytest.mark.parametrize(
    ("dr", "primary", "said"),
    [(state(9), state(9), "both regions hold the same state: nothing to copy"),
     (state(8), state(9), "the state in us-east-1 is the newer one")],
    ids=["same", "primary-newer"],
)  # fmt: skip
def test_failback_copies_nothing_when_the_copy_is_not_newer(fake, shared_outdir, tmp_path, dr, primary, said) -> None:
    done, written = failback(fake, shared_outdir, tmp_path, dr, primary)  # no confirmation needed
    assert done.returncode == 0, done.stderr
    assert said in done.stderr and written.read_text() == primary
    assert without_workdir(calls(fake, shared_outdir)) == [
        STS,
        *reads(tmp_path),
        "@prod init -reconfigure -input=false",
    ]


@pytest.mark.parametrize(
    ("dr", "primary", "flags", "error"),
    [
        (state(12, "other"), state(9), ("--confirm", "prod"), "the copies are not one state"),
        (state(9) + " ", state(9).replace('"resources": [{"serial": 9}]', '"resources": []'), ("--confirm", "prod"),
         "both copies have serial 9 but differ"),
        (state(12), None, ("--confirm", "prod"), "could not read the state in us-east-1"),
        (None, state(9), ("--confirm", "prod"), "could not read the state's copy in us-west-2"),
        (state(12), state(9), (), "refusing to overwrite prod's state in us-east-1 without a confirmation"),
        (state(12), state(9), ("--confirm", "staging"), "--confirm 'staging' does not name prod"),
    ],
    ids=["other-lineage", "same-serial-different", "primary-unreadable", "copy-missing", "no-confirmation",
         "wrong-confirmation"],
)  # fmt: skip
def test_failback_refuses_and_changes_nothing(fake, shared_outdir, tmp_path, dr, primary, flags, error) -> None:
    done, written = failback(fake, shared_outdir, tmp_path, dr, primary, *flags)
    assert done.returncode == 1
    *_, reason, last = done.stderr.splitlines()
    assert error in last or (error in reason and "cannot be ordered" in last)
    assert "nothing was changed" in last
    assert (written.read_text() if written.exists() else None) == primary
    made = calls(fake, shared_outdir)
    # No upload (a local file copied to s3://), no digest, no init.
    assert not [line for line in made if "put-item" in line or " init " in line or "tfstate s3://" in line]


def test_failback_says_how_to_finish_when_the_digest_cannot_be_written(fake, shared_outdir, tmp_path) -> None:
    newer = state(12)
    done, primary = failback(
        fake, shared_outdir, tmp_path, newer, state(9), "--confirm", "prod", FAKE_PUT_ITEM_FAILS="1"
    )
    assert done.returncode == 1
    last = done.stderr.splitlines()[-1]
    assert (
        "the state is back in s3://roi-systems-terraform-state-prod/prod/terraform.tfstate but its digest is not"
        in last
    )
    assert f'"Digest": {{"S": "{hashlib.md5(newer.encode()).hexdigest()}"}}' in last  # noqa: S324 (the command to run)
    assert primary.read_text() == newer and not [line for line in calls(fake, shared_outdir) if " init " in line]


def test_failback_refuses_an_environment_without_a_state_copy(fake, shared_outdir, tmp_path) -> None:
    done = run("failback.sh", "staging", env={**fake, "CDKTF_OUTDIR": str(shared_outdir)}, secrets=False)
    assert done.returncode == 1 and "staging is not a production environment" in done.stderr.splitlines()[-1]
    assert calls(fake, shared_outdir) == []


def test_failback_dry_run_prints_every_step_and_changes_nothing(fake, shared_outdir, tmp_path) -> None:
    done, written = failback(fake, shared_outdir, tmp_path, state(12), state(9), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert calls(fake, shared_outdir) == [] and written.read_text() == state(9)
    printed = without_workdir([line[2:] for line in done.stderr.splitlines() if line.startswith("+ ")])
    assert [line.split(" ")[:3] for line in printed] == [
        ["aws", "sts", "get-caller-identity"], ["aws", "s3", "cp"], ["aws", "s3", "cp"], ["aws", "s3", "cp"],
        ["aws", "dynamodb", "put-item"], ["terraform", f"-chdir={shared_outdir}/stacks/prod", "init"],
    ]  # fmt: skip


def test_the_documented_failback_steps_are_the_scripts() -> None:
    announced, rows, _ = documented_steps("failback.sh", "### Failing back: `scripts/failback.sh prod`", "\n### ")
    assert [step for step, _ in rows] == announced == ["1/3", "2/3", "3/3"]


# --- failback-database.sh ---------------------------------------------------------------------------------------

PRIMARY_DB = "roi-systems-prod-postgres"


def failing_back_environments(tmp_path: Path, **switches: bool) -> Path:
    """The scripts' environments with prod's dr switches set as the runbooks set them."""
    from roi_tf.tools.stackinfo import set_dr

    environments = write_environments(tmp_path / "environments")
    for switch, value in switches.items():
        set_dr(environments / "prod.json", switch, value)
    return environments


def dry_run_failback_database(fake, outdir: Path, tmp_path: Path, **switches: bool):
    environments = failing_back_environments(tmp_path, **switches)
    scratch = tmp_path / "scratch"  # where the script's mktemp makes its work directory
    scratch.mkdir()
    env = failover_env(fake, outdir, ROI_TF_ENVIRONMENTS_DIR=str(environments), TMPDIR=str(scratch))
    done = run("failback-database.sh", "prod", "--dry-run", env=env, secrets=False)
    # The lag window changes every run; the script's work directory stands as {work}.
    work = re.escape(str(scratch)) + r"/[^/ ]+"
    printed = [re.sub(work, "{work}", re.sub(r" --start-time \S+ --end-time \S+", "", line[2:]))
               for line in done.stderr.splitlines() if line.startswith("+ ")]  # fmt: skip
    steps = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("==> ") and "(usually " in line]
    return done, printed, steps, environments


def describe(region: str, name: str) -> str:
    return (f"aws rds describe-db-instances --region {region} --db-instance-identifier {name} --query "
            "DBInstances[0].[DBInstanceStatus,ReadReplicaSourceDBInstanceIdentifier] --output text")  # fmt: skip


def lag_query(region: str, instance: str) -> str:
    return (f"aws cloudwatch get-metric-statistics --region {region} --namespace AWS/RDS --metric-name ReplicaLag "
            f"--dimensions Name=DBInstanceIdentifier,Value={instance} --statistics Maximum --period 60 "
            "--query max\\(Datapoints\\[\\].Maximum\\) --output text")  # fmt: skip


def shape_switched(terraform: str, environments: Path, outdir: Path, switches: str, stamp: str) -> list[str]:
    """switch_shape, retire_shape under --dry-run: the switches set in a copy of the environments, its synth
    printed, the retirement's commands with placeholders (the file itself changes after the apply)."""
    return [
        f"stackinfo set-dr {{work}}/environments prod {switches}",
        f"python {REPO}/main.py --env prod --outdir {outdir} --environments-dir {{work}}/environments",
        f"{terraform} init -input=false",
        "aws rds deregister-db-proxy-targets --region <region> --db-proxy-name <proxy> --db-instance-identifiers "
        "\\<each\\ instance\\ retired\\ that\\ a\\ proxy\\ targets\\>",
        "aws rds modify-db-instance --region <region> --db-instance-identifier \\<each\\ instance\\ retired\\> "
        f"--new-db-instance-identifier <it>-retired-{stamp} --apply-immediately",
        "aws elasticache delete-replication-group --region <region> --replication-group-id \\<each\\ cache\\ the\\ "
        f"new\\ shape\\ no\\ longer\\ has\\> --final-snapshot-identifier <it>-final-{stamp}",
        f"{terraform} state rm \\<each\\ instance\\ retired\\,\\ and\\ each\\ protected\\ resource\\ the\\ new\\ shape"
        "\\ no\\ longer\\ has\\>",
    ]


def test_failback_database_first_run_replicates_back_dry_run(fake, shared_outdir: Path, tmp_path: Path) -> None:
    """Failed over (dr.active): the state's order, the promoted database checked, the switch, the stale primary
    retired, the whole stack planned and applied, then the wait for the replica to come within the RPO."""
    done, printed, steps, environments = dry_run_failback_database(fake, shared_outdir, tmp_path, active=True)
    assert done.returncode == 0, done.stderr
    assert calls(fake, shared_outdir) == []
    terraform = f"terraform -chdir={shared_outdir}/stacks/prod"
    stamp = re.search(r"-retired-(\d{12}) ", done.stderr)[1]
    assert printed[0] == f"python {REPO}/main.py --env prod --outdir {shared_outdir} --environments-dir {environments}"
    assert without_workdir(printed[1:]) == [
        STS, *reads(tmp_path),
        describe("us-west-2", REPLICA),
        *shape_switched(terraform, environments, shared_outdir, "failback_replica=true", stamp),
        f"{terraform} plan -input=false -out=failback-replica.tfplan",
        f"{terraform} apply -input=false failback-replica.tfplan",
        f"stackinfo set-dr {environments} prod failback_replica=true",
        lag_query("us-east-1", PRIMARY_DB),
    ]  # fmt: skip
    assert steps == [f"{n}/10" for n in range(1, 6)]
    assert "failback_replica" not in json.loads((environments / "prod.json").read_text())["dr"]


def test_failback_database_second_run_cuts_over_dry_run(fake, shared_outdir: Path, tmp_path: Path) -> None:
    """dr.failback_replica set: the DR region's writers stopped, the replica caught up to zero, promoted and made
    Multi-AZ, both switches off, the DR database retired, the whole stack planned and applied, deploy.sh's checks."""
    done, printed, steps, environments = dry_run_failback_database(
        fake, shared_outdir, tmp_path, active=True, failback_replica=True
    )
    assert done.returncode == 0, done.stderr
    assert calls(fake, shared_outdir) == []
    terraform = f"terraform -chdir={shared_outdir}/stacks/prod"
    stamp = re.search(r"-retired-(\d{12}) ", done.stderr)[1]
    dr = f"--region {DR_REGION} --cluster <dr_ecs_cluster_name>"
    assert printed[1:] == [
        STS,
        describe("us-east-1", PRIMARY_DB),
        lag_query("us-east-1", PRIMARY_DB),
        f"{terraform} output -json",
        *(f"aws ecs update-service {dr} --service <dr_{s}_service_name> --desired-count 0 --query "
          "service.serviceName --output text" for s in ("api", "ml")),
        f"aws lambda put-function-concurrency --region {DR_REGION} --function-name <dr_event_processor_function_name> "
        "--reserved-concurrent-executions 0",
        f"aws ecs wait services-stable {dr} --services <dr_api_service_name> <dr_ml_service_name>",
        lag_query("us-east-1", PRIMARY_DB),
        f"aws rds promote-read-replica --region us-east-1 --db-instance-identifier {PRIMARY_DB} "
        "--backup-retention-period 30",
        f"aws rds wait db-instance-available --region us-east-1 --db-instance-identifier {PRIMARY_DB}",
        describe("us-east-1", PRIMARY_DB),
        f"aws rds modify-db-instance --region us-east-1 --db-instance-identifier {PRIMARY_DB} --multi-az "
        "--apply-immediately --query DBInstance.DBInstanceStatus --output text",
        *shape_switched(terraform, environments, shared_outdir, "active=false failback_replica=false", stamp),
        f"{terraform} plan -input=false -out=failback.tfplan",
        f"{terraform} apply -input=false failback.tfplan",
        f"stackinfo set-dr {environments} prod active=false failback_replica=false",
        f"{terraform} output -json",
        "curl -fsS -o /dev/null --max-time 10 <cdn_url>/",
        "aws ecs wait services-stable --region us-east-1 --cluster <ecs_cluster_name> --services <api_service_name> "
        "<ml_service_name>",
        "aws cloudwatch describe-alarms --region us-east-1 --alarm-name-prefix roi-systems-prod- --state-value "
        "ALARM --query MetricAlarms[].AlarmName --output text",
        f"aws rds describe-db-instances --region us-east-1 --db-instance-identifier {PRIMARY_DB} --query "
        "DBInstances[0].DBInstanceStatus --output text",
    ]  # fmt: skip
    assert steps == [f"{n}/10" for n in range(6, 11)]


@pytest.mark.parametrize(
    ("script", "switches", "error"),
    [
        ("failback-database.sh", {}, "prod is not failed over (dr.active is false): its database is in us-east-1 "
         "already"),
        # The other way round: no failover (or its resumption) while the database is half way back.
        ("failover.sh", {"active": True, "failback_replica": True}, "prod's database is failing back to us-east-1 "
         "(dr.failback_replica is true): finish that with scripts/failback-database.sh prod first"),
    ],
    ids=["not-failed-over", "failover-while-failing-back"],
)  # fmt: skip
def test_the_runbooks_refuse_a_prod_in_the_wrong_shape(fake, shared_outdir, tmp_path, script, switches, error):
    environments = failing_back_environments(tmp_path, **switches)
    env = failover_env(fake, shared_outdir, ROI_TF_ENVIRONMENTS_DIR=str(environments))
    done = run(script, "prod", "--confirm", "prod", env=env)
    assert done.returncode == 1 and done.stderr.splitlines()[-1] == f"error: {error}"
    assert calls(fake, shared_outdir) == []


def test_retire_databases_renames_and_forgets_exactly_what_the_new_shape_replaces(
    fake, tmp_path: Path, failed_over, failing_back, stacks
) -> None:
    """Guards lib.sh's retire_databases (steps 3/10 and 9/10) on the real shapes: out of the proxy, renamed (log
    exports off) and waited for, the failover's Redis deleted with a final snapshot, then one state rm of what
    stackinfo retire lists and the state still holds; a failed rename stops it before Terraform forgets anything."""
    (tmp_path / "out" / "stacks" / "prod").mkdir(parents=True)
    (tmp_path / "out" / "stacks" / "prod" / "cdk.tf.json").write_text("{}")
    env = {**fake, "CDKTF_OUTDIR": str(tmp_path / "out")}
    code = 'retire_databases prod "$1" "$2" 202611270900; printf "%s\\n" "${retired_instances[@]}"'
    done = run_lib(code, env, str(failed_over.path), str(failing_back.path))
    assert done.returncode == 0, done.stderr
    retired = [f"{PRIMARY_DB}", f"{PRIMARY_DB}-replica-0"]
    assert done.stdout.splitlines() == [f"us-east-1 {name}-retired-202611270900" for name in retired]
    made = calls(fake, tmp_path / "out")
    exports = "--cloudwatch-logs-export-configuration " + '{"DisableLogTypes": ["postgresql", "upgrade"]}'
    from roi_tf.tools.stackinfo import retirements

    forgotten = [arg.split()[0] for kind, arg in retirements(failed_over.json, failing_back.json) if kind == "forget"]
    assert len(forgotten) == 4
    assert [line.replace(exports, "<no exports>") for line in made] == [
        f"aws rds deregister-db-proxy-targets --region us-east-1 --db-proxy-name {PRIMARY_DB} "
        f"--db-instance-identifiers {PRIMARY_DB}",
        *[line for name in retired for line in (
            describe("us-east-1", name),
            f"aws rds modify-db-instance --region us-east-1 --db-instance-identifier {name} "
            f"--new-db-instance-identifier {name}-retired-202611270900 --apply-immediately <no exports> "
            "--query DBInstance.DBInstanceStatus --output text",
            f"aws rds wait db-instance-available --region us-east-1 --db-instance-identifier "
            f"{name}-retired-202611270900")],
        f"@prod state list {' '.join(forgotten)}",
        f"@prod state rm {' '.join(forgotten)}",
    ]  # fmt: skip
    # The cut-over's: the DR database retired the same way, and the Redis the failover made deleted with a final
    # snapshot (its queues), waited for, before Terraform forgets it.
    Path(fake["FAKE_TF_LOG"]).unlink()
    cut_over = run_lib(code, env, str(failing_back.path), str(stacks["prod"].path))
    assert cut_over.returncode == 0, cut_over.stderr
    made = calls(fake, tmp_path / "out")
    redis = "roi-systems-prod-redis-dr"
    assert made[4:7] == [
        f"aws elasticache describe-replication-groups --region us-west-2 --replication-group-id {redis} "
        "--query ReplicationGroups[0].Status --output text",
        f"aws elasticache delete-replication-group --region us-west-2 --replication-group-id {redis} "
        f"--final-snapshot-identifier {redis}-final-202611270900 --query ReplicationGroup.Status --output text",
        f"aws elasticache wait replication-group-deleted --region us-west-2 --replication-group-id {redis}",
    ]
    assert made[0].startswith("aws rds deregister-db-proxy-targets --region us-west-2") and "state rm" in made[-1]
    Path(fake["FAKE_TF_LOG"]).unlink()
    failed = run_lib(code, {**env, "FAKE_MODIFY_FAILS": "1"}, str(failed_over.path), str(failing_back.path))
    assert failed.returncode == 1 and f"could not rename {PRIMARY_DB} in us-east-1" in failed.stderr
    assert not [line for line in calls(fake, tmp_path / "out") if "state rm" in line]


@pytest.mark.parametrize(
    ("extra", "renamed", "removed"),
    [
        # A run that stopped after its renames and state rm: the target is out of the proxy, the instances are
        # under other names, the state holds none of them.
        ({"FAKE_TARGET_GONE": "1", "FAKE_DB_STATUS": "missing", "FAKE_TF_STATE_EMPTY": "1"}, [], False),
        # A run that stopped after its apply began: the new replica stands under the primary's name (left alone),
        # the read replica under its own (the new shape has none: renamed).
        ({"FAKE_DB_STATUS": "creating\tarn:aws:rds:us-west-2:222222222222:db:roi-systems-prod-postgres-dr"},
         [f"{PRIMARY_DB}-replica-0"], True),
    ],
    ids=["retired-already", "new-replica-standing"],
)  # fmt: skip
def test_retire_databases_again_skips_what_an_earlier_run_did(
    fake, tmp_path: Path, failed_over, failing_back, extra: dict[str, str], renamed: list[str], removed: bool
) -> None:
    (tmp_path / "out" / "stacks" / "prod").mkdir(parents=True)
    (tmp_path / "out" / "stacks" / "prod" / "cdk.tf.json").write_text("{}")
    env = {**fake, "CDKTF_OUTDIR": str(tmp_path / "out"), **extra}
    done = run_lib('retire_databases prod "$1" "$2" 202611270900', env, str(failed_over.path), str(failing_back.path))
    assert done.returncode == 0, done.stderr
    made = calls(fake, tmp_path / "out")
    assert [line.split()[6] for line in made if " modify-db-instance " in line] == renamed
    assert bool([line for line in made if " state rm " in line]) is removed


@pytest.mark.parametrize(
    ("lag", "most", "outcome", "polls"),
    [
        ("3.0", "300", (0, f"==> {PRIMARY_DB} in us-east-1 is 3.0 s behind (at most 300 s)"), 1),
        ("0.0", "0", (0, f"==> {PRIMARY_DB} in us-east-1 is 0.0 s behind (at most 0 s)"), 1),
        ("0.5", "0", (1, f"error: {PRIMARY_DB} in us-east-1 did not come within 0 s of its source"), 3),
        ("None", "300", (1, f"error: {PRIMARY_DB} in us-east-1 did not come within 300 s of its source"), 3),
    ],
    ids=["within-the-rpo", "caught-up", "still-behind", "no-data"],
)
def test_wait_replica_lag_waits_for_the_lag_asked(fake, lag, most, outcome, polls) -> None:
    """Guards lib.sh's wait_replica_lag (steps 5/10 and 7/10): the replica's ReplicaLag at most the seconds asked,
    polled until it is; unknown (no data) is never within."""
    env = {**fake, "FAKE_REPLICA_LAG": lag, "LAG_POLLS": "3", "LAG_POLL_SECONDS": "0"}
    done = run_lib(f"wait_replica_lag us-east-1 {PRIMARY_DB} {most}", env)
    assert (done.returncode, done.stderr.strip().splitlines()[-1][: len(outcome[1])]) == outcome
    made = [re.sub(r" --start-time \S+ --end-time \S+", "", line) for line in
            Path(fake["FAKE_TF_LOG"]).read_text().splitlines()]  # fmt: skip
    assert made == [lag_query("us-east-1", PRIMARY_DB).replace("\\", "")] * polls


@pytest.mark.parametrize(("wait_exit", "code"), [("0", 0), ("255", 1)], ids=["stopped", "not-stopped"])
def test_stop_dr_writers_stops_the_services_and_pauses_the_function(fake, tmp_path: Path, wait_exit, code) -> None:
    """Guards lib.sh's stop_dr_writers (step 6/10): from the outputs, both DR services to zero tasks, the DR event
    processor to zero concurrency, then the wait for the services."""
    (tmp_path / "out" / "stacks" / "prod").mkdir(parents=True)
    (tmp_path / "out" / "stacks" / "prod" / "cdk.tf.json").write_text("{}")
    env = {**fake, "CDKTF_OUTDIR": str(tmp_path / "out"), "FAKE_ECS_WAIT_EXIT": wait_exit}
    done = run_lib("read_failover_facts prod; stop_dr_writers prod", env)
    assert done.returncode == code, done.stderr
    dr = f"--region {DR_REGION} --cluster {DR_CLUSTER}"
    assert calls(fake, tmp_path / "out") == [
        "@prod output -json",
        *(f"aws ecs update-service {dr} --service roi-systems-ENV-dr-{s} --desired-count 0 --query "
          "service.serviceName --output text" for s in ("api", "ml")),
        f"aws lambda put-function-concurrency --region {DR_REGION} --function-name roi-systems-ENV-dr-events "
        "--reserved-concurrent-executions 0",
        f"aws ecs wait services-stable {dr} --services roi-systems-ENV-dr-api roi-systems-ENV-dr-ml",
    ]  # fmt: skip
    if code:
        assert "did not stop" in done.stderr.splitlines()[-1]


def test_the_documented_database_failback_steps_are_the_scripts() -> None:
    heading = "### Failing the database back: `scripts/failback-database.sh prod`"
    announced, rows, _ = documented_steps("failback-database.sh", heading, "\n## ")
    assert [step for step, _ in rows] == sorted(announced, key=lambda s: int(s.split("/")[0]))
    assert announced and len(rows) == 10


GLOBAL_ID = "ldgnf-roi-systems-prod-redis"
CACHE_PROMOTION = {
    "describe": f"aws elasticache describe-global-replication-groups --region {DR_REGION} --query "
    "GlobalReplicationGroups[?ends_with(GlobalReplicationGroupId, '-roi-systems-prod-redis')]"
    ".GlobalReplicationGroupId | [0] --output text",
    "failover": f"aws elasticache failover-global-replication-group --region {DR_REGION} --global-replication-group-id "
    f"{GLOBAL_ID} --primary-region {DR_REGION} --primary-replication-group-id roi-systems-prod-redis-dr "
    "--query GlobalReplicationGroup.Status --output text",
    "disassociate": f"aws elasticache disassociate-global-replication-group --region {DR_REGION} "
    f"--global-replication-group-id {GLOBAL_ID} --replication-group-id roi-systems-prod-redis-dr "
    f"--replication-group-region {DR_REGION} --query GlobalReplicationGroup.Status --output text",
    "wait": f"aws elasticache wait replication-group-available --region {DR_REGION} --replication-group-id "
    "roi-systems-prod-redis-dr",
}


@pytest.mark.parametrize(
    ("cache_replica", "extra", "made", "outcome"),
    [
        (False, {}, [], (0, "promoted")),
        (True, {}, ["describe", "failover", "wait"], (0, "promoted")),
        # With us-east-1 down, the global group's failover may fail: the secondary leaves the group instead.
        (True, {"FAKE_GLOBAL_FAILOVER_FAILS": "1"}, ["describe", "failover", "disassociate", "wait"], (0, "promoted")),
        (True, {"FAKE_GLOBAL_FAILOVER_FAILS": "1", "FAKE_DISASSOCIATE_FAILS": "1"},
         ["describe", "failover", "disassociate"], (1, "error: roi-systems-prod-redis-dr in us-west-2 could not be")),
        (True, {"FAKE_GLOBAL_ID": "None"}, ["describe"], (1, "error: no Global Datastore *-roi-systems-prod-redis")),
    ],
    ids=["database-only", "cache-failed-over", "cache-disassociated", "cache-stuck", "no-global-datastore"],
)  # fmt: skip
def test_step_2_promotes_the_database_and_with_a_cache_replica_the_cache(
    fake, tmp_path: Path, cache_replica: bool, extra: dict[str, str], made: list[str], outcome: tuple[int, str]
) -> None:
    """Guards lib.sh's promote_standby_data (failover.sh's step 2/8) from the configuration's facts: the database
    replica promoted and waited for; with dr.cache_replica, the Global Datastore's secondary made writable, by the
    group's failover or, failing that, by leaving the group."""
    environments = write_environments(tmp_path / "environments")
    prod = json.loads((environments / "prod.json").read_text())
    prod["dr"]["cache_replica"] = cache_replica
    (environments / "prod.json").write_text(json.dumps(prod))
    env = {**fake, "ROI_TF_ENVIRONMENTS_DIR": str(environments), **extra}
    done = run_lib("read_failover_facts prod; promote_standby_data; echo promoted", env)
    said = done.stdout if done.returncode == 0 else done.stderr
    assert (done.returncode, said.strip().splitlines()[-1][: len(outcome[1])]) == outcome
    assert Path(fake["FAKE_TF_LOG"]).read_text().splitlines() == [*PROMOTED, *(CACHE_PROMOTION[m] for m in made)]


@pytest.mark.parametrize(
    ("described", "outcome"),
    [
        ("available\tarn:aws:rds:us-west-2:222222222222:db:roi-systems-prod-postgres-dr",
         (0, f"==> {PRIMARY_DB} in us-east-1 replicates from arn:aws:rds:us-west-2:")),
        ("available\tNone", (1, f"==> {PRIMARY_DB} in us-east-1 is not a replica (available)")),
        ("missing", (1, f"==> {PRIMARY_DB} in us-east-1 is not a replica (missing)")),
    ],
    ids=["replica", "still-the-stale-primary", "missing"],
)  # fmt: skip
def test_the_cut_over_starts_only_from_a_replica(fake, described: str, outcome: tuple[int, str]) -> None:
    """Guards lib.sh's is_replicating, the cut-over's first check: a first run that stopped before its apply (the
    stale primary still standalone, or nothing under the name) stops the second before it stops any writer."""
    done = run_lib(f"is_replicating us-east-1 {PRIMARY_DB}", {**fake, "FAKE_DB_STATUS": described})
    assert (done.returncode, done.stderr.strip().splitlines()[-1][: len(outcome[1])]) == outcome


def test_failback_database_promoted_goes_on_at_step_9_dry_run(fake, shared_outdir: Path, tmp_path: Path) -> None:
    """--promoted: a second run stopped after its promotion goes on at step 9/10, once the instance is checked
    standalone and available; no writer is stopped and nothing promoted again."""
    environments = failing_back_environments(tmp_path, active=True, failback_replica=True)
    env = failover_env(fake, shared_outdir, ROI_TF_ENVIRONMENTS_DIR=str(environments))
    done = run("failback-database.sh", "prod", "--promoted", "--dry-run", env=env, secrets=False)
    assert done.returncode == 0, done.stderr
    printed = [line[2:] for line in done.stderr.splitlines() if line.startswith("+ ")]
    assert printed[2] == describe("us-east-1", PRIMARY_DB)
    assert not [line for line in printed if "promote-read-replica" in line or "update-service" in line]
    steps = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("==> ") and "(usually " in line]
    assert steps == ["9/10", "10/10"]


@pytest.fixture(scope="session")
def failing_back_outdir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(environments, output directory): the scripts' environments with prod's dr.active and dr.failback_replica
    set as failback-database.sh sets them, synthesized once in this process and stamped as the scripts stamp their
    synths, so a run of the cut-over needs no synth of its own before its first step."""
    from roi_tf.app import synth
    from roi_tf.config import load_environments
    from roi_tf.tools import fingerprint

    root = tmp_path_factory.mktemp("failing-back")
    environments = failing_back_environments(root, active=True, failback_replica=True)
    outdir = root / "cdktf.out"
    synth(load_environments(["prod"], environments), outdir)
    fingerprint.stamp("prod", fingerprint.digest("prod", environments), outdir)
    return environments, outdir


@pytest.mark.parametrize(
    ("flags", "described", "error"),
    [
        # The first run's replica is not what stands: no writer is stopped, nothing is promoted.
        (("--confirm", "prod"), "available\tNone", f"error: {PRIMARY_DB} in us-east-1 is not a replica. If a second "
         "run stopped after its step 8/10 promoted it: run this again with --promoted"),
        # A replica, but no confirmation: it asks before the writers stop.
        ((), "available\tarn:aws:rds:us-west-2:222222222222:db:roi-systems-prod-postgres-dr",
         "error: refusing to cut prod's database over to us-east-1 without a confirmation"),
        # --promoted where the instance is still a replica: nothing is applied.
        (("--promoted", "--confirm", "prod"), "available\tarn:aws:rds:us-west-2:222222222222:db:x",
         f"error: {PRIMARY_DB} in us-east-1 still replicates from"),
    ],
    ids=["not-a-replica", "no-confirmation", "promoted-but-replicating"],
)  # fmt: skip
def test_the_cut_over_refuses_before_any_writer_stops(
    fake, failing_back_outdir: tuple[Path, Path], tmp_path: Path, flags, described: str, error: str
) -> None:
    environments, presynthesized = failing_back_outdir
    outdir = tmp_path / "cdktf.out"
    shutil.copytree(presynthesized, outdir)
    env = {**failover_env(fake, outdir, ROI_TF_ENVIRONMENTS_DIR=str(environments)), "FAKE_DB_STATUS": described}
    done = run("failback-database.sh", "prod", *flags, env=env)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(error), done.stderr
    assert "synthesizing" not in done.stderr  # the stamped synth was reused
    made = calls(fake, outdir)
    assert made == [STS, describe("us-east-1", PRIMARY_DB)]  # no writer stopped, nothing promoted or applied
