"""The probe facts of a healthy build, shared by the tests that judge them (test_verify) and advise on them
(test_doctor): one copy, so the two cannot drift apart."""

from __future__ import annotations

from buildkit.pybuild import probe_script


def base_facts(**changes) -> dict:
    """Facts of a healthy build with a private OpenSSL and SQLite under /opt/py; ``changes`` replace keys."""
    facts = {
        "probe": 2, "executable": "/opt/py/bin/python3.11", "version": [3, 11, 2], "prefix": "/opt/py",
        "isolated": True, "environment": ["LANG", "PATH"],
        "imports": {m: {"ok": True, "error": None, "file": f"/opt/py/lib/python3.11/lib-dynload/{m}.so"}
                    for m in ("_ssl", "_hashlib", "ssl", "_sqlite3", "sqlite3")},
        "openssl": {"version": "OpenSSL 3.0.20 27 Jan 2026", "version_info": [3, 0, 0, 20, 0],
                    "api_version": [3, 0, 0, 20, 0]},
        "ca": {"error": None,
               "verify_paths": {"cafile": "/opt/py/openssl/ssl/cert.pem", "capath": None,
                                "openssl_cafile_env": "SSL_CERT_FILE", "openssl_cafile": "/opt/py/openssl/ssl/cert.pem",
                                "openssl_capath_env": "SSL_CERT_DIR", "openssl_capath": "/opt/py/openssl/ssl/certs"},
               "capath_files": 0, "capath_hashed": 0, "stats": {"x509": 140, "crl": 0, "x509_ca": 140},
               "ca_certs": 140},
        "smtp_ssl": {"ok": True, "error": None},
        "sqlite": {"version": "3.46.1", "deterministic": True, "deterministic_error": None,
                   "features": {name: {"ok": True, "error": None} for name, _sql, _want in probe_script.SQLITE_FEATURES}},
        "tls": {"tool": "/opt/py/openssl/bin/openssl",
                "handshakes": {v: {"ok": True, "version": v.replace("_", "."), "cipher": "TLS_AES_256_GCM_SHA384"}
                               for v in probe_script.TLS_VERSIONS}},
        "hostile": {"ld_library_path": "/usr/lib/x86_64-linux-gnu",
                    "libraries": {"_ssl": ["/opt/py/openssl/lib64/libcrypto.so.3", "/opt/py/openssl/lib64/libssl.so.3"],
                                  "_hashlib": ["/opt/py/openssl/lib64/libcrypto.so.3"],
                                  "_sqlite3": ["/opt/py/sqlite/lib/libsqlite3.so.0.8.6"]}},
        "maps_error": None,
        "libraries": {"_ssl": ["/opt/py/openssl/lib64/libcrypto.so.3", "/opt/py/openssl/lib64/libssl.so.3"],
                      "_hashlib": ["/opt/py/openssl/lib64/libcrypto.so.3"],
                      "_sqlite3": ["/opt/py/sqlite/lib/libsqlite3.so.0.8.6"]},
        "pip": {"ok": True, "output": "pip 24.0 from /opt/py/lib/python3.11/site-packages/pip (python 3.11)",
                "ensurepip": True, "ensurepip_version": "24.0"},
        "optional": {"zlib": {"ok": True, "error": None, "file": None},
                     "_ctypes": {"ok": False, "error": "ModuleNotFoundError: No module named '_ctypes'", "file": None}},
    }
    facts.update(changes)
    return facts
