/* ldmod: load and unload kernel modules with the bare syscalls and say exactly what the kernel answered.
 * Built static by tests/kboot.py (gcc -static -O2) and run as part of the /init of its initramfs.
 *
 *   ldmod [-p PARAMS] [-f FLAGS] [-r NAME] MODULE ...
 *
 * Arguments are handled in order: MODULE is opened and given to finit_module(fd, PARAMS, FLAGS) (PARAMS and
 * FLAGS apply to the next MODULE only; FLAGS: 1 = MODULE_INIT_IGNORE_MODVERSIONS, 2 = ..._IGNORE_VERMAGIC);
 * -r NAME calls delete_module(NAME, O_NONBLOCK) as rmmod does. One line per operation on stdout:
 *
 *   @@BK load MODULE ERRNO ERRNAME STRERROR
 *   @@BK unload NAME ERRNO ERRNAME STRERROR
 *
 * ERRNO is 0 (ERRNAME "OK") or the positive errno; an open() failure is reported the same way (it is not
 * the kernel's answer to the load, but the line says so: ERRNAME is prefixed with "open:").
 * The exit status is 0 when every operation succeeded, else 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *what, const char *arg, int err, const char *prefix)
{
    const char *name = err ? strerrorname_np(err) : "OK";
    printf("@@BK %s %s %d %s%s %s\n", what, arg, err, prefix, name ? name : "?", err ? strerror(err) : "Success");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *params = "";
    int flags = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-p") && i + 1 < argc) {
            params = argv[++i];
        } else if (!strcmp(argv[i], "-f") && i + 1 < argc) {
            flags = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "-r") && i + 1 < argc) {
            const char *name = argv[++i];
            int err = syscall(SYS_delete_module, name, O_NONBLOCK) ? errno : 0;
            failed |= err != 0;
            report("unload", name, err, "");
        } else {
            int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                failed = 1;
                report("load", argv[i], errno, "open:");
            } else {
                int err = syscall(SYS_finit_module, fd, params, flags) ? errno : 0;
                close(fd);
                failed |= err != 0;
                report("load", argv[i], err, "");
            }
            params = "";
            flags = 0;
        }
    }
    return failed;
}
