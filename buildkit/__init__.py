"""buildkit: build CPython with a private OpenSSL and SQLite, and diagnose kernel-module symbols."""

__version__ = "0.1.0"
