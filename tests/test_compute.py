"""The compute module: ECR, the cluster, the API and ML services, their load balancers, scaling and IAM.

Event processing (SQS + Lambda) is in tests/test_events.py, GPU capacity in tests/test_gpu.py; the security-group
graph in tests/test_flows.py, every IAM grant against AWS's data in tests/test_iam_grants.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import Stack
from roi_tf.config import EnvironmentConfig, ServiceConfig

SERVICES = ("api", "ml")


@pytest.fixture
def stack(stacks: dict[str, Stack], env: str) -> Stack:
    """The stack without the pilot light's copy of this module (tests/test_dr_compute.py compares the two)."""
    return stacks[env].without_standby()


@pytest.fixture
def deployed(deployed: tuple[Stack, EnvironmentConfig]) -> tuple[Stack, EnvironmentConfig]:
    stack, config = deployed
    return stack.without_standby(), config


def repository(stack: Stack, config: EnvironmentConfig, image: str) -> tuple[str, dict[str, Any]]:
    """The primary region's repository of an image (prod's pilot light has a copy of each in the DR region)."""
    return stack.one_primary("aws_ecr_repository", name=f"roi-systems-{config.name}-apps/{image}")


def redis_app_user(stack: Stack, config: EnvironmentConfig) -> tuple[str, dict[str, Any]]:
    """The cache's application user in the primary region (a Global Datastore secondary has its own)."""
    return stack.one_primary("aws_elasticache_user", user_name=f"roi-systems-{config.name}-redis-app")


def primary_cache(stack: Stack) -> tuple[str, dict[str, Any]]:
    """The cache the application uses: the replication group in the primary region."""
    return stack.one_primary("aws_elasticache_replication_group")


def service(stack: Stack, config: EnvironmentConfig, which: str) -> tuple[str, dict[str, Any]]:
    return stack.one("aws_ecs_service", name=f"roi-systems-{config.name}-{which}")


def task_definition(stack: Stack, config: EnvironmentConfig, which: str) -> dict[str, Any]:
    _, body = stack.one("aws_ecs_task_definition", family=f"roi-systems-{config.name}-{which}")
    return body


def containers(stack: Stack, config: EnvironmentConfig, which: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in json.loads(task_definition(stack, config, which)["container_definitions"])}


def service_config(config: EnvironmentConfig, which: str) -> ServiceConfig:
    return getattr(config.compute, which)


def load_balancer(stack: Stack, internal: bool) -> tuple[str, dict[str, Any]]:
    return stack.one("aws_lb", internal=internal)


def listeners(stack: Stack, lb_name: str) -> dict[int, dict[str, Any]]:
    return {
        body["port"]: body
        for body in stack.resources("aws_lb_listener").values()
        if body["load_balancer_arn"] == Stack.ref("aws_lb", lb_name, "arn")
    }


def role_statements(stack: Stack, role_arn: str) -> dict[str, dict[str, Any]]:
    role_name = role_arn.split(".")[1]
    (policy,) = [p for p in stack.resources("aws_iam_role_policy").values() if role_name in p["role"]]
    return {s["sid"]: s for s in stack.data("aws_iam_policy_document")[policy["policy"].split(".")[2]]["statement"]}


# --- ECR --------------------------------------------------------------------------------------------


def test_repositories_are_immutable_scanned_encrypted_and_keep_the_last_n_images(stack: Stack, config) -> None:
    """Guards mutable tags (a tag silently re-pointed), unscanned images, AWS-owned encryption, endless images, in
    the primary region and, with a pilot light, in the DR region's copies (the same settings, the DR key)."""
    keys = {None: stack.kms_key(f"alias/roi-systems-{config.name}-storage")[0]}
    if config.dr.enabled:
        keys["aws.dr"] = stack.kms_key(f"alias/roi-systems-{config.name}-dr-storage")[0]
    repositories = stack.resources("aws_ecr_repository")
    assert sorted((r["name"], str(r.get("provider"))) for r in repositories.values()) == sorted(
        (f"roi-systems-{config.name}-apps/{image}", str(provider))
        for image in ("api", "ml", "event-processor")
        for provider in keys
    )
    for name, repo in repositories.items():
        assert repo["image_tag_mutability"] == "IMMUTABLE", name
        assert repo["image_scanning_configuration"] == {"scan_on_push": True}, name
        assert repo["encryption_configuration"] == [
            {"encryption_type": "KMS", "kms_key": Stack.ref("aws_kms_key", keys[repo.get("provider")], "arn")}
        ], name
        assert repo["force_delete"] is (config.name == "dev"), name
        (lifecycle,) = [p for p in stack.resources("aws_ecr_lifecycle_policy").values()
                        if p["repository"] == Stack.ref("aws_ecr_repository", name, "name")]  # fmt: skip
        assert lifecycle.get("provider") == repo.get("provider"), name
        (rule,) = json.loads(lifecycle["policy"])["rules"]
        assert rule["selection"] == {
            "tagStatus": "any",
            "countType": "imageCountMoreThan",
            "countNumber": config.compute.image_keep_count,
        }
        assert rule["action"] == {"type": "expire"}


def test_images_replicate_to_the_dr_region_exactly_where_a_pilot_light_is_configured(stack: Stack, config) -> None:
    replications = list(stack.resources("aws_ecr_replication_configuration").values())
    assert len(replications) == int(config.dr.enabled)
    for replication in replications:
        (rule,) = replication["replication_configuration"]["rule"]
        assert rule["destination"] == [
            {"region": config.dr_region, "registry_id": "${data.aws_caller_identity.current.account_id}"}
        ]
        # Only this environment's repositories (the registry may hold others): the prefix ends at the slash.
        assert rule["repository_filter"] == [
            {"filter": f"roi-systems-{config.name}-apps/", "filter_type": "PREFIX_MATCH"}
        ]
        copies = [
            f"aws_ecr_repository.{n}" for n, r in stack.resources("aws_ecr_repository").items() if r.get("provider")
        ]
        assert sorted(replication["depends_on"]) == sorted(copies) and len(copies) == 3


# --- cluster ----------------------------------------------------------------------------------------


def test_cluster_has_insights_audited_exec_and_fargate_spot_and_gpu_where_configured(stack: Stack, config) -> None:
    (cluster_name, cluster), *more = stack.resources("aws_ecs_cluster").items()
    assert not more
    assert cluster["setting"] == [{"name": "containerInsights", "value": "enabled"}]
    logs_key, _ = stack.kms_key(f"alias/roi-systems-{config.name}-logs")
    exec_config = cluster["configuration"]["execute_command_configuration"]
    assert exec_config["logging"] == "OVERRIDE"
    assert exec_config["kms_key_id"] == Stack.ref("aws_kms_key", logs_key, "arn")
    group, body = stack.one("aws_cloudwatch_log_group", name=f"/roi-systems/{config.name}/ecs-exec")
    assert exec_config["log_configuration"] == {
        "cloud_watch_log_group_name": Stack.ref("aws_cloudwatch_log_group", group, "name"),
        "cloud_watch_encryption_enabled": True,
    }
    assert body["kms_key_id"] == Stack.ref("aws_kms_key", logs_key, "arn")
    (providers,) = stack.resources("aws_ecs_cluster_capacity_providers").values()
    assert providers["cluster_name"] == Stack.ref("aws_ecs_cluster", cluster_name, "name")
    gpu = [Stack.ref("aws_ecs_capacity_provider", n, "name") for n in stack.resources("aws_ecs_capacity_provider")]
    assert providers["capacity_providers"] == ["FARGATE", "FARGATE_SPOT", *gpu]
    assert len(gpu) == int(config.compute.gpu_training.enabled)
    assert providers["default_capacity_provider_strategy"] == [{"capacity_provider": "FARGATE", "base": 1, "weight": 1}]


@pytest.mark.parametrize(("env", "gpu"), [("dev", False), ("staging", False), ("prod", True)], indirect=["env"])
def test_gpu_training_capacity_exists_only_where_enabled(stack: Stack, gpu: bool) -> None:
    assert bool(stack.resources("aws_autoscaling_group")) is gpu
    assert bool(stack.resources("aws_launch_template")) is gpu


# --- services ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", SERVICES)
def test_task_definition_sizes_and_runs_non_root_read_only_with_health_check_and_xray(stack, config, which) -> None:
    """Guards the task size, the hardening of the container and the tracing sidecar."""
    svc = service_config(config, which)
    definition = task_definition(stack, config, which)
    assert (definition["cpu"], definition["memory"]) == (str(svc.task_cpu), str(svc.task_memory_mib))
    assert definition["requires_compatibilities"] == ["FARGATE"] and definition["network_mode"] == "awsvpc"
    assert definition["skip_destroy"] is True, "old revisions stay, for rollbacks"
    app = containers(stack, config, which)["app"]
    repo, _ = repository(stack, config, which)
    assert app["image"] == f"${{aws_ecr_repository.{repo}.repository_url}}:${{var.{which}_image_tag}}"
    assert app["user"] == "1000:1000" and app["readonlyRootFilesystem"] is True
    assert app["portMappings"] == [{"containerPort": svc.container_port, "protocol": "tcp"}]
    assert app["healthCheck"]["command"] == [
        "CMD-SHELL",
        f"curl -fsS http://localhost:{svc.container_port}{svc.health_check_path} || exit 1",
    ]
    assert app["mountPoints"] == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]  # noqa: S108
    group, body = stack.one("aws_cloudwatch_log_group", name=f"/roi-systems/{config.name}/ecs/{which}")
    assert app["logConfiguration"]["options"]["awslogs-group"] == Stack.ref("aws_cloudwatch_log_group", group, "name")
    assert body["retention_in_days"] == config.compute.log_retention_days
    assert body["kms_key_id"].startswith("${aws_kms_key.")
    xray = containers(stack, config, which)["xray-daemon"]
    assert xray["image"].startswith("public.ecr.aws/xray/aws-xray-daemon:3.")
    assert xray["essential"] is False and xray["readonlyRootFilesystem"] is True and xray["user"] == "1337"
    environment = {e["name"]: e["value"] for e in app["environment"]}
    assert environment["AWS_XRAY_DAEMON_ADDRESS"] == "localhost:2000"


@pytest.mark.parametrize("which", SERVICES)
def test_containers_are_exactly_the_contract_the_images_are_built_for(deployed, which) -> None:
    """Every field of both containers, so that nothing drifts unseen: the health check's timing (a start period
    the application needs), the sidecar's UDP port (the X-Ray SDK sends over UDP), the log region (the group is in
    the stack's region), the platform the images are built for, and each environment variable's exact value."""
    stack, config = deployed
    svc = service_config(config, which)
    definition = task_definition(stack, config, which)
    assert definition["runtime_platform"] == {"operating_system_family": "LINUX", "cpu_architecture": "X86_64"}
    assert definition["volume"] == [{"name": "tmp"}]
    group, _ = stack.one("aws_cloudwatch_log_group", name=f"/roi-systems/{config.name}/ecs/{which}")
    repo, _ = repository(stack, config, which)

    def logs(prefix: str) -> dict[str, Any]:
        return {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": Stack.ref("aws_cloudwatch_log_group", group, "name"),
                "awslogs-region": config.region,
                "awslogs-stream-prefix": prefix,
            },
        }

    models = {"MODELS_BUCKET": Stack.ref("aws_s3_bucket", stack.bucket_named("ml-artifacts"), "bucket")}
    environment = {
        "AWS_REGION": config.region,
        "AWS_XRAY_DAEMON_ADDRESS": "localhost:2000",
        # The name the X-Ray group and sampling rule select (tests/test_monitoring.py).
        "AWS_XRAY_TRACING_NAME": f"roi-systems-{config.name}-{which}",
        **(api_environment(stack, config) if which == "api" else models),
    }
    secrets = []
    if which == "api":
        secret, _ = stack.one("aws_secretsmanager_secret", name=f"roi-systems/{config.name}/api/jwt-secret")
        secrets = [{"name": "JWT_SECRET", "valueFrom": Stack.ref("aws_secretsmanager_secret", secret, "arn")}]
    assert json.loads(definition["container_definitions"]) == [
        {
            "name": "app",
            "image": f"${{aws_ecr_repository.{repo}.repository_url}}:${{var.{which}_image_tag}}",
            "essential": True,
            "user": "1000:1000",
            "readonlyRootFilesystem": True,
            "portMappings": [{"containerPort": svc.container_port, "protocol": "tcp"}],
            "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
            "secrets": secrets,
            "healthCheck": {
                "command": [
                    "CMD-SHELL",
                    f"curl -fsS http://localhost:{svc.container_port}{svc.health_check_path} || exit 1",
                ],
                "interval": 30,
                "timeout": 5,
                "retries": 3,
                "startPeriod": 60,
            },
            "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}],  # noqa: S108
            "linuxParameters": {"initProcessEnabled": True},
            "logConfiguration": logs("app"),
        },
        {
            "name": "xray-daemon",
            "image": "public.ecr.aws/xray/aws-xray-daemon:3.3.14",
            "essential": False,
            "user": "1337",
            "readonlyRootFilesystem": True,
            "cpu": 32,
            "memoryReservation": 256,
            "portMappings": [{"containerPort": 2000, "protocol": "udp"}],
            "logConfiguration": logs("xray"),
        },
    ]


def api_environment(stack: Stack, config: EnvironmentConfig) -> dict[str, str]:
    """What the API is told, each value from the resource it names (written out here, not derived from the code)."""
    (proxy,) = stack.resources("aws_db_proxy")
    (primary,) = [n for n, b in stack.resources("aws_db_instance").items() if "replicate_source_db" not in b]
    redis_name, redis = primary_cache(stack)
    app_user, _ = redis_app_user(stack, config)
    queue, _ = stack.one("aws_sqs_queue", name=f"roi-systems-{config.name}-events")
    lb = config.compute.load_balancer
    if lb.domain_name:
        ml_url = f"https://ml.{lb.domain_name}"
    else:
        internal, _ = load_balancer(stack, internal=True)
        ml_url = f"http://{Stack.ref('aws_lb', internal, 'dns_name')}"
    environment = {
        "DATABASE_HOST": Stack.ref("aws_db_proxy", proxy, "endpoint"),
        "DATABASE_PORT": str(stack.resources("aws_db_instance")[primary]["port"]),
        "DATABASE_NAME": config.database.database_name,
        "DATABASE_USER": config.database.master_username,
        "REDIS_HOST": Stack.ref("aws_elasticache_replication_group", redis_name, "configuration_endpoint_address"),
        "REDIS_PORT": str(redis["port"]),
        "REDIS_USER": Stack.ref("aws_elasticache_user", app_user, "user_name"),
        "DOCUMENTS_BUCKET": Stack.ref("aws_s3_bucket", stack.bucket_named("documents"), "bucket"),
        "EVENTS_QUEUE_URL": Stack.ref("aws_sqs_queue", queue, "url"),
        "ML_SERVICE_URL": ml_url,
    }
    if config.sessions.enabled:
        table, _ = stack.one("aws_dynamodb_table", name=f"roi-systems-{config.name}-sessions")
        environment["SESSIONS_TABLE"] = Stack.ref("aws_dynamodb_table", table, "name")
    return environment


def test_api_gets_its_endpoints_from_the_database_module_and_its_secret_from_secrets_manager(stack, config) -> None:
    """Guards the wiring: RDS Proxy (not the instance), Redis's configuration endpoint and IAM user, the secret by
    ARN through the execution role (never a value in the task definition)."""
    app = containers(stack, config, "api")["app"]
    environment = {e["name"]: e["value"] for e in app["environment"]}
    (proxy,) = stack.resources("aws_db_proxy")
    redis, _ = primary_cache(stack)
    app_user, _ = redis_app_user(stack, config)
    assert environment["DATABASE_HOST"] == Stack.ref("aws_db_proxy", proxy, "endpoint")
    assert environment["DATABASE_USER"] == config.database.master_username
    assert environment["REDIS_HOST"] == Stack.ref(
        "aws_elasticache_replication_group", redis, "configuration_endpoint_address"
    )
    assert environment["REDIS_USER"] == Stack.ref("aws_elasticache_user", app_user, "user_name")
    secret, _ = stack.one("aws_secretsmanager_secret", name=f"roi-systems/{config.name}/api/jwt-secret")
    assert app["secrets"] == [
        {"name": "JWT_SECRET", "valueFrom": Stack.ref("aws_secretsmanager_secret", secret, "arn")}
    ]
    lb = config.compute.load_balancer
    expected_ml = f"https://ml.{lb.domain_name}" if lb.domain_name else None
    if expected_ml:
        assert environment["ML_SERVICE_URL"] == expected_ml
    else:
        (internal,) = [n for n, b in stack.resources("aws_lb").items() if b["internal"]]
        assert environment["ML_SERVICE_URL"] == f"http://{Stack.ref('aws_lb', internal, 'dns_name')}"


@pytest.mark.parametrize("which", SERVICES)
def test_service_runs_private_with_circuit_breaker_and_ignores_ci_and_scaling_drift(deployed, which) -> None:
    stack, config = deployed
    svc = service_config(config, which)
    _, body = service(stack, config, which)
    network = body["network_configuration"]
    private = sorted(Stack.ref("aws_subnet", n) for n, s in stack.resources("aws_subnet").items()
                     if s["tags"]["Tier"] == "private" and stack.region_of(s) == config.region)  # fmt: skip
    assert sorted(network["subnets"]) == private and network["assign_public_ip"] is False
    group = "app" if which == "api" else "ml-tasks"
    sg, _ = stack.one("aws_security_group", name=f"roi-systems-{config.name}-{group}")
    assert network["security_groups"] == [Stack.ref("aws_security_group", sg)]
    assert body["deployment_circuit_breaker"] == {"enable": True, "rollback": True}
    # A rolling deployment starts the new tasks before stopping any old one: never below the desired count.
    assert (body["deployment_minimum_healthy_percent"], body["deployment_maximum_percent"]) == (100, 200)
    # Without it, the AWS provider replaces the service when the capacity provider strategy changes.
    assert body["force_new_deployment"] is True
    assert body["lifecycle"] == {"ignore_changes": ["task_definition", "desired_count"]}
    assert body["desired_count"] == svc.desired_count
    assert body["enable_execute_command"] is config.compute.enable_execute_command
    # Tasks carry the service's tags (cost allocation per service) and ECS's own.
    assert body["propagate_tags"] == "SERVICE" and body["enable_ecs_managed_tags"] is True
    assert body["health_check_grace_period_seconds"] == svc.health_check_grace_period_seconds
    spot = svc.fargate_spot_percent
    strategy = {s["capacity_provider"]: s for s in body["capacity_provider_strategy"]}
    assert strategy.get("FARGATE_SPOT", {}).get("weight", 0) == spot
    assert strategy.get("FARGATE", {}).get("weight", 0) == 100 - spot
    # One task on on-demand capacity whatever Spot does, unless the service is all Spot (then no FARGATE entry).
    assert ("FARGATE" in strategy) is (spot < 100) and ("FARGATE_SPOT" in strategy) is (spot > 0)
    if spot < 100:
        assert strategy["FARGATE"] == {"capacity_provider": "FARGATE", "base": 1, "weight": 100 - spot}
    lb_name, _ = load_balancer(stack, internal=which == "ml")
    (target,) = body["load_balancer"]
    assert target["container_port"] == svc.container_port and target["container_name"] == "app"
    group_name = target["target_group_arn"].split(".")[1]
    tg = stack.resources("aws_lb_target_group")[group_name]
    assert tg["health_check"] == {
        "enabled": True,
        "path": svc.health_check_path,
        "matcher": "200",  # a 4xx is not healthy
        "interval": 15,
        "timeout": 5,
        "healthy_threshold": 2,
        "unhealthy_threshold": 3,
    }
    assert tg["deregistration_delay"] == str(svc.deregistration_delay_seconds)
    assert tg["target_type"] == "ip" and tg["port"] == svc.container_port
    # A new port replaces the group: under a new name, created before the old one (in use by the listener) goes.
    assert tg["name"] == f"roi-systems-{config.name}-{which}-{svc.container_port}"
    assert tg["lifecycle"] == {"create_before_destroy": True}
    (vpc,) = [n for n, v in stack.resources("aws_vpc").items() if stack.region_of(v) == config.region]
    assert (tg["protocol"], tg["vpc_id"]) == ("HTTP", Stack.ref("aws_vpc", vpc))
    # The service's load balancer forwards to this very group, and the service waits for that listener.
    forwarding_port = 443 if config.compute.load_balancer.https else 80
    name_of_listener, forwarding = next((n, b) for n, b in stack.resources("aws_lb_listener").items()
                                        if b["load_balancer_arn"] == Stack.ref("aws_lb", lb_name, "arn")
                                        and b["port"] == forwarding_port)  # fmt: skip
    assert forwarding["default_action"] == [
        {"type": "forward", "forward": {"target_group": [{"arn": Stack.ref("aws_lb_target_group", group_name, "arn")}]}}
    ]
    assert f"aws_lb_listener.{name_of_listener}" in body["depends_on"]


@pytest.mark.parametrize("prod_env", ["prod"])
def test_the_prod_api_runs_the_documented_baseline_on_demand(stacks, configs, prod_env) -> None:
    """Design document: 4 vCPU / 8 GB x 3 in prod, and non-critical work (not the API) on Spot."""
    definition = task_definition(stacks[prod_env], configs[prod_env], "api")
    assert (definition["cpu"], definition["memory"]) == ("4096", "8192")
    _, body = service(stacks[prod_env], configs[prod_env], "api")
    assert body["desired_count"] == 3
    assert [s["capacity_provider"] for s in body["capacity_provider_strategy"]] == ["FARGATE"]


# --- scaling ----------------------------------------------------------------------------------------


def scaling(stack: Stack, config: EnvironmentConfig, which: str) -> tuple[dict[str, Any] | None, dict[str, dict]]:
    name, _ = service(stack, config, which)
    targets = [(n, t) for n, t in stack.resources("aws_appautoscaling_target").items()
               if t["resource_id"].endswith(f"{Stack.ref('aws_ecs_service', name, 'name')}")]  # fmt: skip
    if not targets:
        return None, {}
    ((target_name, target),) = targets
    policies = {
        p["target_tracking_scaling_policy_configuration"]["predefined_metric_specification"][
            "predefined_metric_type"
        ]: p["target_tracking_scaling_policy_configuration"]
        for p in stack.resources("aws_appautoscaling_policy").values()
        if p["resource_id"] == Stack.ref("aws_appautoscaling_target", target_name, "resource_id")
    }
    return target, policies


@pytest.mark.parametrize("which", SERVICES)
def test_autoscaling_tracks_cpu_memory_and_requests_within_the_configured_bounds(deployed, which) -> None:
    """Design document: disabled in dev, enabled in staging, aggressive in prod (the canary: API only)."""
    stack, config = deployed
    svc = service_config(config, which).autoscaling
    target, policies = scaling(stack, config, which)
    if not svc.enabled:
        assert target is None
        return
    assert (target["min_capacity"], target["max_capacity"]) == (svc.min_capacity, svc.max_capacity)
    assert (target["service_namespace"], target["scalable_dimension"]) == ("ecs", "ecs:service:DesiredCount")
    expected = {
        "ECSServiceAverageCPUUtilization": svc.target_cpu_percent,
        "ECSServiceAverageMemoryUtilization": svc.target_memory_percent,
        "ALBRequestCountPerTarget": svc.target_requests_per_target,
    }
    assert {metric: p["target_value"] for metric, p in policies.items()} == {
        m: v for m, v in expected.items() if v is not None
    }
    service_name, _ = service(stack, config, which)
    (target_name,) = [n for n, t in stack.resources("aws_appautoscaling_target").items()
                      if t["resource_id"].endswith(Stack.ref("aws_ecs_service", service_name, "name"))]  # fmt: skip
    own = [p for p in stack.resources("aws_appautoscaling_policy").values()
           if p["resource_id"] == Stack.ref("aws_appautoscaling_target", target_name, "resource_id")]  # fmt: skip
    assert len(own) == len(policies)
    service_ref = Stack.ref("aws_ecs_service", service_name, "name")
    suffixes = {"ECSServiceAverageCPUUtilization": "cpu", "ECSServiceAverageMemoryUtilization": "memory",
                "ALBRequestCountPerTarget": "requests"}  # fmt: skip
    assert sorted(p["name"] for p in own) == sorted(f"{service_ref}-{suffixes[m]}" for m in policies)
    for policy in own:
        assert policy["policy_type"] == "TargetTrackingScaling", policy["name"]
        assert policy["service_namespace"] == Stack.ref("aws_appautoscaling_target", target_name, "service_namespace")
        assert policy["scalable_dimension"] == Stack.ref("aws_appautoscaling_target", target_name, "scalable_dimension")
    for policy in policies.values():
        assert policy["scale_in_cooldown"] == svc.scale_in_cooldown_seconds
        assert policy["scale_out_cooldown"] == svc.scale_out_cooldown_seconds
    requests = policies["ALBRequestCountPerTarget"]["predefined_metric_specification"]["resource_label"]
    lb_name, _ = load_balancer(stack, internal=which == "ml")
    _, body = service(stack, config, which)
    (target_group,) = [t["target_group_arn"].split(".")[1] for t in body["load_balancer"]]
    # The requests of this service's own target group, on the load balancer in front of it.
    assert requests == (
        Stack.ref("aws_lb", lb_name, "arn_suffix") + "/" + Stack.ref("aws_lb_target_group", target_group, "arn_suffix")
    )
    assert all("resource_label" not in p["predefined_metric_specification"]
               for m, p in policies.items() if m != "ALBRequestCountPerTarget")  # fmt: skip


def test_scaling_contrasts_between_environments(stacks, configs) -> None:
    """No scaling in dev; prod scales further than staging."""
    dev, _ = scaling(stacks["dev"], configs["dev"], "api")
    staging, _ = scaling(stacks["staging"], configs["staging"], "api")
    prod, _ = scaling(stacks["prod"], configs["prod"], "api")
    assert dev is None and staging is not None and prod is not None
    assert prod["max_capacity"] > staging["max_capacity"] and prod["min_capacity"] > staging["min_capacity"]


# --- load balancers ---------------------------------------------------------------------------------


def test_public_load_balancer_is_hardened_logged_and_behind_the_regional_web_acl(stack, config) -> None:
    name, lb = load_balancer(stack, internal=False)
    public = sorted(Stack.ref("aws_subnet", n) for n, s in stack.resources("aws_subnet").items()
                    if s["tags"]["Tier"] == "public" and stack.region_of(s) == config.region)  # fmt: skip
    assert sorted(lb["subnets"]) == public
    assert lb["drop_invalid_header_fields"] is True and lb["desync_mitigation_mode"] == "strictest"
    assert lb["enable_deletion_protection"] is (config.name != "dev")
    logs = stack.bucket_named("logs")
    assert lb["access_logs"] == {"bucket": Stack.ref("aws_s3_bucket", logs, "bucket"), "prefix": "alb", "enabled": True}
    acl, _ = stack.one("aws_wafv2_web_acl", scope="REGIONAL")
    (association,) = stack.resources("aws_wafv2_web_acl_association").values()
    assert association == {
        **association,
        "resource_arn": Stack.ref("aws_lb", name, "arn"),
        "web_acl_arn": Stack.ref("aws_wafv2_web_acl", acl, "arn"),
    }


def test_https_with_a_tls_1_3_policy_and_a_redirect_or_plain_http_only_in_dev(deployed) -> None:
    """Never plain HTTP in staging or prod: HTTPS with the configured TLS 1.3 policy, HTTP answers with a 301."""
    stack, config = deployed
    lb_config = config.compute.load_balancer
    public, _ = load_balancer(stack, internal=False)
    internal, _ = load_balancer(stack, internal=True)
    for lb_name, is_public in ((public, True), (internal, False)):
        found = listeners(stack, lb_name)
        if lb_config.plain_http:
            assert config.name == "dev" and set(found) == {80}
            assert found[80]["protocol"] == "HTTP" and found[80]["default_action"][0]["type"] == "forward"
            continue
        assert set(found) == ({443, 80} if is_public else {443})
        https = found[443]
        assert https["protocol"] == "HTTPS" and https["ssl_policy"] == lb_config.ssl_policy
        assert https["ssl_policy"].startswith("ELBSecurityPolicy-TLS13-")
        assert (
            https["certificate_arn"]
            == "${aws_acm_certificate_validation."
            + next(iter(stack.under("compute").resources("aws_acm_certificate_validation")))
            + ".certificate_arn}"
        )
        if is_public:
            assert found[80]["protocol"] == "HTTP" and "certificate_arn" not in found[80]
            (redirect,) = found[80]["default_action"]
            assert redirect == {
                "type": "redirect",
                "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"},
            }


@pytest.mark.parametrize("env", ["staging", "prod"], indirect=True)
def test_certificate_covers_the_api_and_ml_names_validated_in_the_configured_zone(stack, config) -> None:
    """The load balancers' certificate (the distribution's is in tests/test_cdn.py), the API's alias on the public
    load balancer (the name CloudFront reaches the API by) and the ML service's name on the internal one."""
    lb_config = config.compute.load_balancer
    stack = stack.under("compute")
    (_, certificate), *more = stack.resources("aws_acm_certificate").items()
    assert not more
    assert certificate["domain_name"] == lb_config.domain_name
    assert certificate["subject_alternative_names"] == [f"ml.{lb_config.domain_name}"]
    assert certificate["validation_method"] == "DNS"
    assert certificate["lifecycle"] == {"create_before_destroy": True}
    (zone,) = stack.data("aws_route53_zone").values()
    assert zone == {**zone, "name": lb_config.hosted_zone_name, "private_zone": False}
    records = stack.resources("aws_route53_record")
    validations = [n for n, r in records.items() if "domain_validation_options" in r["name"]]
    assert len(validations) == 2
    # Issued means every name validated: the validation waits for both records.
    (validation,) = stack.resources("aws_acm_certificate_validation").values()
    assert sorted(validation["validation_record_fqdns"]) == sorted(
        Stack.ref("aws_route53_record", n, "fqdn") for n in validations
    )
    (ml_record,) = [r for r in records.values() if r["name"] == f"ml.{lb_config.domain_name}"]
    internal, _ = load_balancer(stack, internal=True)
    (api_record,) = [r for r in records.values() if r["name"] == lb_config.domain_name]
    public, _ = load_balancer(stack, internal=False)
    assert (api_record["type"], api_record["zone_id"]) == ("A", Stack.data_ref("aws_route53_zone", *zone_names(stack)))
    assert api_record["alias"] == {
        "name": Stack.ref("aws_lb", public, "dns_name"),
        "zone_id": Stack.ref("aws_lb", public, "zone_id"),
        "evaluate_target_health": True,
    }
    if config.dr.enabled:
        # The primary of a failover pair with the pilot light's names (tests/test_dr_compute.py): both names are
        # aliases, whose target health Route 53 judges, under the primary region's health check.
        assert ml_record["alias"] == {**api_record["alias"], "name": Stack.ref("aws_lb", internal, "dns_name"),
                                      "zone_id": Stack.ref("aws_lb", internal, "zone_id")}  # fmt: skip
        for record in (api_record, ml_record):
            assert record["failover_routing_policy"] == {"type": "PRIMARY"}
            assert record["set_identifier"] == config.region
            assert record["health_check_id"].startswith("${aws_route53_health_check.serving_check_primary_")
    else:
        assert ml_record["type"] == "CNAME" and ml_record["records"] == [Stack.ref("aws_lb", internal, "dns_name")]
        assert not {"failover_routing_policy", "set_identifier", "health_check_id"} & {*api_record, *ml_record}
    assert len(records) == 4, "two validation records, the API's and the ML service's names"


def zone_names(stack: Stack) -> tuple[str, str]:
    (zone,) = stack.data("aws_route53_zone")
    return zone, "zone_id"


@pytest.mark.parametrize("env", ["dev"], indirect=True)
def test_dev_without_a_certificate_serves_plain_http_and_requests_no_certificate(stack, config) -> None:
    """What config says dev does without a certificate (compute.load_balancer.plain_http): HTTP on 80, nothing else."""
    assert config.compute.load_balancer.plain_http and not config.compute.load_balancer.https
    assert stack.resources("aws_acm_certificate") == {}
    assert stack.resources("aws_route53_record") == {}


@pytest.mark.parametrize("internal", [False, True], ids=["public", "internal"])
def test_both_load_balancers_are_protected_logged_and_time_out_as_configured(deployed, internal) -> None:
    """Guards the internal load balancer being left out of what the public one gets (deletion protection outside
    dev, access logs under the prefix the logs bucket admits) and the configured idle timeout (the canary's is
    not the default)."""
    stack, config = deployed
    _, lb = load_balancer(stack, internal=internal)
    assert lb["enable_deletion_protection"] is (config.name != "dev")
    logs = stack.bucket_named("logs")
    assert lb["access_logs"] == {"bucket": Stack.ref("aws_s3_bucket", logs, "bucket"), "prefix": "alb", "enabled": True}
    assert lb["idle_timeout"] == config.compute.load_balancer.idle_timeout_seconds
    assert lb["drop_invalid_header_fields"] is True and lb["desync_mitigation_mode"] == "strictest"
    assert lb["load_balancer_type"] == "application"


def test_internal_load_balancer_is_private_and_has_no_web_acl(stack, config) -> None:
    name, lb = load_balancer(stack, internal=True)
    private = sorted(Stack.ref("aws_subnet", n) for n, s in stack.resources("aws_subnet").items()
                     if s["tags"]["Tier"] == "private" and stack.region_of(s) == config.region)  # fmt: skip
    assert sorted(lb["subnets"]) == private
    assert lb["drop_invalid_header_fields"] is True
    assert all(a["resource_arn"] != Stack.ref("aws_lb", name, "arn")
               for a in stack.resources("aws_wafv2_web_acl_association").values())  # fmt: skip


# --- IAM --------------------------------------------------------------------------------------------


def test_api_task_role_may_do_exactly_what_the_api_uses(deployed) -> None:
    """Guards against a grant beyond the API's needs (another bucket, all of Redis, every database user), and a
    grant that names the wrong key, region or resource (the canary is in eu-west-1)."""
    stack, config = deployed
    definition = task_definition(stack, config, "api")
    statements = role_statements(stack, definition["task_role_arn"])
    expected = {
        "ConnectThroughRdsProxy", "ConnectToRedisAsAppUser", "ListDocuments", "UseDocuments", "DocumentsKeyThroughS3",
        "SendToEventsQueue", "EncryptEventsThroughSqs", "SendTraces",
        *(["UseSessions", "SessionsKeyThroughDynamoDb"] if config.sessions.enabled else []),
        *(["OpenExecChannels", "WriteExecSessionLogs", "DescribeExecLogGroups", "DecryptExecSessions"]
          if config.compute.enable_execute_command else []),
    }  # fmt: skip
    assert set(statements) == expected
    documents = Stack.ref("aws_s3_bucket", stack.bucket_named("documents"), "arn")
    assert statements["ListDocuments"]["resources"] == [documents]
    assert statements["UseDocuments"]["resources"] == [f"{documents}/*"]
    assert sorted(statements["UseDocuments"]["actions"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    (proxy,) = stack.resources("aws_db_proxy")
    (grant,) = statements["ConnectThroughRdsProxy"]["resources"]
    assert grant == (
        f"arn:${{data.aws_partition.partition.partition}}:rds-db:{config.region}:"
        f"${{data.aws_caller_identity.current.account_id}}:dbuser:"
        f'${{element(split(":", aws_db_proxy.{proxy}.arn), 6)}}/{config.database.master_username}'
    )
    # ElastiCache IAM authentication checks both: the replication group and the user.
    redis_user, _ = redis_app_user(stack, config)
    group, _ = primary_cache(stack)
    assert statements["ConnectToRedisAsAppUser"]["resources"] == [
        Stack.ref("aws_elasticache_replication_group", group, "arn"),
        Stack.ref("aws_elasticache_user", redis_user, "arn"),
    ]
    data_key, _ = stack.kms_key(f"alias/roi-systems-{config.name}-data")
    events = statements["EncryptEventsThroughSqs"]
    assert events["resources"] == [Stack.ref("aws_kms_key", data_key, "arn")]
    assert events["condition"] == [
        {"test": "StringEquals", "variable": "kms:ViaService", "values": [f"sqs.{config.region}.amazonaws.com"]}
    ]
    if config.sessions.enabled:
        table, _ = stack.one("aws_dynamodb_table", name=f"roi-systems-{config.name}-sessions")
        assert statements["UseSessions"]["resources"] == [Stack.ref("aws_dynamodb_table", table, "arn")]
        assert sorted(statements["UseSessions"]["actions"]) == [
            "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"
        ]  # fmt: skip
        sessions_key = statements["SessionsKeyThroughDynamoDb"]
        assert sessions_key["resources"] == [Stack.ref("aws_kms_key", data_key, "arn")]
        assert sessions_key["condition"] == [
            {
                "test": "StringEquals",
                "variable": "kms:ViaService",
                "values": [f"dynamodb.{config.region}.amazonaws.com"],
            }
        ]


def test_ml_task_role_only_reads_the_models(stack, config) -> None:
    definition = task_definition(stack, config, "ml")
    statements = role_statements(stack, definition["task_role_arn"])
    exec_sids = {"OpenExecChannels", "WriteExecSessionLogs", "DescribeExecLogGroups", "DecryptExecSessions"}
    assert set(statements) - exec_sids == {"ListModels", "ReadModels", "ModelsKeyThroughS3", "SendTraces"}
    models = Stack.ref("aws_s3_bucket", stack.bucket_named("ml-artifacts"), "arn")
    assert statements["ReadModels"] == {**statements["ReadModels"], "actions": ["s3:GetObject"],
                                        "resources": [f"{models}/*"]}  # fmt: skip
    assert statements["ModelsKeyThroughS3"]["actions"] == ["kms:Decrypt"]


@pytest.mark.parametrize("which", SERVICES)
def test_exec_grants_exist_only_where_exec_is_enabled_and_reach_only_the_audit_group_and_key(stack, config, which):
    """ECS Exec (dev): the Session Manager channels, the exec audit log group's streams and the logs key that
    encrypts the sessions; nowhere else, and nothing of it where exec is off."""
    statements = role_statements(stack, task_definition(stack, config, which)["task_role_arn"])
    sids = {"OpenExecChannels", "WriteExecSessionLogs", "DescribeExecLogGroups", "DecryptExecSessions"}
    assert (sids <= set(statements)) is config.compute.enable_execute_command
    assert not (sids & set(statements)) or sids <= set(statements)
    if not config.compute.enable_execute_command:
        return
    group, _ = stack.one("aws_cloudwatch_log_group", name=f"/roi-systems/{config.name}/ecs-exec")
    logs_key, _ = stack.kms_key(f"alias/roi-systems-{config.name}-logs")
    assert statements["WriteExecSessionLogs"]["resources"] == [
        Stack.ref("aws_cloudwatch_log_group", group, "arn") + ":*"
    ]
    assert sorted(statements["WriteExecSessionLogs"]["actions"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statements["DecryptExecSessions"] == {
        **statements["DecryptExecSessions"],
        "actions": ["kms:Decrypt"],
        "resources": [Stack.ref("aws_kms_key", logs_key, "arn")],
    }
    assert sorted(statements["OpenExecChannels"]["actions"]) == [
        "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
    ]  # fmt: skip
    assert statements["DescribeExecLogGroups"]["actions"] == ["logs:DescribeLogGroups"]


@pytest.mark.parametrize("which", SERVICES)
def test_bucket_key_statements_name_the_storage_key_through_s3_in_the_stack_region(deployed, which) -> None:
    """The buckets are encrypted with the storage key: a grant on another key, or a kms:ViaService value S3 never
    sends (it names its region), breaks every upload and download."""
    stack, config = deployed
    statements = role_statements(stack, task_definition(stack, config, which)["task_role_arn"])
    storage_key, _ = stack.kms_key(f"alias/roi-systems-{config.name}-storage")
    sid = "DocumentsKeyThroughS3" if which == "api" else "ModelsKeyThroughS3"
    assert statements[sid]["resources"] == [Stack.ref("aws_kms_key", storage_key, "arn")]
    assert statements[sid]["condition"] == [
        {"test": "StringEquals", "variable": "kms:ViaService", "values": [f"s3.{config.region}.amazonaws.com"]}
    ]
    expected = ["kms:Decrypt", "kms:GenerateDataKey"] if which == "api" else ["kms:Decrypt"]
    assert sorted(statements[sid]["actions"]) == expected


def test_event_processing_is_wired_to_the_data_key_the_artifacts_bucket_and_its_repository(deployed) -> None:
    """Guards the queues under another key, the package read from another bucket, and (the canary runs an image)
    the function created before the repository policy that lets Lambda pull."""
    stack, config = deployed
    data_key, _ = stack.kms_key(f"alias/roi-systems-{config.name}-data")
    for suffix in ("events", "events-dlq"):
        _, queue = stack.one("aws_sqs_queue", name=f"roi-systems-{config.name}-{suffix}")
        assert queue["kms_master_key_id"] == Stack.ref("aws_kms_key", data_key, "arn"), suffix
    function_name, function = stack.one("aws_lambda_function", function_name=f"roi-systems-{config.name}-events")
    repo, _ = repository(stack, config, "event-processor")
    policies = [n for n, p in stack.resources("aws_ecr_repository_policy").items()
                if p["repository"] == Stack.ref("aws_ecr_repository", repo, "name")]  # fmt: skip
    if config.compute.event_processing.package_type == "Zip":
        artifacts = stack.bucket_named("artifacts")
        assert function["s3_bucket"] == Stack.ref("aws_s3_bucket", artifacts, "bucket")
        assert policies == []
    else:
        assert function["package_type"] == "Image", function_name
        assert function["image_uri"].startswith(f"${{aws_ecr_repository.{repo}.repository_url}}:")
        (policy,) = policies
        assert f"aws_ecr_repository_policy.{policy}" in function["depends_on"]
        # Lambda pulls for this function, in this region (the canary's eu-west-1).
        document = stack.resources("aws_ecr_repository_policy")[policy]["policy"].split(".")[2]
        repository_policy = json.dumps(stack.data("aws_iam_policy_document")[document])
        assert f":lambda:{config.region}:" in repository_policy and ":lambda:us-east-1:" not in repository_policy


@pytest.mark.parametrize("which", SERVICES)
def test_execution_role_pulls_only_its_repository_writes_only_its_logs_reads_only_its_secrets(
    stack, config, which
) -> None:
    definition = task_definition(stack, config, which)
    statements = role_statements(stack, definition["execution_role_arn"])
    # Both roles are assumed by ECS tasks (not the ECS service principal, which could never assume them).
    for arn in (definition["execution_role_arn"], definition["task_role_arn"]):
        role = stack.resources("aws_iam_role")[arn.split(".")[1]]
        trust = stack.data("aws_iam_policy_document")[role["assume_role_policy"].split(".")[2]]
        assert [p["identifiers"] for s in trust["statement"] for p in s["principals"]] == [["ecs-tasks.amazonaws.com"]]
    repo, _ = repository(stack, config, which)
    assert statements["PullImages"]["resources"] == [Stack.ref("aws_ecr_repository", repo, "arn")]
    assert sorted(statements["PullImages"]["actions"]) == [
        "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"
    ]  # fmt: skip
    assert statements["GetRegistryToken"]["actions"] == ["ecr:GetAuthorizationToken"]
    assert sorted(statements["WriteLogs"]["actions"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statements["GetRegistryToken"]["resources"] == ["*"]  # ecr:GetAuthorizationToken accepts nothing else
    group, _ = stack.one("aws_cloudwatch_log_group", name=f"/roi-systems/{config.name}/ecs/{which}")
    assert statements["WriteLogs"]["resources"] == [Stack.ref("aws_cloudwatch_log_group", group, "arn") + ":*"]
    secrets = {"ReadSecret", "DecryptSecretThroughSecretsManager"}
    assert (secrets <= set(statements)) is (which == "api")
    assert set(statements) - secrets == {"GetRegistryToken", "PullImages", "WriteLogs"}


def test_every_load_balancer_waits_for_the_policy_of_its_log_bucket(stacks, canary, failed_over) -> None:
    """ELB checks that it may write to the access-log bucket when logging is enabled: a load balancer created before
    the bucket's policy (a new environment, or the DR region's at failover) fails. Every one, in every shape."""
    checked = 0
    for stack in [*stacks.values(), canary[1]["canary"], failed_over]:
        policies = {Stack.ref("aws_s3_bucket", p["bucket"].split(".")[1], "bucket"): f"aws_s3_bucket_policy.{n}"
                    for n, p in stack.resources("aws_s3_bucket_policy").items()}  # fmt: skip
        for name, lb in stack.resources("aws_lb").items():
            assert lb["depends_on"] == [policies[lb["access_logs"]["bucket"]]], (stack.name, name)
            checked += 1
    assert checked >= 12
