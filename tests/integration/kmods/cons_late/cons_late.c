// Uses late_fn, exported by ../late, whose sources are here but which nobody built yet.
#include <linux/module.h>
extern int late_fn(void);
static int __init c_init(void) { return late_fn(); }
module_init(c_init);
MODULE_LICENSE("GPL");
