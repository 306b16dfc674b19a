// Uses prov_add: undefined unless prov's Module.symvers is in KBUILD_EXTRA_SYMBOLS.
#include <linux/module.h>
extern int prov_add(int, int);
static int __init c_init(void) { return prov_add(1, 2) - 3; }
module_init(c_init);
MODULE_LICENSE("GPL");
