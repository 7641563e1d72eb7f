#!/usr/bin/env bash
# Usage: scripts/init.sh <env> [--auto-approve]
# Bootstraps <env>'s remote state (stack state-<env>: S3 bucket, DynamoDB lock table, KMS key; on local
# state in bootstrap-state/) and then initializes <env> against it. Safe to re-run: both steps are idempotent.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,4s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

env_name=""
auto_approve=()
for arg in "$@"; do
  case "$arg" in
    --auto-approve) auto_approve=(-auto-approve) ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$arg'" ;;
    *) [[ -z "$env_name" ]] || die "only one environment at a time"; env_name="$arg" ;;
  esac
done
require_env "$env_name"
require_terraform
require_allowed_accounts "$env_name"
synth "$env_name"

mkdir -p "$ROOT/bootstrap-state"
info "state-$env_name: creating the state bucket, lock table and key (local state in bootstrap-state/)"
tf "state-$env_name" init -input=false
tf "state-$env_name" apply -input=false "${auto_approve[@]}"

info "$env_name: initializing against its S3 backend"
tf "$env_name" init -input=false
info "done: next, scripts/deploy.sh $env_name"
