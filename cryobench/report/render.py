"""The Jinja2 environment for reports and the site (templates in ``report/templates``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

__all__ = ["environment", "short_name", "md_escape", "Markdown", "TEMPLATES"]

TEMPLATES = Path(__file__).with_name("templates")


class Markdown(str):
    """Text that is already Markdown (e.g. a table built with :func:`md_escape`d cells): the
    Markdown environment outputs it as it is."""


def md_escape(text: object) -> str:
    """Text from records or user files made inert in Markdown: HTML special characters become
    entities (a Markdown renderer would pass raw HTML through), ``|`` cannot end a table cell,
    line breaks cannot end a line."""
    import html

    out = html.escape(str(text), quote=False).replace("|", "\\|")
    return out.replace("\r", " ").replace("\n", " ")


def _md_finalize(value: object) -> object:
    if isinstance(value, Markdown) or not isinstance(value, str):
        return value
    return md_escape(value)


@lru_cache(maxsize=2)
def environment(markdown: bool = False):
    """A Jinja2 environment: HTML-escaping, or with ``markdown`` escaping every value for
    Markdown (:func:`md_escape`) unless it is :class:`Markdown` already."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=not markdown, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        finalize=_md_finalize if markdown else None,
    )


def short_name(name: str) -> str:
    """A compact display name of a particle class."""
    return {"beta-galactosidase": "β-gal", "beta-amylase": "β-amyl",
            "virus-like-particle": "VLP", "apo-ferritin": "apo-ferritin",
            "thyroglobulin": "thyroglobulin", "flagellar-motor": "motor"}.get(name, name)
