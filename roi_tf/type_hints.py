"""Evaluate each jsii type-checking stub's annotations once, instead of on every call.

Every constructor and setter of the jsii-generated packages (cdktf, the AWS provider) checks its arguments at
run time, under ``if __debug__:``, as ``check_type(..., expected_type=typing.get_type_hints(stub)[name])``, where
``stub`` is a module-level function named ``_typecheckingstub__<hash>`` whose annotations are strings. Evaluating
those strings again for each of the ~4,500 calls of a full synth costs about 0.35 s of its ~6 s. The stubs never
change, so their hints are computed once and reused: the checks themselves still run, with the same types.

Only ``typing.get_type_hints(stub)`` with no other argument, for such stubs, is cached; every other call goes to
the real function unchanged. :func:`memoize_stub_type_hints` is idempotent; ``roi_tf/__init__.py`` calls it.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from typing import Any

STUB_PREFIX = "_typecheckingstub__"

_real_get_type_hints: Callable[..., dict[str, Any]] = typing.get_type_hints
_hints: dict[Any, dict[str, Any]] = {}


@functools.wraps(_real_get_type_hints)
def _get_type_hints(obj: Any, globalns: Any = None, localns: Any = None, include_extras: bool = False) -> Any:
    if globalns is None and localns is None and not include_extras and is_stub(obj):
        hints = _hints.get(obj)
        if hints is None:
            hints = _hints[obj] = _real_get_type_hints(obj)
        return hints
    return _real_get_type_hints(obj, globalns, localns, include_extras)


def is_stub(obj: Any) -> bool:
    """A jsii type-checking stub: a plain function named ``_typecheckingstub__<hash>``."""
    return callable(obj) and getattr(obj, "__name__", "").startswith(STUB_PREFIX)


def memoize_stub_type_hints() -> None:
    """Route ``typing.get_type_hints`` through the cache (once; later calls change nothing)."""
    typing.get_type_hints = _get_type_hints  # type: ignore[assignment]
