"""Recipes: one short declarative class per component. ``RECIPES`` maps a catalog package to its recipe."""

from __future__ import annotations

from recipes.cpython import CPython
from recipes.openssl import OpenSSL
from recipes.sqlite import SQLite

RECIPES = {r.package: r for r in (OpenSSL(), SQLite(), CPython())}

__all__ = ["RECIPES", "CPython", "OpenSSL", "SQLite"]
