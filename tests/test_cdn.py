"""The CDN module: one CloudFront distribution per environment, assets through OAC, the API over HTTPS.

The bucket and key policies that admit the distribution are simulated with their negative twins in
tests/test_resource_policies.py; the logs bucket's admission of CloudFront's log delivery too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from conftest import Stack
from roi_tf.modules.cdn import SPA_REWRITE

ALL_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]


def distribution(stack: Stack) -> tuple[str, dict[str, Any]]:
    ((name, body),) = stack.resources("aws_cloudfront_distribution").items()
    return name, body


def one_of(stack: Stack, rtype: str) -> tuple[str, dict[str, Any]]:
    ((name, body),) = stack.resources(rtype).items()
    return name, body


def api_behaviours(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body.get("ordered_cache_behavior", [])


def test_one_distribution_in_us_east_1_with_the_cloudfront_web_acl(deployed) -> None:
    stack, _ = deployed
    _, body = distribution(stack)
    acl, acl_body = stack.one("aws_wafv2_web_acl", scope="CLOUDFRONT")
    assert body["web_acl_id"] == Stack.ref("aws_wafv2_web_acl", acl, "arn")
    assert acl_body["provider"] == "aws.us_east_1"
    # CloudFront's own resources, its certificate and its log delivery all go through the us-east-1 provider.
    for rtype in (
        "aws_cloudfront_distribution", "aws_cloudfront_origin_access_control", "aws_cloudfront_response_headers_policy",
        "aws_cloudwatch_log_delivery", "aws_cloudwatch_log_delivery_source", "aws_cloudwatch_log_delivery_destination",
        "aws_cloudfront_cache_policy", "aws_cloudfront_origin_request_policy", "aws_cloudfront_function",
    ):  # fmt: skip
        for name, resource in stack.resources(rtype).items():
            assert stack.region_of(resource) == "us-east-1", (rtype, name)
    for name, certificate in stack.under("cdn").resources("aws_acm_certificate").items():
        assert stack.region_of(certificate) == "us-east-1", name


def test_viewers_get_https_http2_and_3_ipv6_and_the_configured_price_class_and_geo_restriction(deployed) -> None:
    stack, config = deployed
    _, body = distribution(stack)
    cdn = config.cdn
    assert body["enabled"] is True and body["is_ipv6_enabled"] is True
    assert body["http_version"] == "http2and3"
    assert body["price_class"] == cdn.price_class
    assert body["default_root_object"] == "index.html"
    geo = {"restriction_type": cdn.geo_restriction.type}
    if cdn.geo_restriction.locations:
        geo["locations"] = list(cdn.geo_restriction.locations)
    assert body["restrictions"] == {"geo_restriction": geo}
    default = body["default_cache_behavior"]
    assert default["viewer_protocol_policy"] == "redirect-to-https"
    # The API refuses plain HTTP instead of redirecting: a redirected POST would lose its body.
    assert [b["viewer_protocol_policy"] for b in api_behaviours(body)] == (["https-only"] if cdn.api_origin else [])
    assert default["compress"] is True and all(b["compress"] for b in api_behaviours(body))


def test_a_configured_domain_gets_a_us_east_1_certificate_tls_1_2_2021_and_both_aliases(deployed) -> None:
    """Staging and prod: their own name; dev: CloudFront's name and default certificate (stated in config)."""
    stack, config = deployed
    name, body = distribution(stack)
    cdn = config.cdn
    records = stack.under("cdn").resources("aws_route53_record")
    if not cdn.domain_name:
        assert config.name == "dev"
        assert body["viewer_certificate"] == {"cloudfront_default_certificate": True}
        assert "aliases" not in body and records == {}
        assert stack.under("cdn").resources("aws_acm_certificate") == {}
        return
    (validation,) = stack.under("cdn").resources("aws_acm_certificate_validation")
    assert body["viewer_certificate"] == {
        "acm_certificate_arn": Stack.ref("aws_acm_certificate_validation", validation, "certificate_arn"),
        "ssl_support_method": "sni-only",
        "minimum_protocol_version": cdn.minimum_protocol_version,
    }
    assert cdn.minimum_protocol_version in ("TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025")
    assert body["aliases"] == [cdn.domain_name]
    (_, certificate), *more = stack.under("cdn").resources("aws_acm_certificate").items()
    assert not more and certificate["domain_name"] == cdn.domain_name and certificate["validation_method"] == "DNS"
    (zone,) = stack.under("cdn").data("aws_route53_zone").values()
    assert zone == {**zone, "name": cdn.hosted_zone_name, "private_zone": False}
    aliases = {r["type"]: r for r in records.values() if r["name"] == cdn.domain_name}
    assert sorted(aliases) == ["A", "AAAA"]
    zone_name = next(iter(stack.under("cdn").data("aws_route53_zone")))
    for record in aliases.values():
        assert record["zone_id"] == Stack.data_ref("aws_route53_zone", zone_name, "zone_id"), "our zone"
        assert record["alias"] == {
            "name": Stack.ref("aws_cloudfront_distribution", name, "domain_name"),
            "zone_id": Stack.ref("aws_cloudfront_distribution", name, "hosted_zone_id"),
            "evaluate_target_health": False,
        }


def test_assets_come_from_the_assets_bucket_through_origin_access_control(deployed) -> None:
    stack, config = deployed
    _, body = distribution(stack)
    origins = {o["origin_id"]: o for o in body["origin"]}
    assets = origins["assets"]
    bucket = stack.bucket_named("assets")
    access, access_body = one_of(stack, "aws_cloudfront_origin_access_control")
    assert assets == {
        "origin_id": "assets",
        "domain_name": Stack.ref("aws_s3_bucket", bucket, "bucket_regional_domain_name"),
        "origin_access_control_id": Stack.ref("aws_cloudfront_origin_access_control", access, "id"),
    }, "OAC, never an origin access identity"
    assert {
        k: access_body[k] for k in ("origin_access_control_origin_type", "signing_behavior", "signing_protocol")
    } == {
        "origin_access_control_origin_type": "s3",
        "signing_behavior": "always",
        "signing_protocol": "sigv4",
    }
    default = body["default_cache_behavior"]
    assert default["target_origin_id"] == "assets"
    assert default["allowed_methods"] == ["GET", "HEAD"] and default["cached_methods"] == ["GET", "HEAD"]
    (policy_name, policy), *more = stack.data("aws_cloudfront_cache_policy").items()
    assert not more and policy["name"] == config.cdn.assets_cache_policy
    assert default["cache_policy_id"] == Stack.data_ref("aws_cloudfront_cache_policy", policy_name, "id")


def test_the_assets_key_and_bucket_admit_this_distribution_and_nothing_reads_the_other_buckets(deployed) -> None:
    """Statement by statement (the simulation covers the requests): CloudFront is named only by the assets bucket's
    policy and the assets key's, each for this distribution's ARN; no other bucket or key mentions CloudFront."""
    stack, config = deployed
    name, _ = distribution(stack)
    own = Stack.ref("aws_cloudfront_distribution", name, "arn")
    naming = []
    for document_name, document in stack.data("aws_iam_policy_document").items():
        for statement in document["statement"]:
            principals = [i for p in statement.get("principals", []) for i in p["identifiers"]]
            if "cloudfront.amazonaws.com" in principals:
                naming.append((document_name, statement))
    ((document_name, statement),) = naming
    bucket = stack.bucket_named("assets")
    (policy,) = [p for p in stack.resources("aws_s3_bucket_policy").values() if p["bucket"].split(".")[1] == bucket]
    assert policy["policy"] == Stack.data_ref("aws_iam_policy_document", document_name, "json")
    assert statement["actions"] == ["s3:GetObject"]
    assert statement["resources"] == [f"{Stack.ref('aws_s3_bucket', bucket, 'arn')}/*"]
    assert statement["condition"] == [{"test": "StringEquals", "variable": "aws:SourceArn", "values": [own]}]
    keys = {
        key_name: json.loads(key["policy"])["Statement"]
        for key_name, key in stack.resources("aws_kms_key").items()
        if "cloudfront.amazonaws.com" in key["policy"]
    }
    assets_key, _ = stack.kms_key(f"alias/roi-systems-{config.name}-assets")
    assert list(keys) == [assets_key]
    (grant,) = [s for s in keys[assets_key] if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
    assert grant["Action"] == "kms:Decrypt" and grant["Condition"] == {"StringEquals": {"aws:SourceArn": own}}


def test_the_api_goes_to_the_load_balancer_by_its_certificate_name_over_https_only(deployed) -> None:
    stack, config = deployed
    _, body = distribution(stack)
    origins = {o["origin_id"]: o for o in body["origin"]}
    if not config.cdn.api_origin:
        assert config.name == "dev" and set(origins) == {"assets"} and api_behaviours(body) == []
        return
    lb = config.compute.load_balancer
    assert origins["api"] == {
        "origin_id": "api",
        "domain_name": lb.domain_name,
        "custom_origin_config": {
            "http_port": 80,
            "https_port": 443,
            "origin_protocol_policy": "https-only",
            "origin_ssl_protocols": ["TLSv1.2"],
        },
    }
    # The name resolves to the public load balancer (an alias in the zone), whose certificate covers it (with a pilot
    # light, the primary's of a failover pair: tests/test_dr_compute.py).
    primary = stack.without_standby()
    (record,) = [r for r in primary.resources("aws_route53_record").values() if r["name"] == lb.domain_name]
    public, _ = primary.one("aws_lb", internal=False)
    assert record["alias"]["name"] == Stack.ref("aws_lb", public, "dns_name")
    (behaviour,) = api_behaviours(body)
    assert behaviour["path_pattern"] == config.cdn.api_path_pattern and behaviour["target_origin_id"] == "api"
    assert behaviour["allowed_methods"] == ALL_METHODS and behaviour["cached_methods"] == ["GET", "HEAD"]


def test_the_api_cache_never_serves_one_callers_response_to_another(deployed) -> None:
    """Authorization is in the cache key (and only so does CloudFront forward it); cookies are neither cached on nor
    forwarded; TTLs from config, the API's Cache-Control deciding within them."""
    stack, config = deployed
    _, body = distribution(stack)
    if not config.cdn.api_origin:
        assert stack.resources("aws_cloudfront_cache_policy") == {}
        return
    (behaviour,) = api_behaviours(body)
    policy_name, policy = one_of(stack, "aws_cloudfront_cache_policy")
    assert behaviour["cache_policy_id"] == Stack.ref("aws_cloudfront_cache_policy", policy_name, "id")
    ttl = config.cdn.api_cache
    assert (policy["min_ttl"], policy["default_ttl"], policy["max_ttl"]) == (
        ttl.min_ttl_seconds, ttl.default_ttl_seconds, ttl.max_ttl_seconds
    )  # fmt: skip
    key = policy["parameters_in_cache_key_and_forwarded_to_origin"]
    assert key["headers_config"] == {"header_behavior": "whitelist", "headers": {"items": ["Authorization"]}}
    assert key["cookies_config"] == {"cookie_behavior": "none"}
    assert key["query_strings_config"] == {"query_string_behavior": "all"}
    assert key["enable_accept_encoding_gzip"] is True and key["enable_accept_encoding_brotli"] is True
    request_name, request = one_of(stack, "aws_cloudfront_origin_request_policy")
    assert behaviour["origin_request_policy_id"] == Stack.ref(
        "aws_cloudfront_origin_request_policy", request_name, "id"
    )
    assert request["cookies_config"] == {"cookie_behavior": "none"}
    assert request["headers_config"] == {
        "header_behavior": "whitelist",
        "headers": {"items": list(config.cdn.api_forwarded_headers)},
    }
    assert not {h.lower() for h in config.cdn.api_forwarded_headers} & {"authorization", "cookie", "host"}
    assert request["query_strings_config"] == {"query_string_behavior": "all"}


def test_every_response_carries_the_security_headers_from_config(deployed) -> None:
    stack, config = deployed
    _, body = distribution(stack)
    policy_name, policy = one_of(stack, "aws_cloudfront_response_headers_policy")
    ref = Stack.ref("aws_cloudfront_response_headers_policy", policy_name, "id")
    assert [b["response_headers_policy_id"] for b in [body["default_cache_behavior"], *api_behaviours(body)]] == [
        ref
    ] * (1 + len(api_behaviours(body)))
    cdn = config.cdn
    assert policy["security_headers_config"] == {
        "strict_transport_security": {
            "access_control_max_age_sec": cdn.hsts_max_age_seconds,
            "include_subdomains": True,
            "preload": cdn.hsts_preload,
            "override": True,
        },
        "content_type_options": {"override": True},
        "frame_options": {"frame_option": cdn.frame_options, "override": True},
        "referrer_policy": {"referrer_policy": cdn.referrer_policy, "override": True},
        "content_security_policy": {"content_security_policy": cdn.content_security_policy, "override": True},
    }
    assert cdn.hsts_max_age_seconds >= 31536000


def test_access_logs_go_to_the_logs_bucket_under_cloudfront_through_standard_logging_v2(deployed) -> None:
    stack, _ = deployed
    name, body = distribution(stack)
    assert "logging_config" not in body, "legacy logging needs ACLs, which the buckets disable"
    source_name, source = one_of(stack, "aws_cloudwatch_log_delivery_source")
    destination_name, destination = one_of(stack, "aws_cloudwatch_log_delivery_destination")
    _, delivery = one_of(stack, "aws_cloudwatch_log_delivery")
    assert source["log_type"] == "ACCESS_LOGS"
    assert destination["output_format"] == "json"
    assert source["resource_arn"] == Stack.ref("aws_cloudfront_distribution", name, "arn")
    logs = stack.bucket_named("logs")
    assert destination["delivery_destination_configuration"] == [
        {"destination_resource_arn": f"{Stack.ref('aws_s3_bucket', logs, 'arn')}/cloudfront"}
    ]
    assert delivery["delivery_source_name"] == Stack.ref("aws_cloudwatch_log_delivery_source", source_name, "name")
    assert delivery["delivery_destination_arn"] == Stack.ref(
        "aws_cloudwatch_log_delivery_destination", destination_name, "arn"
    )


@pytest.mark.parametrize(("env", "spa"), [("dev", False), ("staging", True), ("prod", True)], indirect=["env"])
def test_spa_routes_are_rewritten_on_the_assets_behaviour_only(stack: Stack, config, spa: bool) -> None:
    """A viewer-request function on the assets, never custom error responses (distribution-wide: they would turn
    the API's own 403 and 404 into the app's index page with a 200)."""
    _, body = distribution(stack)
    assert config.cdn.spa_fallback is spa
    assert "custom_error_response" not in body
    functions = stack.resources("aws_cloudfront_function")
    associations = body["default_cache_behavior"].get("function_association", [])
    assert all("function_association" not in b for b in api_behaviours(body))
    if not spa:
        assert functions == {} and associations == []
        return
    ((function_name, function),) = functions.items()
    assert function["runtime"] == "cloudfront-js-2.0" and function["publish"] is True
    assert function["code"] == SPA_REWRITE, "the code the node test runs is the code deployed"
    assert associations == [
        {"event_type": "viewer-request", "function_arn": Stack.ref("aws_cloudfront_function", function_name, "arn")}
    ]


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs the CloudFront function's JavaScript")
@pytest.mark.parametrize(
    ("uri", "served"),
    [
        ("/", "/index.html"),
        ("/dashboard", "/index.html"),
        ("/reports/2026/q3", "/index.html"),
        ("/releases/v1.2/notes", "/index.html"),  # a dot in a folder is not a file extension
        ("/app.js", "/app.js"),
        ("/assets/logo.svg", "/assets/logo.svg"),
        ("/index.html", "/index.html"),
    ],
)
def test_the_spa_function_serves_index_html_for_app_routes_and_files_as_they_are(uri: str, served: str) -> None:
    """The function's own JavaScript, run by node with the event shape CloudFront passes."""
    script = SPA_REWRITE + f"\nconsole.log(handler({{request: {{uri: {json.dumps(uri)}}}}}).uri);\n"
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.strip() == served


def test_api_origin_off_serves_the_assets_only_even_where_the_load_balancer_has_a_name(configs, tmp_path) -> None:
    """cdn.api_origin false in an environment whose load balancer has a domain (staging, edited): no API origin,
    behaviour or API policies. (Dev, the shipped case, has no load balancer name either.)"""
    from dataclasses import replace

    from roi_tf.app import synth

    staging = configs["staging"]
    config = replace(staging, cdn=replace(staging.cdn, api_origin=False))
    assert config.compute.load_balancer.domain_name
    synth({config.name: config}, tmp_path / "out")
    stack = Stack(config.name, tmp_path / "out/stacks/staging/cdk.tf.json",
                  json.loads((tmp_path / "out/stacks/staging/cdk.tf.json").read_text()))  # fmt: skip
    _, body = distribution(stack)
    assert [o["origin_id"] for o in body["origin"]] == ["assets"]
    assert "ordered_cache_behavior" not in body
    assert stack.resources("aws_cloudfront_cache_policy") == {}
    assert stack.resources("aws_cloudfront_origin_request_policy") == {}
