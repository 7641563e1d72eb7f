#!/usr/bin/env bash
# Usage: scripts/failback-database.sh <env> [--confirm <env>] [--promoted] [--dry-run]
# Moves <env>'s database back to its primary region after a regional failover (docs/DEPLOYMENT.md, "Failing the
# database back"), in two runs. The first (dr.failback_replica off) checks that Terraform's state is back in the
# primary region (failback.sh), sets dr.failback_replica, renames the stale primary and its read replicas out of the
# way (kept, with their data), applies a cross-region replica of the promoted database there and waits until it is
# within the RPO. The second (in a maintenance window; dr.failback_replica on) stops the DR region's writers, waits
# until the replica has replayed everything, promotes it, sets dr.active and dr.failback_replica off, renames the DR
# region's database out of the way, applies the primary shape (its replicas, backups, RDS Proxy target, and a new DR
# replica) and validates the environment as deploy.sh does. Production environments failed over only.
# --confirm <env>: the confirmation, for a run without a terminal. --promoted: a second run that stopped after its
# promotion (step 8/10) goes on at step 9/10. --dry-run: print every aws, terraform and synth command instead of
# running it. Needs the environment a deploy of <env> needs (TF_VAR_*). Each step can run again after a stop.
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

runbook_args usage --promoted "$@"
promoted_already="$flag_given"
[[ "${fact[active]}" == true ]] ||
  die "$env_name is not failed over (dr.active is false): its database is in ${fact[region]} already"
region="${fact[region]}" dr="${fact[dr_region]}" database="${fact[database]}" promoted="${fact[dr_database]}"
stack="$OUTDIR/stacks/$env_name/cdk.tf.json"
stamp="$(date -u +%Y%m%d%H%M)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# synth_shape: the environment's stack as its configuration says now (under --dry-run: the synth printed).
synth_shape() {
  if $DRY_RUN; then
    x "$ROOT/.venv/bin/python" "$ROOT/main.py" --env "$env_name" --outdir "$OUTDIR" --environments-dir "$ENVIRONMENTS_DIR"
  else
    synth "$env_name"
  fi
}

synth_shape
$DRY_RUN || require_stack_variables "$env_name"
require_terraform
require_aws "$env_name"

# switch_shape SWITCHES...: keeps the stack Terraform's state holds (to compare), then synthesizes the new shape
# from a copy of the environments with the dr switches set, and initializes Terraform on it. The file itself changes
# only once that shape is applied (commit_switches): a run that stops before finds the file as it was, and starts
# that step again.
switch_shape() {
  $DRY_RUN || cp "$stack" "$work/current.tf.json"
  rm -rf "$work/environments" && cp -R "$ENVIRONMENTS_DIR" "$work/environments"
  x stackinfo set-dr "$work/environments" "$env_name" "$@" || die "could not set $* (see above): nothing was changed"
  ENVIRONMENTS_DIR="$work/environments" synth_shape
  tf "$env_name" init -input=false
}

# commit_switches SWITCHES...: the applied shape's switches into environments/<env>.json (only those values).
commit_switches() {
  x stackinfo set-dr "$ENVIRONMENTS_DIR" "$env_name" "$@" ||
    die "$env_name is applied with $*, but environments/$env_name.json could not be changed: set them by hand"
}

# retire_shape: what the new shape replaces leaves the state (retire_databases; under --dry-run, its commands).
retire_shape() {
  if $DRY_RUN; then
    x "$AWS" rds deregister-db-proxy-targets --region "<region>" --db-proxy-name "<proxy>" \
      --db-instance-identifiers "<each instance retired that a proxy targets>"
    x "$AWS" rds modify-db-instance --region "<region>" --db-instance-identifier "<each instance retired>" \
      --new-db-instance-identifier "<it>-retired-$stamp" --apply-immediately
    x "$AWS" elasticache delete-replication-group --region "<region>" \
      --replication-group-id "<each cache the new shape no longer has>" --final-snapshot-identifier "<it>-final-$stamp"
    tf "$env_name" state rm "<each instance retired, and each protected resource the new shape no longer has>"
  else
    retire_databases "$env_name" "$work/current.tf.json" "$stack" "$stamp"
  fi
}

# apply_shape NAME: the whole stack planned into NAME.tfplan, and exactly that plan applied.
apply_shape() {
  tf "$env_name" plan -input=false -out="$1.tfplan"
  tf "$env_name" apply -input=false "$1.tfplan"
}

# retired_advice: what stays behind, billed, for a person to delete once it is no longer needed.
retired_advice() {
  local instance where name
  for instance in "${retired_instances[@]}"; do
    read -r where name <<<"$instance"
    info "kept: $name in $where (deletion protection on). Once nothing in it is needed: aws rds modify-db-instance --region $where --db-instance-identifier $name --no-deletion-protection --apply-immediately, then aws rds delete-db-instance --region $where --db-instance-identifier $name --final-db-snapshot-identifier $name-final"
  done
  for instance in "${forgotten[@]}"; do
    [[ "$instance" != aws_db_instance.* && "$instance" != aws_elasticache_replication_group.* ]] || continue # above
    info "no longer managed by Terraform, kept in AWS: $instance; delete it by hand once nothing in it is needed"
  done
}

if [[ "${fact[failback_replica]}" != true ]]; then
  step "1/10 checking that Terraform's state is back in $region" "seconds"
  state_order "$work"
  case "$verdict" in
    current | primary-newer) info "the state in $region is the newest: Terraform works there" ;;
    copy) $DRY_RUN || die "the state's copy in $dr is newer than the state in $region: run scripts/failback.sh $env_name first (nothing was changed)" ;;
    *) die "the two states cannot be ordered (the reason is above): nothing was changed" ;;
  esac
  require_promoted "$dr" "$promoted" available
  confirm_named "$env_name" "$confirmed" "fail $env_name's database back" \
    "rename the stale $database in $region out of the way and replicate $promoted there"

  step "2/10 synthesizing $env_name with dr.failback_replica set" "a minute"
  switch_shape failback_replica=true
  step "3/10 renaming the stale $database (and its read replicas) in $region out of the way; Terraform forgets them" \
    "5-10 minutes (a rename restarts the instance)"
  retire_shape
  step "4/10 applying: $database in $region, a cross-region replica of $promoted" \
    "30-90 minutes (the whole database copied across regions; longer with more data)"
  apply_shape failback-replica
  commit_switches failback_replica=true

  step "5/10 waiting until $database in $region is within the RPO of $promoted" "minutes"
  wait_replica_lag "$region" "$database" "${fact[rpo_seconds]}"
  dry_run_done
  retired_advice
  info "$database in $region replicates from $promoted; commit environments/$env_name.json (dr.failback_replica: true)"
  info "cut over in a maintenance window: scripts/failback-database.sh $env_name again (it stops the writers in $dr)"
  exit 0
fi

info "dr.failback_replica is true: cutting over to $database in $region"
if $promoted_already; then
  # A second run stopped after its promotion: the instance is the primary already; on to step 9/10.
  require_promoted "$region" "$database" available
  confirm_named "$env_name" "$confirmed" "finish $env_name's cut-over" \
    "apply $env_name with $database in $region as its primary and retire $promoted in $dr"
else
  is_replicating "$region" "$database" ||
    die "$database in $region is not a replica. If a second run stopped after its step 8/10 promoted it: run this again with --promoted. Otherwise the first run's shape is not what stands (failback_replica set by hand?): set it back (python -m roi_tf.tools.stackinfo set-dr environments $env_name failback_replica=false) and run this again; each step says what is done already"
  confirm_named "$env_name" "$confirmed" "cut $env_name's database over to $region" \
    "stop the writers in $dr and promote $database in $region (downtime until step 9/10's apply)"

  step "6/10 waiting until $database is within the RPO, then stopping the writers in $dr: the services to zero tasks, the event processor paused" \
    "2-5 minutes (running requests drain)"
  wait_replica_lag "$region" "$database" "${fact[rpo_seconds]}" # the writes stop for as short a time as possible
  stop_dr_writers "$env_name"

  step "7/10 waiting until $database in $region has replayed every write" "1-5 minutes"
  wait_replica_lag "$region" "$database" 0

  step "8/10 promoting $database in $region" "5-15 minutes"
  x "$AWS" rds promote-read-replica --region "$region" --db-instance-identifier "$database" \
    --backup-retention-period "${fact[backup_days]}"
  x "$AWS" rds wait db-instance-available --region "$region" --db-instance-identifier "$database"
  require_promoted "$region" "$database" available
  if [[ "${fact[multi_az]}" == true ]]; then # now, online, rather than in the maintenance window
    x "$AWS" rds modify-db-instance --region "$region" --db-instance-identifier "$database" --multi-az \
      --apply-immediately --query DBInstance.DBInstanceStatus --output text >&2
  fi
fi

step "9/10 synthesizing $env_name with dr.active and dr.failback_replica off, renaming $promoted in $dr out of the way, applying" \
  "30-90 minutes (the new DR replica's copy; RDS Proxy registers $database within minutes)"
switch_shape active=false failback_replica=false
retire_shape
apply_shape failback
commit_switches active=false failback_replica=false

step "10/10 validating $env_name as after a deploy" "1-5 minutes"
validate "$env_name"
dry_run_done
retired_advice
info "$env_name's database is in $region again; commit environments/$env_name.json (dr.active and dr.failback_replica off)"
