"""roi_tf/type_hints.py: the provider's argument checks reuse their evaluated annotations, and still check."""

from __future__ import annotations

import typing

import pytest

import roi_tf  # noqa: F401  (installs the memoization, as main.py does)
from roi_tf import type_hints


def _typecheckingstub__0123abcd(scope: int, id_: str) -> None:  # the shape jsii generates
    ...


def ordinary(scope: int) -> str:
    return str(scope)


def test_a_stubs_hints_are_evaluated_once_and_are_the_real_ones() -> None:
    first = typing.get_type_hints(_typecheckingstub__0123abcd)
    assert first == type_hints._real_get_type_hints(_typecheckingstub__0123abcd) == {
        "scope": int, "id_": str, "return": type(None)
    }  # fmt: skip
    assert typing.get_type_hints(_typecheckingstub__0123abcd) is first, "cached, not evaluated again"


def test_every_other_call_goes_to_the_real_function() -> None:
    """Not a stub, or called with namespaces or extras: evaluated as without the cache (a new dict each time)."""
    assert typing.get_type_hints(ordinary) == {"scope": int, "return": str}
    assert typing.get_type_hints(ordinary) is not typing.get_type_hints(ordinary)
    with_namespace = typing.get_type_hints(_typecheckingstub__0123abcd, globalns=globals())
    assert with_namespace == typing.get_type_hints(_typecheckingstub__0123abcd)
    assert with_namespace is not typing.get_type_hints(_typecheckingstub__0123abcd)
    assert not type_hints.is_stub(ordinary) and type_hints.is_stub(_typecheckingstub__0123abcd)


def test_installing_twice_changes_nothing() -> None:
    type_hints.memoize_stub_type_hints()
    type_hints.memoize_stub_type_hints()
    assert typing.get_type_hints is type_hints._get_type_hints
    assert typing.get_type_hints(_typecheckingstub__0123abcd) is typing.get_type_hints(_typecheckingstub__0123abcd)


def test_the_providers_argument_checks_still_refuse_a_wrong_type() -> None:
    """The point of keeping the checks: a wrong argument type fails at synth, naming the argument."""
    from cdktf import TerraformStack, Testing
    from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket

    stack = TerraformStack(Testing.app(), "typed")
    S3Bucket(stack, "fine", bucket="a-bucket")  # negative control
    with pytest.raises(TypeError, match="bucket"):
        S3Bucket(stack, "wrong", bucket=123)  # type: ignore[arg-type]


# --- the argument checks: a scalar's verdict is reused, everything else is checked every time ----------------


class Marker:
    """A class only this module's globals name (forward references must resolve in the caller's module)."""


def test_a_scalar_that_passed_is_not_checked_again_and_a_wrong_one_is_refused_every_time() -> None:
    import typeguard

    expected = typing.Union[str, list[str]]  # noqa: UP007 (the form the generated stubs use)
    typeguard.check_type("name", "a-bucket", expected)
    assert (str, expected) in type_hints._passed
    for _ in range(2):  # a refusal is never cached
        with pytest.raises(TypeError, match="name"):
            typeguard.check_type("name", 123, expected)
    with pytest.raises(TypeError):
        typeguard.check_type("flag", True, typing.Union[str, list[str]])  # noqa: UP007
    typeguard.check_type("count", 3, float)  # typeguard's numeric tower: an int is a float
    with pytest.raises(TypeError):
        typeguard.check_type("count", None, float)


def test_literals_and_forward_references_are_checked_every_time() -> None:
    import typeguard

    for literal, good, bad in ((typing.Literal["GET", "POST"], "GET", "DELETE"), (typing.Literal[1, 2], 1, 3)):
        typeguard.check_type("value", good, literal)
        with pytest.raises(TypeError):
            typeguard.check_type("value", bad, literal)  # same type, another value: refused
        assert (type(good), literal) not in type_hints._passed
    marker = typing.ForwardRef("Marker")
    typeguard.check_type("marker", Marker(), marker)  # resolved in this module, as without the memo
    for _ in range(2):
        with pytest.raises(TypeError):
            typeguard.check_type("marker", "not a marker", marker)
    assert (str, marker) not in type_hints._passed


def test_containers_are_checked_by_typeguard_and_their_scalars_through_the_memo() -> None:
    import typeguard

    typeguard.check_type("names", ["a", "b"], list[str])
    assert (str, str) in type_hints._passed  # typeguard's own recursion goes through the memo
    with pytest.raises(TypeError, match=r"names\[1\]"):
        typeguard.check_type("names", ["a", 2], list[str])
    with pytest.raises(TypeError):
        typeguard.check_type("names", {"a": 1}, dict[str, str])


def test_typeguard_is_patched_when_first_imported_and_not_imported_by_roi_tf_alone() -> None:
    """The scripts' helpers import roi_tf but never the provider: they must not pay for typeguard; whatever imports
    it later (the provider's modules) gets the memoized check."""
    import subprocess
    import sys

    code = (
        "import sys, roi_tf; print('typeguard' in sys.modules); "
        "import typeguard; from roi_tf import type_hints; print(typeguard.check_type is type_hints._check_type)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.split() == ["False", "True"]
