"""OpenSSL: shared libraries in ``<prefix>/lib`` (never lib64), an rpath for its own tools, no docs.

Portable (``--portable``): static and position-independent libraries linked into ``_ssl`` and ``_hashlib``,
and a compiled-in directory that exists wherever the tree goes: ``/etc/ssl`` (Debian, Ubuntu, SUSE, Alpine,
Fedora 34+, RHEL 9), with the CA bundle of CentOS 7 / RHEL 8 / Alibaba Cloud Linux (``/etc/pki/tls/cert.pem``)
as the default file where ``/etc/ssl/cert.pem`` is missing: the fallback python-build-standalone adopted for
the same hosts (its pull request 976), patched into ``X509_get_default_cert_file``. ``SSL_CERT_FILE`` still wins.
"""

from __future__ import annotations

from buildkit.pybuild.recipe import Action, Command, Context, Recipe

# The perl program that adds the fallback (3.0-3.5: the function returns X509_CERT_FILE in one place).
RHEL_CA_FALLBACK = (
    r's{#include <stdio.h>\n}{#include <stdio.h>\n#include <unistd.h>\n} or die "x509_def.c: no stdio.h include\n";'
    r' s{return X509_CERT_FILE;}{return access(X509_CERT_FILE, R_OK) != 0'
    r' && access("/etc/pki/tls/cert.pem", R_OK) == 0 ? "/etc/pki/tls/cert.pem" : X509_CERT_FILE;}'
    r' or die "x509_def.c: no return X509_CERT_FILE\n";'
)
PORTABLE_OPENSSLDIR = "/etc/ssl"


class OpenSSL(Recipe):
    package = "openssl"

    def configure(self, ctx: Context) -> list[Command]:
        if ctx.portable:
            return [
                Command.of("perl", "-0pi", "-e", RHEL_CA_FALLBACK, "crypto/x509/x509_def.c"),
                Command.of("./config", f"--prefix={ctx.prefix}", f"--openssldir={PORTABLE_OPENSSLDIR}", "--libdir=lib",
                           "no-shared", "no-tests", "-fPIC", env={"CC": ctx.env()["CC"]}),
            ]
        return [
            Command.of(
                "./config",
                f"--prefix={ctx.prefix}",
                f"--openssldir={ctx.prefix}/ssl",
                # OpenSSL 3 installs into lib64/ on x86_64 otherwise, and CPython then links the system
                # libssl while compiling against these headers.
                "--libdir=lib",
                "shared",
                "no-tests",
                # The shared build sets no rpath: without it bin/openssl loads the system libcrypto. A
                # DT_RPATH (not DT_RUNPATH): libssl then finds its libcrypto whatever LD_LIBRARY_PATH says.
                "-Wl,-rpath,$(LIBRPATH)",
                "-Wl,--disable-new-dtags",
            )
        ]

    def install(self, ctx: Context) -> list[Command]:
        return [Command.of("make", "install_sw")]  # install (docs included) costs about a minute more

    def post(self, ctx: Context) -> list[Action | Command]:
        if ctx.portable:  # the host's own directory, compiled in
            return []
        # install_sw creates no openssldir, so there is no CA store: point it at the host's.
        return [Action("link-ca-store", (f"{ctx.prefix}/ssl", ctx.ca_file, ctx.ca_dir))]

    def smoke(self, ctx: Context) -> list[Command]:
        return [Command.of(f"{ctx.prefix}/bin/openssl", "version", cwd="/")]
