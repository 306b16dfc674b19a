"""Recipes: one short declarative class per component. ``RECIPES`` maps a catalog package to its recipe;
importing this package registers them with the planner (:func:`buildkit.pybuild.recipe.register`)."""

from __future__ import annotations

from buildkit.pybuild.recipe import register
from recipes.cpython import CPython
from recipes.openssl import OpenSSL
from recipes.sqlite import SQLite

RECIPES = {r.package: r for r in (OpenSSL(), SQLite(), CPython())}
register(*RECIPES.values())

__all__ = ["RECIPES", "CPython", "OpenSSL", "SQLite"]
