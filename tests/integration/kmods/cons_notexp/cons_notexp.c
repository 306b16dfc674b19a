// kallsyms_lookup_name is in the kernel but no longer exported (since 5.7).
#include <linux/module.h>
extern unsigned long kallsyms_lookup_name(const char *name);
static int __init c_init(void) { return kallsyms_lookup_name("x") ? 0 : 1; }
module_init(c_init);
MODULE_LICENSE("GPL");
