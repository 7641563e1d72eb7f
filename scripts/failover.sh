#!/usr/bin/env bash
# Usage: scripts/failover.sh <env> [--confirm <env>] [--accept-data-loss] [--dry-run]
# Fails <env> over to its DR region when the primary region is lost (docs/DEPLOYMENT.md, "Regional failover"): checks
# that the database replica is within the RPO, asks for the environment's name, promotes the replica, sets dr.active
# in environments/<env>.json, applies the DR region's resources against the state's DR copy (NAT gateways, VPC
# endpoints, the promoted database's settings and RDS Proxy, the application tier), checks the database and its
# proxy, starts the services at the configured counts and sees the API answer. Each step says what it does and how
# long AWS usually takes. Production environments with a dr section only. Run again once dr.active is set, it
# resumes at step 4/8 (a promoted database checked first). --confirm <env>: the confirmation,
# for a run without a terminal. --accept-data-loss: promote although the replica's lag is unknown or above the RPO (a
# lost primary stops reporting it). --dry-run: print every aws, terraform and synth command instead of running it.
# Needs the environment a deploy of <env> needs (TF_VAR_*: the secrets, the last deployment's images and package).
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

runbook_args usage --accept-data-loss "$@"
accept_data_loss="$flag_given"
[[ "${fact[failback_replica]}" != true ]] ||
  die "$env_name's database is failing back to ${fact[region]} (dr.failback_replica is true): finish that with scripts/failback-database.sh $env_name first"
replica="${fact[dr_database]}" # the DR replica (or, once failed over, the promoted database)
[[ "$replica" != - ]] || die "$env_name has no database replica in its DR region: nothing to promote"
dr="${fact[dr_region]}"
rpo="${fact[rpo_seconds]}"

# Step 4/8: the failed-over stack, on the state's copy in the DR region.
synth_failed_over() {
  step "4/8 synthesizing $env_name failed over, on the state's copy in $dr" "a minute"
  if $DRY_RUN; then
    x "$ROOT/.venv/bin/python" "$ROOT/main.py" --env "$env_name" --state dr --outdir "$OUTDIR" --environments-dir "$ENVIRONMENTS_DIR"
  else
    "$ROOT/.venv/bin/python" "$ROOT/main.py" --env "$env_name" --state dr --outdir "$OUTDIR" \
      --environments-dir "$ENVIRONMENTS_DIR" >&2
  fi
  tf "$env_name" init -reconfigure -input=false
}

if [[ "${fact[active]}" == true ]]; then
  # A run that stopped after the switch (an apply that failed, say): resume at step 4/8, on the promoted database.
  info "$env_name is failed over already (dr.active is true): resuming at step 4/8"
  require_terraform
  synth_failed_over
  $DRY_RUN || require_stack_variables "$env_name"
  require_aws "$env_name"
  require_promoted "$dr" "$replica" # the switch is set after the promotion, never before
  confirm_named "$env_name" "$confirmed" "fail $env_name over" "apply $env_name's resources in $dr again"
else
  synth "$env_name"
  # Before anything changes: the plan needs every input a deploy needs (the secrets, the images and package of the
  # last deployment, which the DR region's services and function run, PagerDuty's URL).
  $DRY_RUN || require_stack_variables "$env_name"
  require_terraform
  require_aws "$env_name"

  step "1/8 checking how far $replica in $dr is behind" "seconds"
  lag="$(replica_lag "$dr" "$replica" 10)" ||
    die "could not read the replica's lag (aws cloudwatch get-metric-statistics failed)"
  if ! $DRY_RUN; then
    if [[ ! "$lag" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
      $accept_data_loss ||
        die "the replica's lag over the last 10 minutes is unknown ('$lag'): if the primary region is really gone, re-run with --accept-data-loss (writes it had not replicated are lost)"
      info "lag unknown ('$lag'): going on, as --accept-data-loss says"
    elif ! lag_within "$lag" "$rpo"; then
      $accept_data_loss ||
        die "the replica is ${lag} s behind, more than the RPO of ${rpo} s: wait for it to catch up, or re-run with --accept-data-loss"
      info "lag ${lag} s is above the RPO of ${rpo} s: going on, as --accept-data-loss says"
    else
      info "lag ${lag} s, within the RPO of ${rpo} s"
    fi
  fi

  confirm_named "$env_name" "$confirmed" "fail $env_name over" "promote $replica in $dr and fail $env_name over"

  step "2/8 promoting $replica in $dr to a standalone primary (and the cache's secondary, where there is one)" \
    "5-15 minutes (AWS: a few minutes, longer with a large backlog; a Global Datastore's failover, minutes)"
  promote_standby_data

  step "3/8 setting dr.active in environments/$env_name.json: $dr serves" "seconds"
  x stackinfo set-dr "$ENVIRONMENTS_DIR" "$env_name" active=true ||
    die "$replica is promoted, but dr.active could not be set: set \"active\": true in the dr section of environments/$env_name.json by hand and run this again (it resumes at step 4/8)"

  synth_failed_over
fi

step "5/8 applying $env_name's resources in $dr (NAT gateways, endpoints, the promoted database, its RDS Proxy, the application tier)" \
  "15-25 minutes, in parallel (RDS Proxy about 10, a new cache 10-20, load balancers a few; Multi-AZ converts online)"
# Only the DR region's resources, without refreshing the rest: the primary region's cannot be read.
if $DRY_RUN; then
  targets=("-target=<every resource of the stack in $dr: stackinfo dr-targets>")
else
  mapfile -t targets < <(stackinfo dr-targets "$OUTDIR/stacks/$env_name/cdk.tf.json")
  [[ ${#targets[@]} -gt 0 ]] || die "no resources in $dr found in $env_name's stack: nothing was applied"
fi
tf "$env_name" plan -refresh=false -input=false -out=failover.tfplan "${targets[@]}"
tf "$env_name" apply -input=false failover.tfplan

step "6/8 checking the promoted database and its RDS Proxy" "seconds"
require_promoted "$dr" "$replica" available
require_proxy_available "$dr" "$replica" # the proxy is named after the instance it fronts

step "7/8 starting the services in $dr at the configured counts" "3-5 minutes (tasks pull, start and pass the load balancers' checks)"
start_standby_services "$env_name"

step "8/8 checking that the API answers from $dr" "1-5 minutes (Route 53 moves the API's name once $dr has healthy targets)"
check_api_answers "$dr"
dry_run_done
info "$env_name serves from $dr; Terraform uses the state's copy there (do not apply the whole stack: docs/DEPLOYMENT.md)"
info "commit environments/$env_name.json (dr.active: true), so every later synth and plan is of the failed-over $env_name"
