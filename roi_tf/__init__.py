"""ROI Systems infrastructure as code: CDKTF constructs that synthesize Terraform JSON per environment."""

from roi_tf import provider_loader

# Before anything imports the AWS provider: import only the submodules a stack uses (docs/FAST_SYNTH.md).
provider_loader.install()
