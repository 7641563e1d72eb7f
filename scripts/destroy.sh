#!/usr/bin/env bash
# Usage: scripts/destroy.sh <env> [--auto-approve] [--allow-production] [--dry-run]
# Destroys <env>'s resources (never its state-<env> backend, which is prevent_destroy): plans the destroy, prints
# what it removes (every resource that holds data named), then asks. Where protection is on it lists what Terraform
# would refuse and stops. prod is refused unless --allow-production is given, and always asks for its name.
# --dry-run: synthesize, then print every terraform command instead of running it.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,6s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

env_name=""
auto_approve=false
allow_production=false
for arg in "$@"; do
  case "$arg" in
    --auto-approve) auto_approve=true ;;
    --allow-production) allow_production=true ;;
    --dry-run) DRY_RUN=true ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$arg'" ;;
    *) [[ -z "$env_name" ]] || die "only one environment at a time"; env_name="$arg" ;;
  esac
done
require_env "$env_name"
if [[ "$env_name" == "prod" ]]; then
  $allow_production || die "refusing to destroy prod: pass --allow-production (deletion protection still applies)"
  auto_approve=false # production is never destroyed unattended
  $DRY_RUN || [[ -t 0 ]] || die "refusing to destroy prod without a terminal: it is never destroyed unattended"
fi
require_secrets
require_deployment_inputs
require_terraform
synth "$env_name"
require_stack_variables "$env_name"

# Terraform would refuse the whole plan anyway (prevent_destroy): say what, and how to destroy on purpose.
protected="$(protected_resources "$env_name")"
if [[ -n "$protected" ]]; then
  echo "$env_name keeps $(wc -l <<<"$protected") resources that hold data or audit history, and Terraform refuses to destroy them:" >&2
  while IFS= read -r line; do echo "  $line" >&2; done <<<"$protected"
  die "nothing was destroyed. To destroy $env_name on purpose, set \"protection\": {\"prevent_destroy\": false} and database/sessions deletion_protection false in environments/$env_name.json (a reviewed commit; prod refuses it), deploy that, then destroy (docs/DEPLOYMENT.md, \"Destroying an environment\")"
fi

tf "$env_name" init -input=false
# The destroy is planned first and summarized (every resource that holds data named), then exactly that plan runs.
tf "$env_name" plan -destroy -input=false -out=destroy.tfplan
if $DRY_RUN; then
  tf "$env_name" show -json destroy.tfplan
else
  tf "$env_name" show -json destroy.tfplan | stackinfo plan-summary >&2 || die "could not summarize the destroy plan"
fi
$auto_approve || $DRY_RUN || confirm "$env_name" destroy
tf "$env_name" apply -input=false destroy.tfplan
dry_run_done
info "$env_name destroyed (its state bucket and lock table remain)"
