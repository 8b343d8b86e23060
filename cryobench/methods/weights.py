"""Loading saved network weights without unpickling anything but tensors.

A model directory may come from someone else. ``torch.load(weights_only=True)`` is the only way
cryobench reads a ``.pt`` file: it rebuilds tensors and plain containers and refuses any other
object, so a pickle whose ``__reduce__`` would run code is rejected before anything runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cryobench.errors import MethodError

__all__ = ["load_tensors", "state_error"]


def load_tensors(path: str | os.PathLike[str], what: str = "saved weights") -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, every failure a
    :class:`~cryobench.errors.MethodError` naming the file (a file holding anything but
    tensors, numbers, strings and containers of them is refused)."""
    import torch

    p = Path(path)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MethodError(f"{what} not found", p) from None
    except Exception as exc:  # UnpicklingError (a disallowed global), corrupt or foreign files
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise MethodError(f"refusing {what}: not a tensors-only file ({first[:200]})",
                          p) from None


def state_error(method: str, exc: BaseException, path: str | os.PathLike[str]) -> MethodError:
    """The :class:`~cryobench.errors.MethodError` for a saved state that cannot be used
    (malformed JSON, missing keys, weights of another shape...): one line naming the file."""
    text = str(exc).strip()
    first = text.splitlines()[0][:200] if text else ""
    return MethodError(f"cannot load saved {method!r} state ({type(exc).__name__}"
                       f"{': ' + first if first else ''})", path)
