"""The floor of any pure-Python answer to bench_load's question: the interpreter started, the folder
listed, each module file opened and mapped, its section headers decoded and its symbol table sliced, and
nothing else (no export table, no __versions, no kernel read, no answer). bench_load runs it as a third leg,
for reference: what is left of depmod's time for the work itself.

    python bench/load_floor.py FOLDER
"""

import mmap
import os
import struct
import sys


def main(folder: str) -> int:
    files = sorted(os.path.join(root, name) for root, _dirs, names in os.walk(folder)
                   for name in names if name.endswith(".ko"))
    symbols = 0
    for path in files:
        with open(path, "rb") as f:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shnum, = struct.unpack_from("<H", data, 0x3C)
        for header in struct.iter_unpack("<IIQQQQIIQQ", data[shoff:shoff + 64 * shnum]):
            if header[1] == 2:  # SHT_SYMTAB
                symbols += len(data[header[4]:header[4] + header[5]]) // 24
        data.close()
    print(f"{len(files)} modules, {symbols} symbols")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
