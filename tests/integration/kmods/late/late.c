// Never built by the fixture: its exports exist only in this source.
#include <linux/module.h>
int late_fn(void) { return 0; }
EXPORT_SYMBOL_GPL(late_fn);
MODULE_LICENSE("GPL");
