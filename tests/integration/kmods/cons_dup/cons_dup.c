// Exports a symbol vmlinux already exports.
#include <linux/module.h>
#include <linux/string.h>
const char *kstrdup_const(const char *s, gfp_t gfp) { return s; }
EXPORT_SYMBOL(kstrdup_const);
MODULE_LICENSE("GPL");
