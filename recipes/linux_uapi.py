"""The Linux kernel's uapi headers of a portable build, newer than its glibc sysroot's (3.10's lack the system
call numbers of pidfd_open, getrandom, memfd_create, copy_file_range, ...), from Debian's ``linux-libc-dev``.

Nothing is compiled: ``linux/``, ``asm-generic/`` and the x86-64 ``asm/`` are copied into the prefix, which the
compile lines of the components after it name with ``-I``, ahead of the sysroot's own ``/usr/include``. glibc's
``<sys/syscall.h>`` spells the numbers as ``SYS_<name>`` through its ``<bits/syscall.h>``, which glibc's build
generates from the kernel headers it was built with (``#define SYS_<name> __NR_<name>`` for each
``__NR_<name>``); the prefix gets the same file generated from these headers, so that code written against
``SYS_getrandom`` (CPython's ``os.urandom`` and ``os.getrandom``) sees the new calls too. The names are a
superset of the sysroot's x86-64 list (checked when this recipe was written: 314 there, 352 here, none lost).
Whether a call works is the running kernel's answer (ENOSYS on an older one), which CPython handles itself.
"""

from __future__ import annotations

from buildkit.pybuild.recipe import Command, Context, Recipe

# $1: the prefix. Run in the unpacked package's usr/ tree. The x86-64 section only: a portable build targets
# x86-64 Linux (the i386 and x32 sections of glibc's own file are left out, and refused if asked for).
_INSTALL = r"""set -e
mkdir -p "$1/include/bits"
cp -R include/linux include/asm-generic "$1/include/"
cp -R include/x86_64-linux-gnu/asm "$1/include/asm"
{
    echo '/* glibc'"'"'s <bits/syscall.h>, generated as glibc'"'"'s build does, from asm/unistd_64.h next to it. */'
    echo '#ifndef _SYSCALL_H'
    echo '# error "Never use <bits/syscall.h> directly; include <sys/syscall.h> instead."'
    echo '#endif'
    echo '#if !defined __x86_64__ || !defined __LP64__'
    echo '# error "these uapi headers are for x86-64 (LP64) only"'
    echo '#endif'
    sed -n 's/^#define __NR_\([a-z0-9_]*\)[[:space:]].*/#define SYS_\1 __NR_\1/p' "$1/include/asm/unistd_64.h"
} > "$1/include/bits/syscall.h.tmp"
mv "$1/include/bits/syscall.h.tmp" "$1/include/bits/syscall.h"
"""

#: what the smoke step asks the generated file for: the calls a 3.10 sysroot lacks that CPython's os uses
SYSCALLS = ("getrandom", "pidfd_open", "memfd_create", "copy_file_range")


class LinuxUapi(Recipe):
    package = "linux-uapi"

    def configure(self, ctx: Context) -> list[Command]:
        return []

    def build(self, ctx: Context) -> list[Command]:
        return []

    def install(self, ctx: Context) -> list[Command]:
        return [Command.of("sh", "-c", _INSTALL, "sh", ctx.prefix)]

    def smoke(self, ctx: Context) -> list[Command]:
        # each name on its own: one missing call fails the step and says which
        check = ('for n in "$@"; do grep -q "^#define SYS_$n " "$0" '
                 '|| { echo "bits/syscall.h lacks SYS_$n" >&2; exit 1; }; done')
        return [Command.of("sh", "-c", check, f"{ctx.prefix}/include/bits/syscall.h", *SYSCALLS, cwd="/")]
