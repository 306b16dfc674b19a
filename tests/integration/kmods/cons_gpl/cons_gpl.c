// A proprietary module using a GPL-only export.
#include <linux/module.h>
extern int prov_gpl(int);
static int __init c_init(void) { return prov_gpl(0); }
module_init(c_init);
MODULE_LICENSE("Proprietary");
