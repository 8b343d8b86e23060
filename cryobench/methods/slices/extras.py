"""Checks that a method's optional extra is installed, with the one-line fix in the error."""

from __future__ import annotations

import importlib
from types import ModuleType

from cryobench.errors import MethodError

__all__ = ["require"]


def require(module: str, extra: str, method: str) -> ModuleType:
    """Import ``module`` or raise :class:`MethodError` naming ``pip install 'cryobench[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MethodError(
            f"method {method!r} needs {module} ({exc}); install it with "
            f"pip install 'cryobench[{extra}]'"
        ) from exc
