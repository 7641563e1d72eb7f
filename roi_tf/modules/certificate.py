"""ACM certificates validated through DNS in a public Route 53 zone (load balancers, CloudFront)."""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import TerraformProvider, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.acm_certificate import AcmCertificate
from cdktf_cdktf_provider_aws.acm_certificate_validation import AcmCertificateValidation
from cdktf_cdktf_provider_aws.data_aws_route53_zone import DataAwsRoute53Zone
from cdktf_cdktf_provider_aws.route53_record import Route53Record
from constructs import Construct


class Certificate(Construct):
    """An ACM certificate for ``names``, validated through DNS records in a public Route 53 zone.

    ``validated_by``: a certificate for the same names in another region (the pilot light's). ACM asks for the same
    validation record for the same name in every region of an account, so it is proven by the other certificate's
    records, and owns none: two resources managing one record would delete it for both when either goes.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        names: Sequence[str],
        zone_name: str,
        provider: TerraformProvider | None = None,  # CloudFront's certificates: us-east-1; default: the stack's
        validated_by: Certificate | None = None,  # default: its own validation records
    ) -> None:
        super().__init__(scope, id)
        self.names = tuple(names)
        if validated_by is not None and validated_by.names != self.names:
            raise ValueError(f"{id}: validated by a certificate for {validated_by.names}, not {self.names}")
        if validated_by is not None:
            self.zone_id = validated_by.zone_id
        else:
            zone = DataAwsRoute53Zone(self, "zone", name=zone_name, private_zone=False, provider=provider)
            self.zone_id = zone.zone_id
        certificate = AcmCertificate(
            self,
            "certificate",
            domain_name=names[0],
            subject_alternative_names=list(names[1:]) or None,
            validation_method="DNS",
            key_algorithm="EC_prime256v1",
            # A changed name brings a new certificate, issued before the listeners let go of the old one.
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
            provider=provider,
        )
        self.validation_record_fqdns = (
            validated_by.validation_record_fqdns
            if validated_by is not None
            else self._validation_records(certificate, provider)
        )
        # Listeners wait for the certificate to be issued, not merely requested.
        self.validation = AcmCertificateValidation(
            self,
            "validation",
            certificate_arn=certificate.arn,
            validation_record_fqdns=self.validation_record_fqdns,
            provider=provider,
        )
        self.arn = self.validation.certificate_arn

    def _validation_records(self, certificate: AcmCertificate, provider: TerraformProvider | None) -> list[str]:
        """One DNS record per name, as ACM asks for it; their names (FQDNs)."""
        # Each read (the list, an element, an attribute) is a round trip to jsii: each is read once.
        options = certificate.domain_validation_options
        fqdns = []
        for i in range(len(self.names)):
            option = options.get(i)
            record = Route53Record(
                self,
                f"validation_{i}",
                zone_id=self.zone_id,
                name=option.resource_record_name,
                type=option.resource_record_type,
                records=[option.resource_record_value],
                ttl=300,
                allow_overwrite=True,
                provider=provider,
            )
            fqdns.append(record.fqdn)
        return fqdns
