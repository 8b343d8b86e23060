"""The Jinja2 environment for reports and the site (templates in ``report/templates``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

__all__ = ["environment", "short_name", "TEMPLATES"]

TEMPLATES = Path(__file__).with_name("templates")


@lru_cache(maxsize=2)
def environment(markdown: bool = False):
    """A Jinja2 environment; HTML-escaping unless ``markdown``."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=not markdown, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
    )


def short_name(name: str) -> str:
    """A compact display name of a particle class."""
    return {"beta-galactosidase": "β-gal", "beta-amylase": "β-amyl",
            "virus-like-particle": "VLP", "apo-ferritin": "apo-ferritin",
            "thyroglobulin": "thyroglobulin", "flagellar-motor": "motor"}.get(name, name)
