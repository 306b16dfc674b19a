#!/bin/sh
# Regenerates the tiny ELF files of tests/unit/test_floor.py (gcc and binutils of Debian 12, glibc 2.36):
#   libhardened.so.1  full RELRO, non-executable stack, needs GLIBC_2.34 (pthread_create moved into libc)
#   libsoft.so.1      no RELRO, executable stack, a text relocation, and libstdc++.so.6 (not allowed)
#   prog              a PIE needing libhardened.so.1 through a DT_RPATH, partial RELRO
# Run from this folder: sh make.sh (one compilation at a time on shared machines: flock).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/hardened.c" <<'C'
#include <pthread.h>
static void *run(void *arg) { return arg; }
int hardened(void) { pthread_t t; void *r; if (pthread_create(&t, 0, run, 0)) return -1; pthread_join(t, &r); return 0; }
C
cat > "$tmp/soft.c" <<'C'
__asm__(".text\n.globl textrel_word\ntextrel_word: .quad textrel_word\n");
int soft(int x) { return x + 1; }
C
cat > "$tmp/prog.c" <<'C'
int hardened(void);
int main(void) { return hardened(); }
C
gcc -O2 -fPIC -shared -Wl,-soname,libhardened.so.1 -Wl,-z,relro,-z,now -Wl,-z,noexecstack \
    -o libhardened.so.1 "$tmp/hardened.c"
gcc -O2 -fPIC -shared -Wl,-soname,libsoft.so.1 -Wl,-z,norelro -Wl,-z,execstack -Wl,-z,notext \
    -Wl,--no-as-needed -l:libstdc++.so.6 -o libsoft.so.1 "$tmp/soft.c"
gcc -O2 -fPIE -pie -Wl,-z,relro -Wl,-z,lazy -Wl,--disable-new-dtags -Wl,-rpath,'$ORIGIN' \
    -o prog "$tmp/prog.c" -L. -l:libhardened.so.1
strip libhardened.so.1 libsoft.so.1 prog
