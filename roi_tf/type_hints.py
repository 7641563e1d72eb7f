"""Evaluate each jsii type-checking stub's annotations once, instead of on every call.

Every constructor and setter of the jsii-generated packages (cdktf, the AWS provider) checks its arguments at
run time, under ``if __debug__:``, as ``check_type(..., expected_type=typing.get_type_hints(stub)[name])``, where
``stub`` is a module-level function named ``_typecheckingstub__<hash>`` whose annotations are strings. Evaluating
those strings again for each of the ~4,500 calls of a full synth costs about 0.35 s of its ~6 s. The stubs never
change, so their hints are computed once and reused: the checks themselves still run, with the same types.

Only ``typing.get_type_hints(stub)`` with no other argument, for such stubs, is cached; every other call goes to
the real function unchanged. :func:`memoize_stub_type_hints` is idempotent; ``roi_tf/__init__.py`` calls it.

The checks (typeguard 2's ``check_type``, ~90,000 calls with the recursion into lists and structs, ~0.7 s) are
memoized the same way where their verdict cannot depend on the value itself: a ``str``, ``int``, ``float``,
``bool`` or ``None`` checked against a type that holds no ``Literal``. Its verdict depends only on the value's type
and the expected type, so a pair that passed once passes again; everything else (containers, objects, literals, a
pair never seen, a failure) is checked by typeguard exactly as before, and a refusal is never cached.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import sys
import typing
from collections.abc import Callable, Sequence
from types import ModuleType
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


# Values whose check by typeguard 2 depends only on their type (given an expected type without literals or
# forward references, whose meaning depends on the value or on the calling module).
SCALARS = (str, int, float, bool, type(None))
_real_check_type: Callable[..., Any]
_TypeCheckMemo: Any
_passed: set[tuple[type, Any]] = set()
_cacheable: dict[Any, bool] = {}


def _type_only_verdict(expected_type: Any) -> bool:
    """True if no ``Literal`` and no forward reference occurs anywhere in ``expected_type``."""
    found = _cacheable.get(expected_type)
    if found is None:
        found = _cacheable[expected_type] = (
            typing.get_origin(expected_type) is not typing.Literal
            and not isinstance(expected_type, (str, typing.ForwardRef))
            and all(_type_only_verdict(arg) for arg in typing.get_args(expected_type))
        )
    return found


def _check_type(argname: str, value: Any, expected_type: Any, memo: Any = None, **kwargs: Any) -> Any:
    if memo is None and not kwargs:
        # What typeguard does without a memo, from the caller's frame (not this wrapper's).
        frame = sys._getframe(1)
        memo = _TypeCheckMemo(frame.f_globals, frame.f_locals)
    if type(value) not in SCALARS:
        return _real_check_type(argname, value, expected_type, memo, **kwargs)
    try:
        key = (type(value), expected_type)
        if key in _passed:
            return None
        cacheable = _type_only_verdict(expected_type)
    except TypeError:  # an unhashable expected type: never cached
        return _real_check_type(argname, value, expected_type, memo, **kwargs)
    result = _real_check_type(argname, value, expected_type, memo, **kwargs)  # raises TypeError on a mismatch
    if cacheable and not kwargs:
        _passed.add(key)
    return result


def _patch(typeguard: ModuleType) -> None:
    global _real_check_type, _TypeCheckMemo
    if typeguard.check_type is not _check_type:
        _real_check_type, _TypeCheckMemo = typeguard.check_type, typeguard._TypeCheckMemo
        functools.update_wrapper(_check_type, _real_check_type)
        typeguard.check_type = _check_type


class _PatchOnImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Patches typeguard right after it is imported (the provider's modules import it): the tools that never
    import the provider (the scripts' helpers) do not pay typeguard's import (~40 ms, unittest.mock included)."""

    def find_spec(self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None) -> Any:
        if name != "typeguard" or self not in sys.meta_path:
            return None
        sys.meta_path.remove(self)  # find the real module, once
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _patch(module)


def memoize_scalar_checks() -> None:
    """Route typeguard's ``check_type`` (the generated packages' and its own recursion) through the memo: now if
    typeguard is imported, else as soon as it is (once; later calls change nothing)."""
    if "typeguard" in sys.modules:
        _patch(sys.modules["typeguard"])
    elif not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
