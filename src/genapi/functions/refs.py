"""What a function object says about its registration, so clients can call it by object.

:meth:`Service.function <genapi.Service.function>` marks each function it declares with a
:class:`FunctionRef` (service, request type, version, response type). A typed client call
— ``await client.call(get_user, user_id="1")`` — reads the mark to address the call, binds
the arguments with the function's own signature (so ``mypy`` checks them), and converts
the JSON result back to the declared return type (:func:`decoder`).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..errors import UsageError
from .depends import depends_marker
from .hints import Converter, converter, is_plain, jsonable, unsupported

__all__ = ["REF_ATTRIBUTE", "FunctionRef", "bind_arguments", "decoder", "function_ref", "mark"]

#: The attribute :meth:`Service.function` sets on the functions it declares.
REF_ATTRIBUTE: Final = "__genapi_function__"


@dataclasses.dataclass(frozen=True, slots=True)
class FunctionRef:
    """Where a declared function is served and how it answers."""

    service: str
    request_type: str
    version: str | None
    response_type: str


def mark(function: Any, ref: FunctionRef) -> None:
    """Remember on ``function`` how it was declared (silently skipped where attributes
    cannot be set, e.g. on builtins)."""
    try:
        setattr(function, REF_ATTRIBUTE, ref)
    except (AttributeError, TypeError):
        pass


def function_ref(function: Callable[..., Any]) -> FunctionRef:
    """The declaration of ``function``; :class:`~genapi.UsageError` if it has none."""
    ref = getattr(function, REF_ATTRIBUTE, None)
    if not isinstance(ref, FunctionRef):
        name = getattr(function, "__qualname__", repr(function))
        raise UsageError(f"{name} was not declared with Service.function: call it by name, "
                         "client.call(service, request_type, args)")
    return ref


def bind_arguments(function: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The call's ``args`` object: positional and keyword arguments bound to the
    function's parameters (parameters genapi supplies itself are left out), as JSON data
    (a Struct, dataclass or pydantic model argument is sent as its fields)."""
    signature = inspect.signature(function)
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError as exc:
        raise UsageError(f"{getattr(function, '__qualname__', function)}: {exc}") from None
    return {name: jsonable(value) for name, value in bound.arguments.items()
            if depends_marker(signature.parameters[name], None) is None}


def _declared(function: Callable[..., Any], streaming: bool) -> Any:
    try:
        hint = typing.get_type_hints(function).get("return")
    except Exception:
        return None
    if not streaming:
        return hint
    args = typing.get_args(hint)
    return args[0] if args else None


def decoder(function: Callable[..., Any], *, streaming: bool = False) -> Converter | None:
    """How to turn the JSON result (or stream chunks) of ``function`` back into its
    declared type; None when there is nothing to convert."""
    hint = _declared(function, streaming)
    if hint is None or hint is type(None) or is_plain(hint) or unsupported(hint) is not None:
        return None
    return converter(hint)
