#include <linux/module.h>
extern int prov_ns(int);
static int __init c_init(void) { return prov_ns(0); }
module_init(c_init);
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(BKTEST);
