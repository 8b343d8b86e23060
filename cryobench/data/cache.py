"""Where generated data lives: ``$CRYOBENCH_CACHE`` or the user's cache directory."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """The cryobench cache directory (``$CRYOBENCH_CACHE``, else ``<user cache dir>/cryobench``).

    The directory is not created here; writers create what they need.
    """
    env = os.environ.get("CRYOBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("cryobench", appauthor=False))
