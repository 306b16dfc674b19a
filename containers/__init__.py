"""Dockerfile templates of ``buildkit ci``: one jinja2 template per distribution family, composed with
``{% include %}`` from the parts in ``include/``. Rendered by :mod:`buildkit.container.images`. Installed as
``buildkit.containers`` (pyproject's package-dir), the templates as its package data."""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent

__all__ = ["TEMPLATES"]
