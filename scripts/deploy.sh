#!/usr/bin/env bash
# Usage: scripts/deploy.sh <env> [--plan-only] [--auto-approve] [--registries-only]
# Synthesizes, plans into cdktf.out/stacks/<env>/tfplan, shows it, and applies exactly that plan after the
# operator types the environment name. Needs TF_VAR_db_password, TF_VAR_jwt_secret and the deployment inputs
# (TF_VAR_api_image_tag, TF_VAR_ml_image_tag, TF_VAR_event_processor_code) in the environment; prod also
# TF_VAR_pagerduty_integration_url (critical alerts).
# --registries-only (first deployment): only the ECR repositories and the artifacts bucket, so CI can push.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

env_name=""
plan_only=false
auto_approve=false
registries_only=false
for arg in "$@"; do
  case "$arg" in
    --plan-only) plan_only=true ;;
    --auto-approve) auto_approve=true ;;
    --registries-only) registries_only=true ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$arg'" ;;
    *) [[ -z "$env_name" ]] || die "only one environment at a time"; env_name="$arg" ;;
  esac
done
require_env "$env_name"
require_secrets
require_deployment_inputs
require_terraform
require_allowed_accounts "$env_name"
synth "$env_name"
require_stack_variables "$env_name"

targets=()
if $registries_only; then
  # The stores and what configures them (Terraform adds what they depend on: keys, the logs bucket).
  found="$(registry_targets "$env_name")" || exit 1
  mapfile -t targets <<<"$found"
fi

tf "$env_name" init -input=false
tf "$env_name" plan -input=false -out=tfplan "${targets[@]}"
if $plan_only; then
  info "plan saved to $OUTDIR/stacks/$env_name/tfplan; review it, then re-run without --plan-only"
  exit 0
fi
$auto_approve || confirm "$env_name" apply
tf "$env_name" apply -input=false tfplan
if $registries_only; then
  info "$env_name: registries and artifacts bucket ready; push the images and the event processor's package, then deploy without --registries-only (docs/DEPLOYMENT.md, \"Deploying a new image\")"
else
  info "$env_name deployed"
fi
