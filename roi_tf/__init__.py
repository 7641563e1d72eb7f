"""ROI Systems infrastructure as code: CDKTF constructs that synthesize Terraform JSON per environment."""

from roi_tf import provider_loader, type_hints

# Before anything imports the AWS provider: import only the submodules a stack uses (docs/FAST_SYNTH.md), decided
# when the provider is first imported (the scripts' helpers never import it).
provider_loader.install_on_first_import()
# The provider's run-time argument checks evaluate their annotations once per signature, not once per call.
type_hints.memoize_stub_type_hints()
# ... and each (scalar type, expected type) pair that passed once is not checked again (the verdict is the same).
type_hints.memoize_scalar_checks()
