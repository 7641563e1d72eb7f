"""The CDN module: one CloudFront distribution per environment, in front of the assets bucket and the API.

Browser -> CloudFront (TLS 1.2+, the CLOUDFRONT web ACL, security headers) -> either
- the assets bucket, through Origin Access Control: the bucket policy admits this distribution only, and only the
  assets key (never the storage key of documents and models) lets CloudFront decrypt, for this distribution only;
- or, for ``/api/*``, the public load balancer over HTTPS by the name its certificate covers.

CloudFront is global; its resources, its certificate and its log delivery live in us-east-1 (the global provider).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformProvider
from cdktf_cdktf_provider_aws.cloudfront_cache_policy import (
    CloudfrontCachePolicy,
    CloudfrontCachePolicyParametersInCacheKeyAndForwardedToOrigin,
    CloudfrontCachePolicyParametersInCacheKeyAndForwardedToOriginCookiesConfig,
    CloudfrontCachePolicyParametersInCacheKeyAndForwardedToOriginHeadersConfig,
    CloudfrontCachePolicyParametersInCacheKeyAndForwardedToOriginHeadersConfigHeaders,
    CloudfrontCachePolicyParametersInCacheKeyAndForwardedToOriginQueryStringsConfig,
)
from cdktf_cdktf_provider_aws.cloudfront_distribution import (
    CloudfrontDistribution,
    CloudfrontDistributionDefaultCacheBehavior,
    CloudfrontDistributionDefaultCacheBehaviorFunctionAssociation,
    CloudfrontDistributionOrderedCacheBehavior,
    CloudfrontDistributionOrigin,
    CloudfrontDistributionOriginCustomOriginConfig,
    CloudfrontDistributionRestrictions,
    CloudfrontDistributionRestrictionsGeoRestriction,
    CloudfrontDistributionViewerCertificate,
)
from cdktf_cdktf_provider_aws.cloudfront_function import CloudfrontFunction
from cdktf_cdktf_provider_aws.cloudfront_origin_access_control import CloudfrontOriginAccessControl
from cdktf_cdktf_provider_aws.cloudfront_origin_request_policy import (
    CloudfrontOriginRequestPolicy,
    CloudfrontOriginRequestPolicyCookiesConfig,
    CloudfrontOriginRequestPolicyHeadersConfig,
    CloudfrontOriginRequestPolicyHeadersConfigHeaders,
    CloudfrontOriginRequestPolicyQueryStringsConfig,
)
from cdktf_cdktf_provider_aws.cloudfront_response_headers_policy import (
    CloudfrontResponseHeadersPolicy,
    CloudfrontResponseHeadersPolicySecurityHeadersConfig,
    CloudfrontResponseHeadersPolicySecurityHeadersConfigContentSecurityPolicy,
    CloudfrontResponseHeadersPolicySecurityHeadersConfigContentTypeOptions,
    CloudfrontResponseHeadersPolicySecurityHeadersConfigFrameOptions,
    CloudfrontResponseHeadersPolicySecurityHeadersConfigReferrerPolicy,
    CloudfrontResponseHeadersPolicySecurityHeadersConfigStrictTransportSecurity,
)
from cdktf_cdktf_provider_aws.cloudwatch_log_delivery import CloudwatchLogDelivery
from cdktf_cdktf_provider_aws.cloudwatch_log_delivery_destination import (
    CloudwatchLogDeliveryDestination,
    CloudwatchLogDeliveryDestinationDeliveryDestinationConfiguration,
)
from cdktf_cdktf_provider_aws.cloudwatch_log_delivery_source import CloudwatchLogDeliverySource
from cdktf_cdktf_provider_aws.data_aws_cloudfront_cache_policy import DataAwsCloudfrontCachePolicy
from cdktf_cdktf_provider_aws.route53_record import Route53Record, Route53RecordAlias
from constructs import Construct

from roi_tf.config import CdnConfig
from roi_tf.modules.bucket import SecureBucket
from roi_tf.modules.certificate import Certificate
from roi_tf.modules.exports import export
from roi_tf.modules.security import KmsKey, Statement, key_statement

ASSETS_ORIGIN, API_ORIGIN = "assets", "api"
READ_METHODS = ["GET", "HEAD"]
ALL_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
# A viewer-request function for a single-page app: a path without a file extension is an app route, served by
# /index.html. (Custom error responses would do it for the whole distribution, and turn the API's own 403 and 404
# answers into the app's index page with a 200.)
SPA_REWRITE = """function handler(event) {
  var request = event.request;
  var last = request.uri.split("/").pop();
  if (last.indexOf(".") === -1) {
    request.uri = "/index.html";
  }
  return request;
}
"""


@dataclass(frozen=True, kw_only=True)
class CdnOrigins:
    """What the distribution serves: the assets bucket (and its key), and the API's name (None: assets only)."""

    assets_bucket: SecureBucket
    assets_key: KmsKey
    api_domain_name: str | None


@dataclass(frozen=True, kw_only=True)
class CdnLogging:
    """Where standard logging (v2) delivers: the logs bucket, under its prefix."""

    bucket_arn: str
    prefix: str


class Cdn(Construct):
    """The distribution, its policies, certificate, aliases and access logs."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: CdnConfig,
        name: str,  # "roi-systems-<env>"
        origins: CdnOrigins,
        logging: CdnLogging,
        web_acl_arn: str,  # the CLOUDFRONT-scope web ACL (us-east-1)
        provider: TerraformProvider,  # us-east-1
    ) -> None:
        super().__init__(scope, id)
        self._config, self._name, self._provider = config, name, provider
        access = CloudfrontOriginAccessControl(
            self,
            "origin_access_control",
            name=f"{name}-assets",
            description=f"{name}: CloudFront signs its requests to the assets bucket",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            provider=provider,
        )
        headers = self._response_headers_policy()
        certificate = (
            Certificate(
                self, "certificate", names=[config.domain_name], zone_name=config.hosted_zone_name, provider=provider
            )
            if config.domain_name and config.hosted_zone_name
            else None
        )
        bucket = origins.assets_bucket
        distribution_origins = [
            CloudfrontDistributionOrigin(
                origin_id=ASSETS_ORIGIN,
                domain_name=bucket.bucket.bucket_regional_domain_name,
                origin_access_control_id=access.id,
            )
        ]
        api_behaviours = []
        if origins.api_domain_name:
            distribution_origins.append(
                CloudfrontDistributionOrigin(
                    origin_id=API_ORIGIN,
                    domain_name=origins.api_domain_name,
                    custom_origin_config=CloudfrontDistributionOriginCustomOriginConfig(
                        http_port=80,
                        https_port=443,
                        origin_protocol_policy="https-only",
                        origin_ssl_protocols=["TLSv1.2"],
                    ),
                )
            )
            api_behaviours.append(self._api_behaviour(headers.id))
        self.distribution = CloudfrontDistribution(
            self,
            "distribution",
            comment=f"{name}: web assets and the API",
            enabled=True,
            is_ipv6_enabled=True,
            http_version="http2and3",
            price_class=config.price_class,
            aliases=[config.domain_name] if certificate else None,
            default_root_object="index.html",
            web_acl_id=web_acl_arn,
            origin=distribution_origins,
            default_cache_behavior=self._assets_behaviour(headers.id),
            ordered_cache_behavior=api_behaviours or None,
            restrictions=CloudfrontDistributionRestrictions(
                geo_restriction=CloudfrontDistributionRestrictionsGeoRestriction(
                    restriction_type=config.geo_restriction.type,
                    locations=list(config.geo_restriction.locations) or None,
                )
            ),
            viewer_certificate=(
                CloudfrontDistributionViewerCertificate(
                    acm_certificate_arn=certificate.arn,
                    ssl_support_method="sni-only",
                    minimum_protocol_version=config.minimum_protocol_version,
                )
                if certificate
                else CloudfrontDistributionViewerCertificate(cloudfront_default_certificate=True)
            ),
            provider=provider,
        )
        # Only this distribution reads the assets, and only it may have them decrypted.
        this_distribution = {("StringEquals", "aws:SourceArn"): [self.distribution.arn]}
        bucket.allow(
            [
                Statement(
                    sid="CloudFrontReadsAssets",
                    actions=["s3:GetObject"],
                    resources=[f"{bucket.arn}/*"],
                    principals={"Service": ["cloudfront.amazonaws.com"]},
                    conditions=this_distribution,
                )
            ]
        )
        origins.assets_key.grant(
            [
                key_statement(
                    sid="CloudFrontDecryptsAssets",
                    actions=["kms:Decrypt"],
                    principals={"Service": ["cloudfront.amazonaws.com"]},
                    conditions=this_distribution,
                )
            ]
        )
        self._access_logs(logging)
        if certificate is not None and config.domain_name:
            for record_type in ("A", "AAAA"):
                Route53Record(
                    self,
                    f"alias_{record_type.lower()}",
                    zone_id=certificate.zone_id,
                    name=config.domain_name,
                    type=record_type,
                    alias=Route53RecordAlias(
                        name=self.distribution.domain_name,
                        zone_id=self.distribution.hosted_zone_id,
                        evaluate_target_health=False,
                    ),
                    provider=provider,
                )
        host = config.domain_name if certificate else self.distribution.domain_name
        export(
            self,
            {
                "cdn_distribution_id": (self.distribution.id, "CloudFront distribution (invalidations, logs)"),
                "cdn_domain_name": (self.distribution.domain_name, "CloudFront's own name of the distribution"),
                "cdn_url": (f"https://{host}", "The URL users hit"),
            },
        )

    # --- behaviours ----------------------------------------------------------------------------------

    def _assets_behaviour(self, headers_policy_id: str) -> CloudfrontDistributionDefaultCacheBehavior:
        managed = DataAwsCloudfrontCachePolicy(
            self, "assets_cache_policy", name=self._config.assets_cache_policy, provider=self._provider
        )
        functions = []
        if self._config.spa_fallback:
            rewrite = CloudfrontFunction(
                self,
                "spa_rewrite",
                name=f"{self._name}-spa-rewrite",
                comment="App routes (paths without a file extension) are served /index.html",
                runtime="cloudfront-js-2.0",
                publish=True,
                code=SPA_REWRITE,
                provider=self._provider,
            )
            functions.append(
                CloudfrontDistributionDefaultCacheBehaviorFunctionAssociation(
                    event_type="viewer-request", function_arn=rewrite.arn
                )
            )
        return CloudfrontDistributionDefaultCacheBehavior(
            target_origin_id=ASSETS_ORIGIN,
            viewer_protocol_policy="redirect-to-https",
            allowed_methods=READ_METHODS,
            cached_methods=READ_METHODS,
            compress=True,
            cache_policy_id=managed.id,
            response_headers_policy_id=headers_policy_id,
            function_association=functions or None,
        )

    def _api_behaviour(self, headers_policy_id: str) -> CloudfrontDistributionOrderedCacheBehavior:
        config, name = self._config, self._name
        ttl = config.api_cache
        # Authorization is part of the cache key: a cached answer is only ever served to the same caller. (It is
        # also how CloudFront forwards it: origin request policies cannot.) Cookies are neither cached on nor sent.
        cache_policy = CloudfrontCachePolicy(
            self,
            "api_cache_policy",
            name=f"{name}-api",
            comment=f"{name}: the API decides with Cache-Control, per caller",
            min_ttl=ttl.min_ttl_seconds,
            default_ttl=ttl.default_ttl_seconds,
            max_ttl=ttl.max_ttl_seconds,
            parameters_in_cache_key_and_forwarded_to_origin=CloudfrontCachePolicyParametersInCacheKeyAndForwardedToOrigin(
                cookies_config=CloudfrontCachePolicyParametersInCacheKeyAndForwardedToOriginCookiesConfig(
                    cookie_behavior="none"
                ),
                headers_config=CloudfrontCachePolicyParametersInCacheKeyAndForwardedToOriginHeadersConfig(
                    header_behavior="whitelist",
                    headers=CloudfrontCachePolicyParametersInCacheKeyAndForwardedToOriginHeadersConfigHeaders(
                        items=["Authorization"]
                    ),
                ),
                query_strings_config=CloudfrontCachePolicyParametersInCacheKeyAndForwardedToOriginQueryStringsConfig(
                    query_string_behavior="all"
                ),
                enable_accept_encoding_brotli=True,
                enable_accept_encoding_gzip=True,
            ),
            provider=self._provider,
        )
        request_policy = CloudfrontOriginRequestPolicy(
            self,
            "api_origin_request_policy",
            name=f"{name}-api",
            comment=f"{name}: what the API reads from the viewer's request",
            cookies_config=CloudfrontOriginRequestPolicyCookiesConfig(cookie_behavior="none"),
            headers_config=CloudfrontOriginRequestPolicyHeadersConfig(
                header_behavior="whitelist",
                headers=CloudfrontOriginRequestPolicyHeadersConfigHeaders(items=list(config.api_forwarded_headers)),
            ),
            query_strings_config=CloudfrontOriginRequestPolicyQueryStringsConfig(query_string_behavior="all"),
            provider=self._provider,
        )
        return CloudfrontDistributionOrderedCacheBehavior(
            path_pattern=config.api_path_pattern,
            target_origin_id=API_ORIGIN,
            # HTTPS only: a redirect would turn a client's POST into a GET and drop its body.
            viewer_protocol_policy="https-only",
            allowed_methods=ALL_METHODS,
            cached_methods=READ_METHODS,
            compress=True,
            cache_policy_id=cache_policy.id,
            origin_request_policy_id=request_policy.id,
            response_headers_policy_id=headers_policy_id,
        )

    def _response_headers_policy(self) -> CloudfrontResponseHeadersPolicy:
        config = self._config
        return CloudfrontResponseHeadersPolicy(
            self,
            "security_headers",
            name=f"{self._name}-security-headers",
            comment=f"{self._name}: HSTS, CSP, nosniff, frame and referrer policies on every response",
            security_headers_config=CloudfrontResponseHeadersPolicySecurityHeadersConfig(
                strict_transport_security=CloudfrontResponseHeadersPolicySecurityHeadersConfigStrictTransportSecurity(
                    access_control_max_age_sec=config.hsts_max_age_seconds,
                    include_subdomains=True,
                    preload=config.hsts_preload,
                    override=True,
                ),
                content_type_options=CloudfrontResponseHeadersPolicySecurityHeadersConfigContentTypeOptions(
                    override=True
                ),
                frame_options=CloudfrontResponseHeadersPolicySecurityHeadersConfigFrameOptions(
                    frame_option=config.frame_options, override=True
                ),
                referrer_policy=CloudfrontResponseHeadersPolicySecurityHeadersConfigReferrerPolicy(
                    referrer_policy=config.referrer_policy, override=True
                ),
                content_security_policy=CloudfrontResponseHeadersPolicySecurityHeadersConfigContentSecurityPolicy(
                    content_security_policy=config.content_security_policy, override=True
                ),
            ),
            provider=self._provider,
        )

    # --- logs ----------------------------------------------------------------------------------------

    def _access_logs(self, logging: CdnLogging) -> None:
        """Standard logging (v2), delivered by CloudWatch Logs to the logs bucket under its prefix. (Legacy logging
        writes with ACLs, which our buckets disable.) The logs bucket admits these deliveries (storage module)."""
        source = CloudwatchLogDeliverySource(
            self,
            "log_source",
            name=f"{self._name}-cdn",
            log_type="ACCESS_LOGS",
            resource_arn=self.distribution.arn,
            provider=self._provider,
        )
        destination = CloudwatchLogDeliveryDestination(
            self,
            "log_destination",
            name=f"{self._name}-cdn-s3",
            output_format="json",
            delivery_destination_configuration=[
                CloudwatchLogDeliveryDestinationDeliveryDestinationConfiguration(
                    destination_resource_arn=f"{logging.bucket_arn}/{logging.prefix}"
                )
            ],
            provider=self._provider,
        )
        CloudwatchLogDelivery(
            self,
            "log_delivery",
            delivery_source_name=source.name,
            delivery_destination_arn=destination.arn,
            provider=self._provider,
        )
