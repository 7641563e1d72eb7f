#!/usr/bin/env bash
# Usage: scripts/failback.sh <env> [--confirm <env>] [--dry-run]
# Moves <env>'s Terraform state back to its primary region once that region is back after a regional failover
# (docs/DEPLOYMENT.md, "Failing back"): reads the state in both buckets and, only when the DR copy is the newer one
# (the same lineage, a higher serial: applied during the outage), asks, copies it over the primary's and records its
# digest in the DynamoDB lock table (Terraform refuses a state whose digest does not match); then points Terraform at
# the primary bucket again. Nothing is applied, and the database stays where dr.active says. Production environments
# with a dr section only. --confirm <env>: the confirmation, for a run without a terminal. --dry-run: print every
# aws, terraform and synth command instead of running it.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

runbook_args usage "" "$@"
synth "$env_name" # the stack on the primary bucket again: what step 3 initializes
require_terraform
require_aws "$env_name"

region="${fact[region]}" dr="${fact[dr_region]}" key="${fact[state_key]}" bucket="${fact[state_bucket]}"
primary="s3://$bucket/$key"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step "1/3 reading $env_name's state in $dr (s3://${fact[dr_state_bucket]}/$key) and in $region ($primary)" "seconds"
state_order "$work"
case "$verdict" in
  copy) info "the copy in $dr is newer than the state in $region (applied during the outage): it goes back" ;;
  current) info "both regions hold the same state: nothing to copy" ;;
  primary-newer) info "the state in $region is the newer one (nothing was applied against the copy): nothing to copy" ;;
  *) die "the two states cannot be ordered (the reason is above): nothing was changed; compare them by hand" ;;
esac

if [[ "$verdict" == copy ]]; then
  confirm_named "$env_name" "$confirmed" "overwrite $env_name's state in $region" \
    "overwrite the state in $primary with the newer copy from $dr"
  step "2/3 copying the newer state back to $primary, and its digest to ${fact[lock_table]}" "seconds"
  # The bucket keeps the overwritten version (versioning): the way back if this was wrong.
  x "$AWS" s3 cp --region "$region" "$work/dr.tfstate" "$primary" --sse aws:kms \
    --sse-kms-key-id "${fact[state_kms_alias]}" --only-show-errors ||
    die "could not write the state to $primary: nothing was changed there"
  # Terraform checks the state it reads against this digest in the lock table, and refuses a mismatch.
  item="{\"LockID\": {\"S\": \"$bucket/$key-md5\"}, \"Digest\": {\"S\": \"$digest\"}}"
  x "$AWS" dynamodb put-item --region "$region" --table-name "${fact[lock_table]}" --item "$item" ||
    die "the state is back in $primary but its digest is not in ${fact[lock_table]} (Terraform refuses the state until it is): aws dynamodb put-item --region $region --table-name ${fact[lock_table]} --item '$item'"
else
  step "2/3 nothing to copy back" "seconds"
fi

step "3/3 pointing Terraform at the state in $region" "a minute"
tf "$env_name" init -reconfigure -input=false
dry_run_done
info "$env_name's Terraform uses its state in $region again; review before applying: scripts/deploy.sh $env_name --plan-only"
info "the database stays in $dr while dr.active is true: failing it back is by hand (docs/DEPLOYMENT.md, \"Failing back\")"
