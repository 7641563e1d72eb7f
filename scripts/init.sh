#!/usr/bin/env bash
# Usage: scripts/init.sh <env> [--auto-approve] [--dry-run]
# Bootstraps <env>'s remote state (stack state-<env>: S3 bucket, DynamoDB lock table, KMS key) and initializes <env>
# against it. The first time, state-<env> is applied on a local state file (its bucket does not exist yet), which is
# then moved into that bucket (state-<env>/terraform.tfstate), so nothing lives only on one laptop. Re-runs find the
# bucket, use the state there, and change nothing that is already as configured. Needs the aws CLI.
# --dry-run: synthesize, then print every terraform and aws command (of a first bootstrap) instead of running it.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

env_name=""
auto_approve=()
for arg in "$@"; do
  case "$arg" in
    --auto-approve) auto_approve=(-auto-approve) ;;
    --dry-run) DRY_RUN=true ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$arg'" ;;
    *) [[ -z "$env_name" ]] || die "only one environment at a time"; env_name="$arg" ;;
  esac
done
require_env "$env_name"
require_terraform
require_allowed_accounts "$env_name"
synth "$env_name"
require_aws "$env_name"

state="state-$env_name"
bucket="$(stackinfo state-bucket "$OUTDIR/stacks/$state/cdk.tf.json")"
region="$(stackinfo region "$OUTDIR/stacks/$state/cdk.tf.json")"
local_state="$ROOT/bootstrap-state/$state.tfstate"
bucket_exists=false
if $DRY_RUN; then
  x "$AWS" s3api head-bucket --region "$region" --bucket "$bucket" # printed: shown as a first bootstrap, the longer path
elif "$AWS" s3api head-bucket --region "$region" --bucket "$bucket" >/dev/null 2>&1; then
  bucket_exists=true
fi
if $bucket_exists; then
  info "$state: s3://$bucket exists; its own state is there ($state/terraform.tfstate)"
  # -migrate-state moves a state left on this machine by an earlier bootstrap into the bucket (none: a no-op).
  tf "$state" init -input=false -migrate-state -force-copy
  tf "$state" apply -input=false "${auto_approve[@]}"
else
  info "$state: first bootstrap: the bucket, lock table and key, on local state ($local_state)"
  mkdir -p "$(dirname "$local_state")"
  # An override file points this one run at the local file: Terraform reads *_override.tf.json after the config.
  override="$OUTDIR/stacks/$state/backend_override.tf.json"
  $DRY_RUN || printf '{"terraform": {"backend": {"local": {"path": "%s"}}}}\n' "$local_state" >"$override"
  tf "$state" init -input=false -reconfigure
  tf "$state" apply -input=false "${auto_approve[@]}"
  rm -f "$override"
  info "$state: moving its state into s3://$bucket/$state/terraform.tfstate"
  tf "$state" init -input=false -migrate-state -force-copy
  if [[ -f "$local_state" ]]; then
    mv "$local_state" "$local_state.migrated"
    info "$state: the local copy is kept as $local_state.migrated (no longer used)"
  fi
fi

info "$env_name: initializing against its S3 backend"
tf "$env_name" init -input=false
dry_run_done
info "done: next, scripts/deploy.sh $env_name"
