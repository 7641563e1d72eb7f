#!/usr/bin/env bash
# Usage: scripts/deploy.sh <env> [--plan-only | --saved-plan] [--auto-approve] [--registries-only] [--skip-snapshot] [--skip-validation] [--dry-run]
# Synthesizes, plans into cdktf.out/stacks/<env>/tfplan and prints what the plan does (a replaced or destroyed
# resource that holds data is named loudly); stops there when nothing changes. Otherwise applies exactly that plan
# after the operator types the environment name (--auto-approve instead; in prod only with CI=true). In prod, a
# manual RDS snapshot is taken first and waited for (--skip-snapshot skips it). After the apply, validates: the web
# app and API answer, the ECS services are stable, the database is available, no alarm is in ALARM.
# Needs TF_VAR_db_password, TF_VAR_jwt_secret and the deployment inputs (TF_VAR_api_image_tag, TF_VAR_ml_image_tag,
# TF_VAR_event_processor_code) in the environment; prod also TF_VAR_pagerduty_integration_url; the aws CLI.
# --registries-only (first deployment): only the ECR repositories and the artifacts bucket, so CI can push.
# --dry-run: synthesize, then print every terraform, aws and curl command of a deployment with changes instead.
# --saved-plan: apply the reviewed cdktf.out/stacks/<env>/tfplan (a pipeline's artifact) instead of planning again.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

env_name=""
plan_only=false
auto_approve=false
registries_only=false
skip_snapshot=false
skip_validation=false
saved_plan=false
for arg in "$@"; do
  case "$arg" in
    --plan-only) plan_only=true ;;
    --auto-approve) auto_approve=true ;;
    --registries-only) registries_only=true ;;
    --skip-snapshot) skip_snapshot=true ;;
    --skip-validation) skip_validation=true ;;
    --dry-run) DRY_RUN=true ;;
    --saved-plan) saved_plan=true ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$arg'" ;;
    *) [[ -z "$env_name" ]] || die "only one environment at a time"; env_name="$arg" ;;
  esac
done
require_env "$env_name"
if $saved_plan && { $plan_only || $registries_only; }; then
  die "--saved-plan applies a reviewed plan: not with --plan-only or --registries-only"
fi
if [[ "$env_name" == prod ]] && $auto_approve && [[ "${CI:-}" != "true" ]]; then
  die "refusing --auto-approve for prod outside CI (CI=true): type the confirmation instead"
fi
require_secrets
require_deployment_inputs
require_terraform
require_allowed_accounts "$env_name"
synth "$env_name"
require_stack_variables "$env_name"
$plan_only || require_aws "$env_name"

targets=()
if $registries_only; then
  # The stores and what configures them (Terraform adds what they depend on: keys, the logs bucket).
  found="$(registry_targets "$env_name")" || exit 1
  mapfile -t targets <<<"$found"
fi

tf "$env_name" init -input=false
if $saved_plan; then
  # Terraform itself refuses a saved plan that no longer matches the state (someone applied since).
  $DRY_RUN || [[ -f "$OUTDIR/stacks/$env_name/tfplan" ]] ||
    die "no saved plan at $OUTDIR/stacks/$env_name/tfplan (--saved-plan applies a reviewed plan: plan first)"
else
  plan_status=0
  tf "$env_name" plan -input=false -detailed-exitcode -out=tfplan "${targets[@]}" || plan_status=$?
  $DRY_RUN && plan_status=2 # printed, not run: show what a plan with changes leads to
  case "$plan_status" in
    0) info "$env_name: no changes; nothing to apply"; exit 0 ;;
    2) ;;
    *) die "terraform plan failed for $env_name (exit $plan_status): nothing was applied" ;;
  esac
fi
if $DRY_RUN; then
  tf "$env_name" show -json tfplan
else
  tf "$env_name" show -json tfplan | stackinfo plan-summary >&2 || die "could not summarize the plan of $env_name"
fi
if $plan_only; then
  info "plan saved to $OUTDIR/stacks/$env_name/tfplan; review it, then re-run without --plan-only"
  exit 0
fi
$auto_approve || $DRY_RUN || confirm "$env_name" apply
if [[ "$env_name" == prod ]] && ! $registries_only && ! $skip_snapshot; then
  pre_deploy_snapshot "$env_name"
fi
tf "$env_name" apply -input=false tfplan
$registries_only || $skip_validation || validate "$env_name"
dry_run_done
if $registries_only; then
  info "$env_name: registries and artifacts bucket ready; push the images and the event processor's package, then deploy without --registries-only (docs/DEPLOYMENT.md, \"Deploying a new image\")"
elif $skip_validation; then
  info "$env_name deployed (not validated: --skip-validation)"
else
  info "$env_name deployed"
fi
