// Calls the symbol printk, which 6.1 no longer exports (printk() is a macro for _printk).
#include <linux/module.h>
#undef printk
extern int printk(const char *fmt, ...);
static int __init c_init(void) { printk("hello\n"); return 0; }
module_init(c_init);
MODULE_LICENSE("GPL");
