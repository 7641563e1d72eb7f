"""Facts the wrapper scripts need, without jsii or the provider import (they answer at once).

python -m roi_tf.tools.stackinfo allowed-account-ids environments prod   # from the validated configuration
python -m roi_tf.tools.stackinfo failover environments prod   # failover.sh's facts: production, DR region, RPO, ...
python -m roi_tf.tools.stackinfo protected cdktf.out/stacks/prod/cdk.tf.json
python -m roi_tf.tools.stackinfo artifact-targets cdktf.out/stacks/prod/cdk.tf.json   # -target=... per line
python -m roi_tf.tools.stackinfo database cdktf.out/stacks/prod/cdk.tf.json   # the writable RDS instance, its region
python -m roi_tf.tools.stackinfo dr-targets cdktf.out/stacks/prod/cdk.tf.json   # -target=... in the DR region
python -m roi_tf.tools.stackinfo set-dr environments prod active=true   # the runbooks' switches (only those change)
python -m roi_tf.tools.stackinfo retire CURRENT.json TARGET.json   # failback-database.sh: what leaves the state
python -m roi_tf.tools.stackinfo state-compare dr.tfstate primary.tfstate   # failback.sh: which is newer, and an MD5
python -m roi_tf.tools.stackinfo region cdktf.out/stacks/prod/cdk.tf.json     # the stack's primary region
python -m roi_tf.tools.stackinfo state-bucket cdktf.out/stacks/state-prod/cdk.tf.json   # its backend's bucket
terraform show -json tfplan | python -m roi_tf.tools.stackinfo plan-summary      # counts, data at risk named loudly
terraform output -json | python -m roi_tf.tools.stackinfo validation environments prod STACK   # deploy.sh's checks
terraform output -json | python -m roi_tf.tools.stackinfo dr-start environments prod   # failover.sh: what to start
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from roi_tf.modules.protection import DATA_HOLDING


def provider_of(stack: Mapping[str, Any], body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The AWS provider a resource uses: its ``provider`` (``aws.<alias>``), or the one without an alias."""
    alias = body.get("provider", "aws").removeprefix("aws").removeprefix(".") or None
    (provider,) = [p for p in stack.get("provider", {}).get("aws", []) if p.get("alias") == alias]
    return provider


def default_provider(stack: Mapping[str, Any]) -> Mapping[str, Any]:
    """The stack's AWS provider without an alias: its primary region's."""
    return provider_of(stack, {})


def allowed_account_ids(stack: Mapping[str, Any]) -> list[str]:
    """The accounts a synthesized stack's default provider may be applied to (empty: any)."""
    return list(default_provider(stack).get("allowed_account_ids", []))


def protected_resources(stack: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(address, what destroying it would lose) of every resource Terraform refuses to destroy."""
    return [
        (f"{rtype}.{name}", DATA_HOLDING.get(rtype, "protected"))
        for rtype, resources in sorted(stack.get("resource", {}).items())
        for name, body in sorted(resources.items())
        if body.get("lifecycle", {}).get("prevent_destroy")
    ]


# The stores CI pushes to before the services and the function can start: the image repositories and the bucket of
# the event processor's package, found through the stack outputs that name them.
ARTIFACT_OUTPUTS = (
    "api_repository_url",
    "ml_repository_url",
    "event_processor_repository_url",
    "artifacts_bucket_name",
)
# Resources that configure a store (each references it); anything that merely uses it (a function) is not one.
CONFIGURES = {
    "aws_ecr_repository": "aws_ecr_lifecycle_policy",
    "aws_s3_bucket": "aws_s3_bucket_",
    "aws_ecr_replication_configuration": "aws_ecr_replication_configuration",  # configures nothing else
}
REFERENCE = re.compile(r"^\$\{(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\.[a-z_]+\}$")


def artifact_targets(stack: Mapping[str, Any]) -> list[str]:
    """Addresses of the artifact stores and what configures them, for a first, targeted apply."""
    stores = []
    for output in ARTIFACT_OUTPUTS:
        match = REFERENCE.match(stack["output"][output]["value"])
        if match is None:
            raise ValueError(f"output {output} does not name a resource: {stack['output'][output]['value']}")
        stores.append((match[1], match[2]))
    # Image replication (the DR pilot light) copies only images pushed after it exists, into repositories that
    # exist by then: both go first too, with the copies' configuration.
    for name, body in stack.get("resource", {}).get("aws_ecr_replication_configuration", {}).items():
        stores.append(("aws_ecr_replication_configuration", name))
        stores += [tuple(address.split(".")) for address in body.get("depends_on", [])]
    addresses = {f"{rtype}.{name}" for rtype, name in stores}
    for store_type, store in stores:
        for rtype, resources in stack.get("resource", {}).items():
            if not rtype.startswith(CONFIGURES[store_type]):
                continue
            for name, body in resources.items():
                if f"${{{store_type}.{store}." in json.dumps(body):
                    addresses.add(f"{rtype}.{name}")
    return sorted(addresses)


def primary_database(stack: Mapping[str, Any]) -> tuple[str, str] | None:
    """(identifier, region) of the RDS instance that takes the writes, if the stack has one: the primary, or once
    failed over (dr.active) the promoted replica in the DR region, which then stands beside the lost primary."""
    standalone = [
        (body["identifier"], str(provider_of(stack, body)["region"]))
        for body in stack.get("resource", {}).get("aws_db_instance", {}).values()
        if "replicate_source_db" not in body
    ]
    promoted = [found for found in standalone if found[1] != default_provider(stack)["region"]]
    serving = promoted or standalone
    if len(serving) > 1:
        raise ValueError(f"more than one primary database: {[identifier for identifier, _ in serving]}")
    return serving[0] if serving else None


def dr_targets(stack: Mapping[str, Any]) -> list[str]:
    """Addresses of every resource in the DR region (provider ``aws.dr``): what a failover applies, while the
    primary region's resources cannot be read."""
    return sorted(
        f"{rtype}.{name}"
        for rtype, resources in stack.get("resource", {}).items()
        for name, body in resources.items()
        if body.get("provider") == "aws.dr"
    )


def compare_states(dr_copy: Path, primary: Path) -> tuple[str, str]:
    """Which of two copies of one Terraform state is newer, for failback.sh: ("copy", md5 of the DR copy) when the
    DR copy is newer (same lineage, higher serial: applied during the outage), ("current", md5) when both are the
    same state, ("primary-newer", md5) when the primary's is. A different lineage or a same serial with different
    contents is not one state's history: ValueError, and nothing is copied."""
    texts = {name: path.read_bytes() for name, path in (("dr", dr_copy), ("primary", primary))}
    states = {name: json.loads(text) for name, text in texts.items()}
    lineage = {name: state.get("lineage") for name, state in states.items()}
    if lineage["dr"] != lineage["primary"] or not lineage["dr"]:
        raise ValueError(f"the copies are not one state (lineage {lineage['dr']} in the DR copy, {lineage['primary']} "
                         "in the primary): copy nothing, compare them by hand")  # fmt: skip
    serial = {name: int(state["serial"]) for name, state in states.items()}
    md5 = hashlib.md5(texts["dr"]).hexdigest()  # noqa: S324 (the digest Terraform's DynamoDB lock table checks)
    if serial["dr"] > serial["primary"]:
        return "copy", md5
    if serial["dr"] < serial["primary"]:
        return "primary-newer", md5
    if states["dr"] != states["primary"]:
        raise ValueError(f"both copies have serial {serial['dr']} but differ: copy nothing, compare them by hand")
    return "current", md5


DR_SECTION = re.compile(r'"dr"\s*:\s*\{')
# The dr section's switches the runbook scripts set (failover.sh: active; failback-database.sh: both).
DR_SWITCHES = ("active", "failback_replica")


def set_dr(path: Path, switch: str, value: bool) -> bool:
    """Set one of the dr section's switches (``DR_SWITCHES``) in an environment file, changing only that value (the
    file is hand-formatted and reviewed as a one-line diff); False if it already had that value. Every candidate
    edit is parsed back and kept only if the document equals the original with that one value changed."""
    if switch not in DR_SWITCHES:
        raise ValueError(f"dr.{switch} is not a switch the scripts set ({', '.join(DR_SWITCHES)})")
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data.get("dr"), dict):
        raise ValueError(f"{path}: no dr section (the pilot light) to switch")
    if data["dr"].get(switch, False) == value:
        return False
    expected = {**data, "dr": {**data["dr"], switch: value}}
    literal = "true" if value else "false"
    existing = re.compile(rf'("{switch}"\s*:\s*)(true|false)')
    candidates = [text[: m.start()] + m[1] + literal + text[m.end() :] for m in existing.finditer(text)]
    for m in DR_SECTION.finditer(text):
        candidates += [f'{text[: m.end()]}"{switch}": {literal}{comma}{text[m.end() :]}' for comma in (", ", "")]
    for candidate in candidates:
        try:
            if json.loads(candidate) == expected:
                path.write_text(candidate, encoding="utf-8")
                return True
        except json.JSONDecodeError:
            continue
    raise ValueError(f"{path}: could not set dr.{switch} without changing anything else")


def retirements(current: Mapping[str, Any], target: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What must leave Terraform's state, and how, before ``target`` (a synthesized stack) can be applied over the
    state of ``current`` without Terraform destroying or replacing anything that holds data (failback-database.sh):

    - ("deregister", "<region> <proxy> <identifier>"): an RDS Proxy target on an instance that is retired, first (a
      renamed instance would stay the proxy's target);
    - ("rename", "<region> <identifier> <absent|replica>"): an RDS instance the target no longer has (absent), or
      has as a replica where it is standalone now (RDS cannot make a standalone instance a replica: the target's is
      a new one, under the same name); it keeps its data and deletion protection under a new name, to be deleted by
      hand. The last word lets a run that stopped tell the new replica from the instance it replaces;
    - ("delete-cache", "<region> <replication group id>"): a Redis the target no longer has (the one a failover made
      in the DR region): deleted with a final snapshot, which keeps what it held (its queues), so that the next
      failover can make it again under its name;
    - ("forget", "<address> <what it holds>"): those instances and caches, the proxy targets, and every other
      protected resource the target no longer has (backups replication): ``terraform state rm``, kept in AWS.
    """
    resources = current.get("resource", {})
    wanted = target.get("resource", {})
    instances = resources.get("aws_db_instance", {})
    retired = {
        name: body
        for name, body in instances.items()
        if name not in wanted.get("aws_db_instance", {})
        or ("replicate_source_db" not in body and "replicate_source_db" in wanted["aws_db_instance"][name])
    }
    lines: list[tuple[str, str]] = []
    forget: list[tuple[str, str]] = []
    proxies = resources.get("aws_db_proxy", {})
    for name, body in sorted(resources.get("aws_db_proxy_target", {}).items()):
        match = REFERENCE.match(body["db_instance_identifier"])
        if match and match[1] == "aws_db_instance" and match[2] in retired:
            proxy = REFERENCE.match(body["db_proxy_name"])
            proxy_name = proxies[proxy[2]]["name"] if proxy else body["db_proxy_name"]
            instance = retired[match[2]]
            lines.append(
                ("deregister", f"{provider_of(current, body)['region']} {proxy_name} {instance['identifier']}")
            )
            forget.append((f"aws_db_proxy_target.{name}", "the proxy's registration of a retired instance"))
    for name, body in sorted(retired.items()):
        role = "replica" if name in wanted.get("aws_db_instance", {}) else "absent"
        lines.append(("rename", f"{provider_of(current, body)['region']} {body['identifier']} {role}"))
        forget.append((f"aws_db_instance.{name}", f"{DATA_HOLDING['aws_db_instance']} (kept, renamed)"))
    for rtype, items in sorted(resources.items()):
        for name, body in sorted(items.items()):
            if rtype == "aws_db_instance" or name in wanted.get(rtype, {}):
                continue
            if rtype == "aws_elasticache_replication_group":
                lines.append(("delete-cache", f"{provider_of(current, body)['region']} {body['replication_group_id']}"))
                forget.append((f"{rtype}.{name}", f"{DATA_HOLDING[rtype]} (in its final snapshot)"))
            elif body.get("lifecycle", {}).get("prevent_destroy"):
                forget.append((f"{rtype}.{name}", f"{DATA_HOLDING.get(rtype, 'protected')} (kept)"))
    return lines + [("forget", f"{address} {what}") for address, what in forget]


def plan_summary(plan: Mapping[str, Any]) -> list[str]:
    """What a saved plan (``terraform show -json``) does: one count line, then a line per data-holding resource it
    would replace or destroy (what it holds named), so a reviewer at 2 a.m. cannot miss it."""
    counts = {"create": 0, "update": 0, "delete": 0, "replace": 0}
    at_risk = []
    for change in plan.get("resource_changes", []):
        actions = change["change"]["actions"]
        if sorted(actions) == ["create", "delete"]:
            counts["replace"] += 1
            verb = "REPLACES"
        elif actions in (["create"], ["update"], ["delete"]):
            counts[actions[0]] += 1
            verb = "DESTROYS" if actions == ["delete"] else ""
        else:
            continue  # no-op, read
        if verb and change.get("mode", "managed") == "managed" and change["type"] in DATA_HOLDING:
            at_risk.append(f"!!! {verb} {change['address']}: {DATA_HOLDING[change['type']]}")
    summary = (
        f"plan: {counts['create']} to add, {counts['update']} to change, {counts['delete']} to destroy, "
        f"{counts['replace']} to replace"
    )
    return [summary, *at_risk]


def failover_facts(config: Any) -> list[tuple[str, str]]:
    """What scripts/failover.sh and failback.sh need from the configuration, one fact per line (one Python start for
    all): whether the environment is a production one with a pilot light and is failed over already, its regions,
    the RPO in seconds, the backup retention the promoted database keeps, the DR database's name, where its state
    and the state's copy live, and the accounts it may be applied to ("-": none)."""
    from roi_tf.config import PRODUCTION_ENVIRONMENTS
    from roi_tf.naming import kms_alias, resource_name, state_key

    return [
        ("production", str(config.name in PRODUCTION_ENVIRONMENTS).lower()),
        ("pilot_light", str(config.dr.enabled).lower()),
        ("dr_region", config.dr_region),
        ("rpo_seconds", str(config.dr.rpo_minutes * 60)),
        ("backup_days", str(config.database.backup_retention_days)),
        ("active", str(config.dr.active).lower()),
        ("failback_replica", str(config.dr.failback_replica).lower()),
        ("multi_az", str(config.database.multi_az).lower()),
        ("region", config.region),
        ("state_bucket", config.state.bucket),
        ("state_key", state_key(config.name)),
        ("lock_table", config.state.lock_table),
        ("state_kms_alias", kms_alias(config.name, "tfstate")),
        ("dr_state_bucket", config.dr.state_bucket or "-"),
        # The cross-region replica (the database's module names it so), promoted on failover.
        (
            "dr_database",
            f"{resource_name(config.name, 'postgres')}-dr" if config.database.cross_region_replica else "-",
        ),
        ("database", resource_name(config.name, "postgres")),  # the primary region's instance
        # The cache's Global Datastore (its id is AWS's prefix plus this), whose secondary a failover promotes.
        ("cache_global", resource_name(config.name, "redis") if config.dr.enabled and config.dr.cache_replica else "-"),
        ("allowed_account_ids", " ".join(config.allowed_account_ids) or "-"),
    ]


def validation_checks(outputs: Mapping[str, Any], config: Any) -> list[tuple[str, str]]:
    """(check, argument) pairs deploy.sh runs after an apply, from the stack's outputs (``terraform output -json``)
    and the environment's config: the web app through CloudFront, the API at its load balancer where the internet
    may reach it (staging and prod admit only CloudFront there: their API health shows in the ECS services, which
    are stable only once their targets pass the load balancer's health checks), the services, the database, the
    alarms."""
    value = {name: output["value"] for name, output in outputs.items()}
    lb = config.compute.load_balancer
    checks = [("url", f"{value['cdn_url']}/")]
    if lb.ingress == "internet":
        host = lb.domain_name or value["api_load_balancer_dns_name"]
        scheme = "http" if lb.plain_http else "https"
        checks.append(("url", f"{scheme}://{host}{config.compute.api.health_check_path}"))
    checks.append(("services", f"{value['ecs_cluster_name']} {value['api_service_name']} {value['ml_service_name']}"))
    checks.append(("alarms", f"roi-systems-{config.name}-"))
    return checks


def dr_start(outputs: Mapping[str, Any], config: Any) -> list[tuple[str, str]]:
    """What failover.sh starts in the DR region once the failed-over stack is applied, and how it sees that the API
    answers there: its region and cluster, each service with the task definition Terraform registered there and
    the configured count, and the URLs to try (through CloudFront: any answer below 500, since CloudFront answers
    502-504 itself when the origin does not; the API's own health path where the internet may reach it)."""
    value = {name: output["value"] for name, output in outputs.items()}
    lines = [("region", config.dr_region), ("cluster", value["dr_ecs_cluster_name"])]
    for service in ("api", "ml"):
        count = getattr(config.compute, service).desired_count
        lines.append(
            ("service", f"{value[f'dr_{service}_service_name']} {value[f'dr_{service}_task_definition_arn']} {count}")
        )
    if config.cdn.api_origin:
        lines.append(("origin", f"{value['cdn_url']}{config.cdn.api_path_pattern.removesuffix('*')}"))
    lb = config.compute.load_balancer
    if lb.ingress == "internet" and lb.domain_name:
        lines.append(("url", f"https://{lb.domain_name}{config.compute.api.health_check_path}"))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # The configuration (and jsonschema) is imported only by the commands that read it: the scripts call the others
    # after every synth.
    if args[:1] in (["allowed-account-ids"], ["failover"]) and len(args) == 3:
        from roi_tf.config import ConfigError, load_environments

        try:
            (config,) = load_environments([args[2]], Path(args[1])).values()
        except ConfigError as error:
            for problem in error.problems:
                print(f"error: {problem}", file=sys.stderr)
            return 2
        if args[0] == "allowed-account-ids":
            print(" ".join(config.allowed_account_ids))
        else:
            for fact, value in failover_facts(config):
                print(f"{fact} {value}")
        return 0
    if args[:1] == ["protected"] and len(args) == 2:
        for address, loss in protected_resources(json.loads(Path(args[1]).read_text())):
            print(f"{address}  ({loss})")
        return 0
    if args[:1] == ["dr-start"] and len(args) == 3:
        from roi_tf.config import load_environments

        (config,) = load_environments([args[2]], Path(args[1])).values()
        for name, argument in dr_start(json.load(sys.stdin), config):
            print(f"{name} {argument}")
        return 0
    if args[:1] == ["validation"] and len(args) == 4:
        from roi_tf.config import load_environments

        (config,) = load_environments([args[2]], Path(args[1])).values()
        database = primary_database(json.loads(Path(args[3]).read_text()))
        # One call for all the facts (each call starts a Python): the region first, the database last.
        checks = [("region", config.region), *validation_checks(json.load(sys.stdin), config)]
        for check, argument in [*checks, *([("database", " ".join(database))] if database else [])]:
            print(f"{check} {argument}")
        return 0
    if args[:1] == ["state-bucket"] and len(args) == 2:
        print(json.loads(Path(args[1]).read_text())["terraform"]["backend"]["s3"]["bucket"])
        return 0
    if args[:1] == ["region"] and len(args) == 2:
        print(default_provider(json.loads(Path(args[1]).read_text()))["region"])
        return 0
    if args[:1] == ["database"] and len(args) == 2:
        stack = json.loads(Path(args[1]).read_text())
        database = primary_database(stack)
        print(" ".join(database) if database else "")
        return 0
    if args[:1] == ["state-compare"] and len(args) == 3:
        try:
            verdict, md5 = compare_states(Path(args[1]), Path(args[2]))
        except (OSError, ValueError, KeyError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"{verdict} {md5}")
        return 0
    if args[:1] == ["dr-targets"] and len(args) == 2:
        for address in dr_targets(json.loads(Path(args[1]).read_text())):
            print(f"-target={address}")
        return 0
    if args[:1] == ["set-dr"] and len(args) >= 4:
        # set-dr DIR ENV SWITCH=true|false...: each switch in turn, each a one-value change.
        path = Path(args[1]) / f"{args[2]}.json"
        try:
            for setting in args[3:]:
                switch, _, value = setting.partition("=")
                if value not in ("true", "false"):
                    raise ValueError(f"{setting!r}: expected <switch>=true or <switch>=false")
                changed = set_dr(path, switch, value == "true")
                print(f"{path}: dr.{switch} {'set to' if changed else 'was already'} {value}", file=sys.stderr)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    if args[:1] == ["retire"] and len(args) == 3:
        current, target = (json.loads(Path(arg).read_text()) for arg in args[1:])
        for action, argument in retirements(current, target):
            print(f"{action} {argument}")
        return 0
    if args[:1] == ["plan-summary"] and len(args) == 1:
        for line in plan_summary(json.load(sys.stdin)):
            print(line)
        return 0
    if args[:1] == ["artifact-targets"] and len(args) == 2:
        for address in artifact_targets(json.loads(Path(args[1]).read_text())):
            print(f"-target={address}")
        return 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
