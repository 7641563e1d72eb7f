#!/usr/bin/env bash
# Shared by init.sh, deploy.sh and destroy.sh: environment checks, synth, and terraform per stack.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly ENVIRONMENTS=(dev staging prod)
readonly MIN_TERRAFORM_VERSION="1.11.0" # ephemeral variables in write-only arguments (1.11), S3 lock files (1.10)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20
readonly ACCOUNT_PINNED_ENVIRONMENTS=(staging prod) # applied only to the accounts their config names
OUTDIR="${CDKTF_OUTDIR:-$ROOT/cdktf.out}"
ENVIRONMENTS_DIR="${ROI_TF_ENVIRONMENTS_DIR:-$ROOT/environments}"
TERRAFORM="${TERRAFORM:-terraform}"

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

# artifact_targets ENV: -target= arguments for the image repositories and the artifacts bucket (stackinfo.py).
artifact_targets() {
  "$ROOT/.venv/bin/python" -m roi_tf.tools.stackinfo artifact-targets "$OUTDIR/stacks/$1/cdk.tf.json"
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
  "$ROOT/.venv/bin/python" -m roi_tf.tools.stackinfo protected "$OUTDIR/stacks/$1/cdk.tf.json"
}

# require_allowed_accounts ENV: staging and prod name the accounts they may be applied to (checked before synth).
require_allowed_accounts() {
  local env="$1" pinned ids
  for pinned in "${ACCOUNT_PINNED_ENVIRONMENTS[@]}"; do
    [[ "$env" == "$pinned" ]] || continue
    ensure_venv
    ids="$("$ROOT/.venv/bin/python" -m roi_tf.tools.stackinfo allowed-account-ids "$ENVIRONMENTS_DIR" "$env")"
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
  "$TERRAFORM" -chdir="$dir" "$@"
}

# confirm ENV ACTION: the operator types the environment name (skipped by --auto-approve).
confirm() {
  local env="$1" action="$2" answer
  [[ -t 0 ]] || die "refusing to $action $env without a terminal: pass --auto-approve"
  read -r -p "Type '$env' to $action the $env environment: " answer
  [[ "$answer" == "$env" ]] || die "not confirmed; nothing was changed"
}
