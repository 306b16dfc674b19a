// No MODULE_LICENSE at all.
#include <linux/module.h>
static int __init c_init(void) { return 0; }
module_init(c_init);
