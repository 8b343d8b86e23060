"""Checks that a method's optional extra is installed, with the one-line fix in the error."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from cryobench.errors import MethodError

__all__ = ["require", "require_spec"]


def require(module: str, extra: str, method: str) -> ModuleType:
    """Import ``module`` or raise :class:`MethodError` naming ``pip install 'cryobench[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MethodError(
            f"method {method!r} needs {module} ({exc}); install it with "
            f"pip install 'cryobench[{extra}]'"
        ) from exc


def require_spec(module: str, extra: str, method: str) -> None:
    """Like :func:`require` but without importing ``module`` (only checks it is installed).

    For modules that read their environment at import time (ultralytics).
    """
    if importlib.util.find_spec(module) is None:
        raise MethodError(
            f"method {method!r} needs {module}, which is not installed; install it with "
            f"pip install 'cryobench[{extra}]'"
        )
