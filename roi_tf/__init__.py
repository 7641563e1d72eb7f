"""ROI Systems infrastructure as code: CDKTF constructs that synthesize Terraform JSON per environment."""
