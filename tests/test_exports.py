"""The public API is exactly ``genapi.__all__``."""

from __future__ import annotations

import types

import genapi


def test_all_names_exist() -> None:
    """Every name in __all__ is importable from genapi."""
    for name in genapi.__all__:
        assert hasattr(genapi, name), name


def test_no_unlisted_public_names() -> None:
    """Every public non-module attribute of genapi is listed in __all__."""
    public = {
        name for name, value in vars(genapi).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
        and name != "annotations"  # from __future__ import annotations
    }
    assert public <= set(genapi.__all__)


def test_all_is_unique() -> None:
    """__all__ lists each name once."""
    assert len(genapi.__all__) == len(set(genapi.__all__))


def test_public_names_are_documented() -> None:
    """Every exported class and function has a docstring."""
    for name in genapi.__all__:
        value = getattr(genapi, name)
        if isinstance(value, type) or callable(value):
            assert value.__doc__, name
