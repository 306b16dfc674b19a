// Provider: one plain, one GPL-only and one namespaced export.
#include <linux/module.h>
int prov_add(int a, int b) { return a + b; }
EXPORT_SYMBOL(prov_add);
int prov_gpl(int a) { return a * 2; }
EXPORT_SYMBOL_GPL(prov_gpl);
int prov_ns(int a) { return a * 3; }
EXPORT_SYMBOL_NS_GPL(prov_ns, BKTEST);
MODULE_LICENSE("GPL");
