"""buildkit: build CPython with a private OpenSSL and SQLite, and diagnose kernel-module symbols."""

import os as _os

__version__ = "0.1.0"

# recipes/ and containers/ sit at the top of the repository and install as buildkit.recipes and
# buildkit.containers (pyproject's package-dir); run from a checkout, they are found beside buildkit/.
_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_checkout, "pyproject.toml")) and _os.path.isfile(
        _os.path.join(_checkout, "recipes", "__init__.py")):
    __path__.append(_checkout)  # noqa: F821 - a package's own __path__
del _checkout
