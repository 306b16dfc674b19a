// Calls the symbol printk, which 6.1 no longer exports (printk() is a macro for _printk), and two typos:
// printkk (meant printk, i.e. _printk) and mutex_lok (meant mutex_lock).
#include <linux/module.h>
#undef printk
extern int printk(const char *fmt, ...);
extern int printkk(const char *fmt, ...);
extern void mutex_lok(void *lock);
static int __init c_init(void) { printk("hello\n"); printkk("again\n"); mutex_lok(NULL); return 0; }
module_init(c_init);
MODULE_LICENSE("GPL");
