"""Building and checking CPython with a private OpenSSL and SQLite: ``verify`` (does a built interpreter
work, and which libraries does it load) and ``doctor`` (why a build or an interpreter is broken)."""
