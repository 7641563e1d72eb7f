#!/usr/bin/env bash
# Shared by init.sh, deploy.sh and destroy.sh: environment checks, synth, and terraform per stack.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly ENVIRONMENTS=(dev staging prod)
readonly MIN_TERRAFORM_VERSION="1.11.0" # ephemeral variables in write-only arguments (1.11), S3 lock files (1.10)
readonly MIN_NODE_VERSION="20.0.0"      # cdktf 0.21's jsii runtime
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
readonly ACCOUNT_PINNED_ENVIRONMENTS=(staging prod) # applied only to the accounts their config names
OUTDIR="${CDKTF_OUTDIR:-$ROOT/cdktf.out}"
ENVIRONMENTS_DIR="${ROI_TF_ENVIRONMENTS_DIR:-$ROOT/environments}"
TERRAFORM="${TERRAFORM:-terraform}"
AWS="${AWS:-aws}"
CURL="${CURL:-curl}"

DRY_RUN=false # --dry-run: print every terraform, aws and curl command instead of running it

# x CMD ARGS...: run an external command (terraform, aws, curl), or under --dry-run print it (to stderr) instead.
x() {
  if $DRY_RUN; then
    local arg line="+ ${1##*/}"
    for arg in "${@:2}"; do
      # Quoted only where the shell needs it, so the line reads like the command (and can be pasted).
      if [[ "$arg" =~ ^[][A-Za-z0-9_./:=@,+%\<\>-]+$ ]]; then line+=" $arg"; else line+=" $(printf '%q' "$arg")"; fi
    done
    echo "$line" >&2
    return 0
  fi
  "$@"
}

# dry_run_done: under --dry-run, say that nothing ran, and stop.
dry_run_done() {
  if $DRY_RUN; then
    info "dry run: the commands above were printed, not run"
    exit 0
  fi
}

die() {
  echo "error: $*" >&2
  exit 1
}

info() {
  echo "==> $*" >&2
}

# require_env NAME: NAME must be one of the configured environments.
require_env() {
  local name="${1:-}" e
  [[ -n "$name" ]] || die "missing environment: expected one of ${ENVIRONMENTS[*]}"
  for e in "${ENVIRONMENTS[@]}"; do
    [[ "$name" == "$e" ]] && return 0
  done
  die "unknown environment '$name': expected one of ${ENVIRONMENTS[*]}"
}

version_at_least() { # version_at_least HAVE WANT
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}

require_terraform() {
  command -v "$TERRAFORM" >/dev/null 2>&1 || die "terraform not found on PATH (need >= $MIN_TERRAFORM_VERSION)"
  local have
  have="$("$TERRAFORM" version -json | sed -n 's/.*"terraform_version": *"\([^"]*\)".*/\1/p' | head -n1)"
  [[ -n "$have" ]] || die "could not read the terraform version"
  version_at_least "$have" "$MIN_TERRAFORM_VERSION" || die "terraform $have is too old (need >= $MIN_TERRAFORM_VERSION)"
}

require_secrets() {
  local var
  for var in TF_VAR_db_password TF_VAR_jwt_secret; do
    [[ -n "${!var:-}" ]] || die "$var is not set (export it; see README: never put secrets in files)"
  done
}

# require_deployment_inputs: what to run (CI sets them; docs/DEPLOYMENT.md, "Deploying a new image").
require_deployment_inputs() {
  local var
  for var in TF_VAR_api_image_tag TF_VAR_ml_image_tag TF_VAR_event_processor_code; do
    [[ -n "${!var:-}" ]] || die "$var is not set (the image tag or package to deploy: docs/DEPLOYMENT.md, \"Deploying a new image\")"
  done
}

# require_stack_variables ENV: after synth, every input variable ENV's stack declares without a default is set
# (TF_VAR_<name>): those above, and those only some environments declare (prod's pagerduty_integration_url).
require_stack_variables() {
  local name description
  while IFS=$'\t' read -r name description; do
    [[ -n "$name" ]] || continue
    [[ -n "$(printenv "TF_VAR_$name")" ]] || die "TF_VAR_$name is not set ($1 needs it: $description)"
  done < <("$ROOT/.venv/bin/python" - "$OUTDIR/stacks/$1/cdk.tf.json" <<'PY'
import json, sys
for name, variable in sorted(json.load(open(sys.argv[1])).get("variable", {}).items()):
    if "default" not in variable:
        print(f"{name}\t{variable.get('description', '')}")
PY
  )
}

# require_node: the synth's jsii runtime starts node (JSII_NODE, or node on PATH, as jsii itself does).
require_node() {
  local node="${JSII_NODE:-node}" version
  command -v "$node" >/dev/null 2>&1 ||
    die "node not found ($node): the synth needs Node.js >= $MIN_NODE_VERSION (install it, or set JSII_NODE)"
  version="$("$node" --version)"
  version="${version#v}"
  version_at_least "$version" "$MIN_NODE_VERSION" || die "node $version is too old (need >= $MIN_NODE_VERSION)"
}

ensure_venv() {
  if [[ ! -x "$ROOT/.venv/bin/python" ]]; then
    info "setting up .venv (first run)"
    make -C "$ROOT" venv >&2
  fi
}

# synth ENV: validate ENV's configuration and synthesize its two stacks (state-ENV and ENV), atomically; the other
# environments' stacks in the output directory stay as they were (a broken dev.json never blocks a prod deploy).
# Skipped when ENV's stacks are exactly what its unchanged sources and configuration synthesized (fingerprint.py).
synth() {
  ensure_venv
  require_node
  local fingerprint=("$ROOT/.venv/bin/python" -m roi_tf.tools.fingerprint) inputs
  if "${fingerprint[@]}" fresh "$1" "$ENVIRONMENTS_DIR" "$OUTDIR"; then
    info "$1: stacks in $OUTDIR are up to date (sources and configuration unchanged since their synth)"
    return 0
  fi
  inputs="$("${fingerprint[@]}" digest "$1" "$ENVIRONMENTS_DIR")"
  info "synthesizing $1 into $OUTDIR"
  "$ROOT/.venv/bin/python" "$ROOT/main.py" --env "$1" --outdir "$OUTDIR" --environments-dir "$ENVIRONMENTS_DIR" >&2
  "${fingerprint[@]}" stamp "$1" "$inputs" "$OUTDIR"
}

# stackinfo ARGS...: facts from the configuration or a synthesized stack, without jsii (roi_tf/tools/stackinfo.py).
stackinfo() {
  "$ROOT/.venv/bin/python" -m roi_tf.tools.stackinfo "$@"
}

# artifact_targets ENV: -target= arguments for the image repositories and the artifacts bucket (stackinfo.py).
artifact_targets() {
  stackinfo artifact-targets "$OUTDIR/stacks/$1/cdk.tf.json"
}

# registry_targets ENV: artifact_targets, or die: a failed or empty lookup must never become an untargeted plan
# (the whole stack). Call it as found=$(registry_targets ENV) || exit 1.
registry_targets() {
  local found
  found="$(artifact_targets "$1")" || die "could not list the artifact stores of $1's stack (see above)"
  [[ -n "$found" ]] || die "no artifact stores found in $1's stack"
  printf '%s\n' "$found"
}

# protected_resources ENV: what Terraform refuses to destroy in ENV's synthesized stack (roi_tf/tools/stackinfo.py).
protected_resources() {
  stackinfo protected "$OUTDIR/stacks/$1/cdk.tf.json"
}

# require_allowed_accounts ENV [IDS]: staging and prod name the accounts they may be applied to (checked before
# synth); IDS: those accounts, read already ("-": none), else read from the configuration here.
require_allowed_accounts() {
  local env="$1" pinned ids
  for pinned in "${ACCOUNT_PINNED_ENVIRONMENTS[@]}"; do
    [[ "$env" == "$pinned" ]] || continue
    ensure_venv
    if [[ $# -gt 1 ]]; then ids="${2#-}"; else ids="$(stackinfo allowed-account-ids "$ENVIRONMENTS_DIR" "$env")"; fi
    [[ -n "$ids" ]] ||
      die "$env has no allowed_account_ids: add \"allowed_account_ids\": [\"<12-digit account id>\"] to environments/$env.json, so Terraform refuses any other account (docs/DEPLOYMENT.md)"
  done
}

# tf STACK ARGS...: run terraform in cdktf.out/stacks/STACK.
tf() {
  local stack="$1"
  shift
  local dir="$OUTDIR/stacks/$stack"
  [[ -f "$dir/cdk.tf.json" ]] || die "stack '$stack' was not synthesized ($dir/cdk.tf.json missing)"
  x "$TERRAFORM" -chdir="$dir" "$@"
}

# require_aws ENV: the aws CLI is there, its credentials work, and (where config names them) belong to one of
# ENV's allowed_account_ids. After the synth: it reads them from ENV's stack.
require_aws() {
  local account ids
  command -v "$AWS" >/dev/null 2>&1 || die "aws CLI not found on PATH (needed for the snapshot and the validation)"
  if $DRY_RUN; then
    x "$AWS" sts get-caller-identity --query Account --output text
    return 0
  fi
  account="$("$AWS" sts get-caller-identity --query Account --output text)" ||
    die "aws sts get-caller-identity failed: no valid credentials (aws sso login, or the CI role)"
  # As the synthesized stack's provider enforces them (read without importing roi_tf: this runs on every deploy).
  ids="$("$ROOT/.venv/bin/python" - "$OUTDIR/stacks/$1/cdk.tf.json" <<'PY'
import json, sys
(provider,) = [p for p in json.load(open(sys.argv[1]))["provider"]["aws"] if "alias" not in p]
print(" ".join(provider.get("allowed_account_ids", [])))
PY
  )"
  [[ -z "$ids" || " $ids " == *" $account "* ]] ||
    die "the credentials are for account $account, not one of $1's allowed_account_ids ($ids)"
}

# pre_deploy_snapshot ENV: a manual snapshot of ENV's primary database, waited for (design document: "Manual
# snapshots: before major deployments"); none when the database does not exist yet (first deployment).
pre_deploy_snapshot() {
  local env="$1" stack region db status snapshot
  stack="$OUTDIR/stacks/$env/cdk.tf.json"
  read -r db region < <(stackinfo database "$stack")
  [[ -n "$db" ]] || { info "$env has no database: no snapshot"; return 0; }
  if $DRY_RUN; then
    snapshot="$db-pre-deploy-<UTC-time>"
    x "$AWS" rds describe-db-instances --region "$region" --db-instance-identifier "$db" \
      --query 'DBInstances[0].DBInstanceStatus' --output text
    x "$AWS" rds create-db-snapshot --region "$region" --db-instance-identifier "$db" \
      --db-snapshot-identifier "$snapshot" --output text --query 'DBSnapshot.Status'
    x "$AWS" rds wait db-snapshot-available --region "$region" --db-snapshot-identifier "$snapshot"
    return 0
  fi
  if ! status="$("$AWS" rds describe-db-instances --region "$region" --db-instance-identifier "$db" \
    --query 'DBInstances[0].DBInstanceStatus' --output text 2>&1)"; then
    [[ "$status" == *DBInstanceNotFound* ]] || die "could not read the status of $db: $status"
    info "$db does not exist yet (first deployment): no snapshot to take"
    return 0
  fi
  snapshot="$db-pre-deploy-$(date -u +%Y%m%d-%H%M%S)"
  info "snapshot $snapshot of $db ($status) before the apply: usually 5-20 minutes (--skip-snapshot skips it)"
  "$AWS" rds create-db-snapshot --region "$region" --db-instance-identifier "$db" \
    --db-snapshot-identifier "$snapshot" --output text --query 'DBSnapshot.Status' >&2 ||
    die "the snapshot of $db could not be started: nothing was applied"
  "$AWS" rds wait db-snapshot-available --region "$region" --db-snapshot-identifier "$snapshot" ||
    die "snapshot $snapshot did not become available: nothing was applied (aws rds describe-db-snapshots --db-snapshot-identifier $snapshot)"
  info "snapshot $snapshot available"
}

# validate ENV: after an apply, the design document's validation: the web app (and the API where the internet may
# reach its load balancer) answers, retried with backoff; the ECS services are stable at their desired count; the
# database is available; no alarm of ENV is in ALARM. Each failure says what to look at.
# stack_outputs ENV NAME...: ENV's outputs (terraform output -json; {} when unreadable). Under --dry-run the command
# is printed, not run, and each NAME appears as <NAME> in the commands that use it.
stack_outputs() {
  local env="$1" name json="{"
  shift
  if $DRY_RUN; then
    tf "$env" output -json
    for name in "$@"; do json+="\"$name\": {\"value\": \"<$name>\"},"; done
    echo "${json%,}}"
  else
    tf "$env" output -json || echo "{}"
  fi
}

# answers URL [ANY]: URL answers within ATTEMPTS tries (default 5), backing off between them: with a 2xx or 3xx,
# or with ANY given, with any status below 500 (CloudFront answers 502-504 itself when its origin does not).
answers() {
  local url="$1" any="${2:-}" attempt code attempts="${ATTEMPTS:-5}"
  for ((attempt = 1; attempt <= attempts; attempt++)); do
    if [[ -n "$any" ]]; then
      code="$(x "$CURL" -sS -o /dev/null -w '%{http_code}' --max-time 10 "$url")" || code=000
      $DRY_RUN || [[ "$code" =~ ^[1-4][0-9][0-9]$ ]] && return 0
    else
      x "$CURL" -fsS -o /dev/null --max-time 10 "$url" && return 0
    fi
    [[ "$attempt" == "$attempts" ]] || sleep "$((attempt * attempt * ${VALIDATION_BACKOFF_SECONDS:-5}))"
  done
  return 1
}

validate() {
  local env="$1" stack outputs check argument region="" cluster services failed=0 status alarms db db_region
  stack="$OUTDIR/stacks/$env/cdk.tf.json"
  outputs="$(stack_outputs "$env" cdn_url api_load_balancer_dns_name ecs_cluster_name api_service_name ml_service_name)"
  while read -r check argument; do
    case "$check" in
      region) region="$argument" ;;
      url)
        answers "$argument" ||
          { echo "error: $argument does not answer (CloudFront, the load balancer's targets, the API's logs: docs/DEPLOYMENT.md, Troubleshooting)" >&2; failed=1; }
        ;;
      services)
        read -r cluster services <<<"$argument"
        # shellcheck disable=SC2086 # the service names, one argument each
        x "$AWS" ecs wait services-stable --region "$region" --cluster "$cluster" --services $services ||
          { echo "error: ECS services $services are not stable at their desired count (aws ecs describe-services --cluster $cluster --services $services: events and stopped tasks)" >&2; failed=1; }
        ;;
      alarms)
        alarms="$(x "$AWS" cloudwatch describe-alarms --region "$region" --alarm-name-prefix "$argument" \
          --state-value ALARM --query 'MetricAlarms[].AlarmName' --output text)" ||
          { echo "error: could not read the alarms of $env" >&2; failed=1; }
        [[ -z "$alarms" ]] || { echo "error: in ALARM: $alarms (each alarm's description says what to check first)" >&2; failed=1; }
        ;;
      database)
        # The writable instance and its region: the DR region's once failed over (dr.active).
        read -r db db_region <<<"$argument"
        status="$(x "$AWS" rds describe-db-instances --region "$db_region" --db-instance-identifier "$db" \
          --query 'DBInstances[0].DBInstanceStatus' --output text)" || status="unreadable"
        $DRY_RUN || [[ "$status" == "available" ]] || { echo "error: database $db is $status, not available (RDS console: events of $db)" >&2; failed=1; }
        ;;
      *) echo "error: could not read what to validate from $env's outputs" >&2; failed=1 ;;
    esac
  done < <(stackinfo validation "$ENVIRONMENTS_DIR" "$env" "$stack" <<<"$outputs" || echo "failed -")
  [[ "$failed" == 0 ]] || die "$env was applied but does not validate (see above)"
  $DRY_RUN || info "$env validated: web app answering, services stable, database available, no alarm in ALARM"
}

# start_standby_services ENV: failover.sh's step 7/8. The DR region's services, which stand at zero tasks, started on
# the task definitions Terraform registered there at the configured counts (the services ignore both once created:
# CI deployments and scaling own them); waits until they are stable. Sets api_checks for check_api_answers.
# shellcheck disable=SC2034 # api_checks is read by check_api_answers
start_standby_services() {
  local env="$1" outputs name argument region="" cluster="" service task count services=()
  declare -ga api_checks=()
  outputs="$(stack_outputs "$env" cdn_url dr_ecs_cluster_name dr_api_service_name dr_ml_service_name \
    dr_api_task_definition_arn dr_ml_task_definition_arn)"
  while read -r name argument; do
    case "$name" in
      region) region="$argument" ;;
      cluster) cluster="$argument" ;;
      service)
        read -r service task count <<<"$argument"
        x "$AWS" ecs update-service --region "$region" --cluster "$cluster" --service "$service" \
          --task-definition "$task" --desired-count "$count" --query service.serviceName --output text >&2 ||
          die "could not start $service in $region (aws ecs update-service failed): run this again (it resumes at step 4/8)"
        services+=("$service")
        ;;
      origin | url) api_checks+=("$name $argument") ;;
      *) die "could not read what to start from $env's outputs (terraform output -json in cdktf.out/stacks/$env)" ;;
    esac
  done < <(stackinfo dr-start "$ENVIRONMENTS_DIR" "$env" <<<"$outputs" || echo "failed -")
  [[ ${#services[@]} -gt 0 ]] || die "no services of $env found to start in its DR region"
  x "$AWS" ecs wait services-stable --region "$region" --cluster "$cluster" --services "${services[@]}" ||
    die "the services ${services[*]} in $region are not stable at their counts (aws ecs describe-services --region $region --cluster $cluster --services ${services[*]}: events and stopped tasks)"
}

# check_api_answers REGION: failover.sh's step 8/8. The API answers where its users reach it from REGION (through
# CloudFront, whose origin name Route 53 answers with REGION's load balancer once it has healthy targets; or at its
# own name where the internet may reach it).
check_api_answers() {
  local dr="$1" check name url
  for check in "${api_checks[@]}"; do
    read -r name url <<<"$check"
    if [[ "$name" == origin ]]; then
      ATTEMPTS=6 answers "$url" any ||
        die "$url does not answer from $dr (CloudFront 5xx or nothing): check the Route 53 health checks roi-systems-<env>-*, the target groups' health in $dr and the API's logs there (docs/DEPLOYMENT.md, \"Regional failover\")"
    else
      ATTEMPTS=6 answers "$url" || die "$url does not answer from $dr: the target groups' health and the API's logs there"
    fi
    $DRY_RUN || info "$url answers"
  done
}

# retire_databases ENV CURRENT TARGET STAMP: failback-database.sh's state surgery, before TARGET (a synthesized
# stack) is applied over the state of CURRENT (the stack it replaces): what stackinfo retire lists, in its order.
# Each step can run again after a run that stopped (what is done already is said and skipped).
# Each RDS Proxy target on a retired instance is deregistered; each retired instance is renamed
# <identifier>-retired-STAMP (its data and deletion protection kept, its log exports off: it is deleted by hand) and
# waited for; a Redis TARGET no longer has (the DR region's, made by the failover) is deleted with a final snapshot
# <id>-final-STAMP; then Terraform forgets them and every protected resource TARGET no longer has (terraform state
# rm: Terraform destroys none of them). Sets retired_instances ("<region> <new identifier>" each) and forgotten ("<address>: <what
# it holds>" each) for the closing advice.
retire_databases() {
  local env="$1" current="$2" target="$3" stamp="$4" action rest region name identifier role said addresses=()
  local present=()
  declare -ga retired_instances=() forgotten=()
  while read -r action rest; do
    case "$action" in
      deregister)
        read -r region name identifier <<<"$rest"
        if ! said="$(x "$AWS" rds deregister-db-proxy-targets --region "$region" --db-proxy-name "$name" \
          --db-instance-identifiers "$identifier" 2>&1 >/dev/null)"; then
          [[ "$said" == *DBProxyTargetNotFound* ]] ||
            die "could not take $identifier out of RDS Proxy $name in $region ($said): nothing was renamed or forgotten"
          info "$identifier is no target of RDS Proxy $name any more (an earlier run took it out)"
        fi
        ;;
      rename)
        read -r region name role <<<"$rest" # role: what the new shape makes of the name (absent, replica)
        if ! said="$(x "$AWS" rds describe-db-instances --region "$region" --db-instance-identifier "$name" \
          --query "DBInstances[0].[DBInstanceStatus,ReadReplicaSourceDBInstanceIdentifier]" --output text 2>&1)"; then
          [[ "$said" == *DBInstanceNotFound* ]] || die "could not describe $name in $region ($said)"
          info "no $name in $region any more (an earlier run renamed it): nothing to rename"
          continue
        fi
        if [[ "$role" == replica && "$said" =~ [[:space:]]arn: ]]; then
          info "$name in $region is a replica already (an earlier run's new instance): nothing to rename"
          continue
        fi
        x "$AWS" rds modify-db-instance --region "$region" --db-instance-identifier "$name" \
          --new-db-instance-identifier "$name-retired-$stamp" --apply-immediately \
          --cloudwatch-logs-export-configuration '{"DisableLogTypes": ["postgresql", "upgrade"]}' \
          --query DBInstance.DBInstanceStatus --output text >&2 ||
          die "could not rename $name in $region: rename it to $name-retired-$stamp by hand (aws rds modify-db-instance --new-db-instance-identifier), then run this again"
        x "$AWS" rds wait db-instance-available --region "$region" --db-instance-identifier "$name-retired-$stamp" ||
          die "$name-retired-$stamp in $region is not available after its rename (aws rds describe-db-instances)"
        retired_instances+=("$region $name-retired-$stamp")
        ;;
      delete-cache)
        read -r region name <<<"$rest"
        if ! said="$(x "$AWS" elasticache describe-replication-groups --region "$region" --replication-group-id \
          "$name" --query "ReplicationGroups[0].Status" --output text 2>&1)"; then
          [[ "$said" == *ReplicationGroupNotFound* ]] || die "could not describe $name in $region ($said)"
          info "no $name in $region any more (an earlier run deleted it): nothing to delete"
          continue
        fi
        x "$AWS" elasticache delete-replication-group --region "$region" --replication-group-id "$name" \
          --final-snapshot-identifier "$name-final-$stamp" --query ReplicationGroup.Status --output text >&2 ||
          die "could not delete $name in $region with its final snapshot (aws elasticache delete-replication-group): nothing was forgotten; run this again"
        x "$AWS" elasticache wait replication-group-deleted --region "$region" --replication-group-id "$name" ||
          die "$name in $region is not deleted yet (aws elasticache describe-replication-groups): run this again once it is"
        info "$name in $region deleted; what it held is in snapshot $name-final-$stamp"
        ;;
      forget)
        info "Terraform forgets ${rest%% *}: ${rest#* }"
        addresses+=("${rest%% *}")
        forgotten+=("${rest%% *}: ${rest#* }")
        ;;
      *) die "could not read what to retire (stackinfo retire failed: see above)" ;;
    esac
  done < <(stackinfo retire "$current" "$target" || echo "failed -")
  [[ ${#addresses[@]} -gt 0 ]] || return 0
  # Only what the state still holds (an earlier run may have forgotten some): state rm refuses a missing address.
  mapfile -t present < <(tf "$env" state list "${addresses[@]}") ||
    die "could not list $env's state (terraform state list)"
  [[ ${#present[@]} -eq 0 ]] || tf "$env" state rm "${present[@]}"
}

# replica_lag REGION INSTANCE MINUTES: prints the replica INSTANCE's ReplicaLag, the Maximum over the last MINUTES
# (CloudWatch's text: seconds, or None without data); under --dry-run the query is printed instead, and nothing.
replica_lag() {
  local region="$1" instance="$2" start end
  read -r start end < <("$ROOT/.venv/bin/python" -c 'import datetime as d, sys
now = d.datetime.now(d.timezone.utc)
print(*(t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in (now - d.timedelta(minutes=int(sys.argv[1])), now)))' "$3")
  x "$AWS" cloudwatch get-metric-statistics --region "$region" --namespace AWS/RDS --metric-name ReplicaLag \
    --dimensions "Name=DBInstanceIdentifier,Value=$instance" --statistics Maximum --period 60 \
    --start-time "$start" --end-time "$end" --query "max(Datapoints[].Maximum)" --output text
}

# lag_within LAG SECONDS: LAG is a number of seconds, at most SECONDS.
lag_within() {
  [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]] &&
    "$ROOT/.venv/bin/python" -c 'import sys; sys.exit(float(sys.argv[1]) > float(sys.argv[2]))' "$1" "$2"
}

# wait_replica_lag REGION INSTANCE SECONDS: until the replica INSTANCE's ReplicaLag (Maximum over the last 2 minutes)
# is at most SECONDS, polled every LAG_POLL_SECONDS (60) up to LAG_POLLS (30) times; dies when it never is.
wait_replica_lag() {
  local region="$1" instance="$2" most="$3" poll lag
  for ((poll = 1; poll <= ${LAG_POLLS:-30}; poll++)); do
    lag="$(replica_lag "$region" "$instance" 2)" || lag=unreadable
    $DRY_RUN && return 0
    if lag_within "$lag" "$most"; then
      info "$instance in $region is ${lag} s behind (at most $most s)"
      return 0
    fi
    info "$instance in $region is '${lag}' s behind, waiting for at most $most s ($poll/${LAG_POLLS:-30})"
    [[ "$poll" == "${LAG_POLLS:-30}" ]] || sleep "${LAG_POLL_SECONDS:-60}"
  done
  die "$instance in $region did not come within $most s of its source (aws cloudwatch get-metric-statistics ReplicaLag; its events: aws rds describe-events --source-identifier $instance)"
}

# stop_dr_writers ENV: failback-database.sh's write freeze in the DR region, which serves: its services to zero
# tasks and its event processor to zero concurrency (its messages wait in its queue), then the services' wait.
stop_dr_writers() {
  local env="$1" outputs cluster api ml function service region="${fact[dr_region]}"
  outputs="$(stack_outputs "$env" dr_ecs_cluster_name dr_api_service_name dr_ml_service_name \
    dr_event_processor_function_name)"
  read -r cluster api ml function < <("$ROOT/.venv/bin/python" -c 'import json, sys
value = {name: output["value"] for name, output in json.load(sys.stdin).items()}
print(*(value[name] for name in sys.argv[1:]))' dr_ecs_cluster_name dr_api_service_name dr_ml_service_name \
    dr_event_processor_function_name <<<"$outputs") ||
    die "could not read the DR region's services from $env's outputs (terraform output -json in cdktf.out/stacks/$env)"
  for service in "$api" "$ml"; do
    x "$AWS" ecs update-service --region "$region" --cluster "$cluster" --service "$service" --desired-count 0 \
      --query service.serviceName --output text >&2 || die "could not stop $service in $region (aws ecs update-service)"
  done
  x "$AWS" lambda put-function-concurrency --region "$region" --function-name "$function" \
    --reserved-concurrent-executions 0 >&2 || die "could not pause $function in $region (aws lambda put-function-concurrency)"
  x "$AWS" ecs wait services-stable --region "$region" --cluster "$cluster" --services "$api" "$ml" ||
    die "the services $api $ml in $region did not stop (aws ecs describe-services --region $region --cluster $cluster)"
}

# step NAME USUAL: announce a step of a runbook script and what AWS usually takes for it (docs/DEPLOYMENT.md sums
# each script's steps).
step() { info "$1 (usually $2)"; }

# runbook_args USAGE_FUNCTION FLAG ARGS...: the arguments of failover.sh and failback.sh, <env> [--confirm <env>]
# [--dry-run] and the script's own FLAG ("" for none); sets env_name, confirmed and flag_given, reads the
# environment's facts (read_failover_facts) and refuses anything but a production environment with a pilot light
# and its allowed accounts.
# shellcheck disable=SC2034 # env_name, confirmed and flag_given are read by the scripts that call this
runbook_args() {
  local usage_function="$1" flag="$2" expect_confirm=false arg
  shift 2
  env_name="" confirmed="" flag_given=false
  for arg in "$@"; do
    if $expect_confirm; then confirmed="$arg"; expect_confirm=false; continue; fi
    case "$arg" in
      --confirm) expect_confirm=true ;;
      --dry-run) DRY_RUN=true ;;
      -h | --help) "$usage_function"; exit 0 ;;
      -*) [[ -n "$flag" && "$arg" == "$flag" ]] || die "unknown option '$arg'"; flag_given=true ;;
      *) [[ -z "$env_name" ]] || die "only one environment at a time"; env_name="$arg" ;;
    esac
  done
  $expect_confirm && die "--confirm needs the environment's name"
  require_env "$env_name"
  ensure_venv
  read_failover_facts "$env_name"
  [[ "${fact[production]}" == true ]] ||
    die "$env_name is not a production environment: ${0##*/} acts on prod only (practise its steps by hand in staging: docs/DEPLOYMENT.md)"
  [[ "${fact[pilot_light]}" == true ]] ||
    die "$env_name has no DR pilot light (a dr section in environments/$env_name.json): nothing to fail over or back"
  require_allowed_accounts "$env_name" "${fact[allowed_account_ids]}"
}

# read_failover_facts ENV: the configuration's facts about ENV's pilot light (stackinfo.py failover_facts) into the
# global array fact[]: production, pilot_light, active, the regions, the DR database, the state's locations, ...
read_failover_facts() {
  declare -gA fact
  local name value
  while read -r name value; do fact[$name]="$value"; done < <(stackinfo failover "$ENVIRONMENTS_DIR" "$1" || echo "failed -")
  [[ -z "${fact[failed]:-}" ]] || die "could not read $1's configuration (the problems are above)"
}

# state_order WORKDIR: which copy of the environment's Terraform state is newer (after read_failover_facts): reads
# both (the DR region's copy and the primary region's) into WORKDIR and sets verdict ("copy": the DR copy is newer,
# "current": both the same, "primary-newer") and digest (the DR copy's MD5); dies when either is unreadable or the
# two cannot be ordered. Under --dry-run: the reads printed, verdict "copy".
# shellcheck disable=SC2034 # verdict and digest are read by the scripts that call this
state_order() {
  local work="$1" key="${fact[state_key]}"
  x "$AWS" s3 cp --region "${fact[dr_region]}" "s3://${fact[dr_state_bucket]}/$key" "$work/dr.tfstate" --only-show-errors ||
    die "could not read the state's copy in ${fact[dr_region]}: nothing was changed"
  x "$AWS" s3 cp --region "${fact[region]}" "s3://${fact[state_bucket]}/$key" "$work/primary.tfstate" --only-show-errors ||
    die "could not read the state in ${fact[region]} (is the region back?): nothing was changed"
  if $DRY_RUN; then
    verdict=copy digest="<md5 of the copy>" # printed, not run: show what a newer copy leads to
  else
    read -r verdict digest < <(stackinfo state-compare "$work/dr.tfstate" "$work/primary.tfstate" || echo "failed -")
  fi
}

# require_promoted REGION INSTANCE [STATUS]: INSTANCE in REGION replicates from nothing (a promoted, standalone
# database) and, where STATUS is given, has that status.
require_promoted() {
  local region="$1" instance="$2" want="${3:-}" status source
  local query=("$AWS" rds describe-db-instances --region "$region" --db-instance-identifier "$instance"
    --query "DBInstances[0].[DBInstanceStatus,ReadReplicaSourceDBInstanceIdentifier]" --output text)
  if $DRY_RUN; then
    x "${query[@]}"
    return 0
  fi
  read -r status source < <("${query[@]}") || die "could not describe $instance in $region"
  [[ "$source" == None ]] ||
    die "$instance in $region still replicates from '$source': not a promoted database (promote it first: aws rds promote-read-replica, docs/DEPLOYMENT.md)"
  [[ -z "$want" || "$status" == "$want" ]] ||
    die "$instance in $region is '$status', not $want: not yet a writable primary (see docs/DEPLOYMENT.md)"
  info "$instance in $region is a standalone database ($status)"
}

# promote_standby_data: failover.sh's step 2/8, after read_failover_facts: the database replica in the DR region
# promoted (keeping the primary's backup retention) and waited for; with dr.cache_replica, the cache's secondary too.
promote_standby_data() {
  local dr="${fact[dr_region]}" replica="${fact[dr_database]}"
  x "$AWS" rds promote-read-replica --region "$dr" --db-instance-identifier "$replica" \
    --backup-retention-period "${fact[backup_days]}"
  x "$AWS" rds wait db-instance-available --region "$dr" --db-instance-identifier "$replica"
  [[ "${fact[cache_global]}" == - ]] || promote_cache_secondary
}

# promote_cache_secondary: with dr.cache_replica: the cache's Global Datastore secondary in the DR
# region becomes a writable primary. First as AWS's failover of the global group (the secondary becomes its
# primary); should that fail with the primary region down, by leaving the group (standalone, writable).
promote_cache_secondary() {
  local dr="${fact[dr_region]}" name="${fact[cache_global]}" global
  local secondary="$name-dr"
  global="$(x "$AWS" elasticache describe-global-replication-groups --region "$dr" \
    --query "GlobalReplicationGroups[?ends_with(GlobalReplicationGroupId, '-$name')].GlobalReplicationGroupId | [0]" \
    --output text)" || die "could not list the Global Datastores in $dr (aws elasticache describe-global-replication-groups)"
  $DRY_RUN && global="<the Global Datastore's id>"
  [[ -n "$global" && "$global" != None ]] || die "no Global Datastore *-$name found from $dr: is dr.cache_replica applied?"
  if x "$AWS" elasticache failover-global-replication-group --region "$dr" --global-replication-group-id "$global" \
    --primary-region "$dr" --primary-replication-group-id "$secondary" --query GlobalReplicationGroup.Status \
    --output text >&2; then
    info "$secondary in $dr is the primary of $global"
  elif x "$AWS" elasticache disassociate-global-replication-group --region "$dr" --global-replication-group-id \
    "$global" --replication-group-id "$secondary" --replication-group-region "$dr" \
    --query GlobalReplicationGroup.Status --output text >&2; then
    info "$secondary in $dr left $global (its failover failed): a standalone, writable cache"
  else
    die "$secondary in $dr could not be promoted (failover and disassociation of $global failed): the services there cannot write to it; see docs/DEPLOYMENT.md, \"Failing over\""
  fi
  x "$AWS" elasticache wait replication-group-available --region "$dr" --replication-group-id "$secondary" ||
    die "$secondary in $dr did not become available (aws elasticache describe-replication-groups)"
}

# is_replicating REGION INSTANCE: whether INSTANCE in REGION is a read replica (of anything: a cross-region source is
# named by its ARN), said either way. Under --dry-run: the query printed, and yes.
is_replicating() {
  local region="$1" instance="$2" status source
  local query=("$AWS" rds describe-db-instances --region "$region" --db-instance-identifier "$instance"
    --query "DBInstances[0].[DBInstanceStatus,ReadReplicaSourceDBInstanceIdentifier]" --output text)
  if $DRY_RUN; then
    x "${query[@]}"
    return 0
  fi
  read -r status source < <("${query[@]}" 2>/dev/null || echo "missing None") || true
  if [[ -n "$source" && "$source" != None ]]; then
    info "$instance in $region replicates from $source ($status)"
    return 0
  fi
  info "$instance in $region is not a replica (${status:-missing})"
  return 1
}

# require_proxy_available REGION PROXY: RDS Proxy PROXY in REGION reaches its database (its target is AVAILABLE).
require_proxy_available() {
  local region="$1" proxy="$2" health
  local query=("$AWS" rds describe-db-proxy-targets --region "$region" --db-proxy-name "$proxy"
    --query "Targets[].TargetHealth.State" --output text)
  if $DRY_RUN; then
    x "${query[@]}"
    return 0
  fi
  health="$("${query[@]}")" || die "could not read the health of RDS Proxy $proxy in $region"
  [[ "$health" == AVAILABLE ]] ||
    die "RDS Proxy $proxy in $region reports its database '$health', not AVAILABLE (a new target registers within minutes: aws rds describe-db-proxy-targets --region $region --db-proxy-name $proxy)"
  info "RDS Proxy $proxy reaches its database"
}

# confirm_named ENV GIVEN WHAT PROMPT: GIVEN (a --confirm value) must name ENV; without one, the operator types ENV
# at a terminal (PROMPT says what it allows). WHAT names the change in the refusal. Skipped under --dry-run.
confirm_named() {
  local env="$1" given="$2" what="$3" prompt="$4" answer
  $DRY_RUN && return 0
  if [[ -n "$given" ]]; then
    [[ "$given" == "$env" ]] || die "--confirm '$given' does not name $env; nothing was changed"
    return 0
  fi
  [[ -t 0 ]] ||
    die "refusing to $what without a confirmation (nothing was changed): run it in a terminal, or pass --confirm $env"
  read -r -p "Type '$env' to $prompt: " answer
  [[ "$answer" == "$env" ]] || die "not confirmed; nothing was changed"
}

# confirm ENV ACTION: the operator types the environment name (skipped by --auto-approve).
confirm() {
  local env="$1" action="$2" answer
  [[ -t 0 ]] || die "refusing to $action $env without a terminal: pass --auto-approve"
  read -r -p "Type '$env' to $action the $env environment: " answer
  [[ "$answer" == "$env" ]] || die "not confirmed; nothing was changed"
}
