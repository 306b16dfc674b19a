from __future__ import annotations

import gzip

import pytest

from buildkit.kmod.symvers import LAYOUTS, SymversError, format_symvers, parse_symvers, read_symvers

LINES = {
    "3col": "0x12345678\tfoo\tvmlinux\n0x0000abcd\tbar\tdrivers/net/mii\n",
    "4col": "0x12345678\tfoo\tvmlinux\tEXPORT_SYMBOL\n0x0000abcd\tbar\tdrivers/net/mii\tEXPORT_SYMBOL_GPL_FUTURE\n"
    "0x00000001\tbaz\tvmlinux\tEXPORT_UNUSED_SYMBOL_GPL\n",
    "5.4": "0x12345678\tfoo\t\tvmlinux\tEXPORT_SYMBOL\n0x0000abcd\tbar\tUSB_STORAGE\tdrivers/usb/storage/usb-storage\tEXPORT_SYMBOL_GPL\n",
    "5.6": "0x12345678\tfoo\tvmlinux\tEXPORT_SYMBOL\t\n0x0000abcd\tbar\tdrivers/usb/storage/usb-storage\tEXPORT_SYMBOL_GPL\tUSB_STORAGE\n",
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_detected_and_round_trips(layout):
    table = parse_symvers(LINES[layout])
    assert table.layout == layout
    assert format_symvers(table.entries, layout) == LINES[layout]


def test_namespace_position_by_era():
    assert parse_symvers(LINES["5.4"]).entries[1].namespace == "USB_STORAGE"
    assert parse_symvers(LINES["5.6"]).entries[1].namespace == "USB_STORAGE"
    assert parse_symvers(LINES["5.6"]).entries[1].module == "drivers/usb/storage/usb-storage"
    assert parse_symvers(LINES["3col"]).entries[0].type == "EXPORT_SYMBOL"


def test_convert_between_layouts():
    entries = parse_symvers(LINES["5.4"]).entries
    assert format_symvers(entries, "5.6") == LINES["5.6"]
    assert parse_symvers(format_symvers(entries, "5.6")).entries == entries


def test_gzip_file(tmp_path):
    path = tmp_path / "symvers-6.1.gz"
    path.write_bytes(gzip.compress(LINES["5.6"].encode()))
    assert read_symvers(str(path)).entries == parse_symvers(LINES["5.6"]).entries


@pytest.mark.parametrize(
    "text, where",
    [
        ("0x1\tfoo\tvmlinux\tEXPORT_SYMBOL\t\n0x2\tbar\n", "x.symvers:2: 2 tab-separated fields"),
        ("0x1\tfoo\tvmlinux\tEXPORT_FOO\n", "x.symvers:1: unknown export type EXPORT_FOO"),
        ("zz\tfoo\tvmlinux\tEXPORT_SYMBOL\t\n", "x.symvers:1: CRC 'zz' is not a hex number"),
        ("0x1\tfoo\tvmlinux\tEXPORT_SYMBOL\t\n0x1\tfoo\tvmlinux\tEXPORT_SYMBOL\n", "x.symvers:2: line in the 4col"),
    ],
)
def test_broken_line_names_file_and_line(text, where):
    with pytest.raises(SymversError) as err:
        parse_symvers(text, "x.symvers")
    assert str(err.value).startswith(where)
    assert "\n" not in str(err.value)


def test_unreadable_and_binary_files(tmp_path):
    with pytest.raises(SymversError, match="not UTF-8"):
        (tmp_path / "bin").write_bytes(b"\xff\xfe\x00garbage")
        read_symvers(str(tmp_path / "bin"))
    with pytest.raises(Exception, match="no such file"):
        read_symvers(str(tmp_path / "missing"))


def test_import_ns_line_is_quoted_from_6_13():
    from buildkit.kmod.kernel import import_ns_line

    assert import_ns_line("USB_STORAGE", (6, 12)) == "MODULE_IMPORT_NS(USB_STORAGE);"
    assert import_ns_line("USB_STORAGE", (6, 13)) == 'MODULE_IMPORT_NS("USB_STORAGE");'
    assert import_ns_line("USB_STORAGE", None) == "MODULE_IMPORT_NS(USB_STORAGE);"
