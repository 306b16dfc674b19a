"""``buildkit symvers load`` and ``buildkit symvers diff``: a module against a kernel it has not met yet."""

from __future__ import annotations

import sys

import click

from buildkit.cli.output import CONTEXT, print_json, problems_found, warn

_TARGET_HELP = ("The kernel: /lib/modules/VER, a headers directory, /boot/symvers-VER.gz, or a folder holding one "
                "(a dpkg -x root). Repeatable: a module x kernel table.")


@click.command("load", context_settings=CONTEXT)
@click.argument("modules", nargs=-1, required=True, metavar="MODULE...")
@click.option("--kernel", "kernels", multiple=True, required=True, metavar="TARGET", help=_TARGET_HELP)
@click.option("--loaded", multiple=True, metavar="MODULE|NAME",
              help="Already in the kernel: a module file, or an in-tree module's name (with what it depends on). "
                   "Repeatable.")
@click.option("--sig-enforce", is_flag=True,
              help="The kernel refuses unsigned modules (booted with module.sig_enforce=1; "
                   "CONFIG_MODULE_SIG_FORCE=y in the target's config does the same).")
@click.option("--trusted-key", "trusted_keys", multiple=True, metavar="CERT",
              help="A certificate (PEM or DER) of a key the kernel holds besides the one that signed its in-tree "
                   "modules: a MOK enrolled with mokutil, DKMS's /var/lib/dkms/mok.pub. Repeatable.")
@click.option("--every-problem", is_flag=True,
              help="List each module's problems at every gate, not only up to the one that refuses it, and let a "
                   "refused module's exports serve the modules after it: every CRC mismatch and unknown symbol of "
                   "a tree, as depmod -e -E reports them. The verdicts and kernel lines stay the kernel's.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"kernel", "loader", "modules": [...]} (several --kernel: {"kernels": [...]}).')
def symvers_load(modules: tuple[str, ...], kernels: tuple[str, ...], loaded: tuple[str, ...], sig_enforce: bool,
                 trusted_keys: tuple[str, ...], every_problem: bool, as_json: bool) -> None:
    """Predict, offline and read-only, whether each MODULE loads into the TARGET kernel, with the exact lines
    that kernel prints, the errno, what insmod and modprobe say, and the fix.

    \b
    MODULEs load in the order given, each after the ones before it that loaded, as insmod would; a folder
    gives its modules in dependency order (as modprobe would load them). In-tree modules of the target
    count as dependencies only once loaded: name them with --loaded, or see the modprobe line.
    The loader's gates run in the kernel's order for the target's version: signature (with
    --sig-enforce: unsigned, or signed by a key the kernel does not hold; it holds the key that signed
    its in-tree modules and each --trusted-key), ELF and architecture, the module_layout CRC, vermagic
    (the release is skipped for a module with symbol versions), then every undefined symbol (not
    exported, GPL-only from a non-GPL module, CRC mismatch, no symbol version, namespace not imported),
    then exports that duplicate what is loaded. Taints (out-of-tree, unsigned, licence) are warnings.
    A kernel upgrade, checked:
      buildkit symvers load /lib/modules/OLD/updates --kernel /lib/modules/NEW

    \b
    Exit status: 0 every module loads, 1 some would be refused, 2 bad input.

    \b
    Examples:
      buildkit symvers load prov/prov.ko cons/cons.ko --kernel /lib/modules/6.1.0-57-amd64
      buildkit symvers load drv.ko --kernel /usr/src/linux-headers-6.1.0-57-amd64 --loaded snd --json
      buildkit symvers load /lib/modules/$(uname -r)/updates --kernel /lib/modules/6.1.0-57-amd64
      buildkit symvers load drv.ko --kernel /boot/symvers-5.14.0-427.el9.x86_64.gz --sig-enforce
      buildkit symvers load drv.ko --kernel /lib/modules/6.1.0-57-amd64 --sig-enforce \\
          --trusted-key /var/lib/dkms/mok.pub
    """
    from buildkit.kmod.lazymod import module_arguments, read_modules
    from buildkit.kmod.load import Loader
    from buildkit.kmod.loader_rules import rules_for
    from buildkit.kmod.target import read_target

    found = module_arguments(modules)
    targets = [read_target(k) for k in kernels]
    loaders = [Loader(t, loaded=loaded, sig_enforce=sig_enforce, trusted_keys=trusted_keys, every_problem=every_problem)
               for t in targets]
    for loader in loaders:  # the first module of each argument tells whether the image's keys will be needed
        loader.expect([item if isinstance(item, str) else item[0] for item in found])
    paths = read_modules(found, targets[0] if len(targets) == 1 else None, every_symbol=every_problem)
    runs = [(loader.target, loader.load_all(paths)) for loader in loaders]
    if as_json:
        docs = [{"kernel": t.release, "target": t.spec, "loader": rules_for(t.version).to_json(t.version),
                 "modules": [r.to_json() for r in results]} for t, results in runs]
        print_json(docs[0] if len(docs) == 1 else {"kernels": docs})
    else:
        if len(runs) > 1:
            _print_matrix(runs)
        for t, results in runs:
            _print_run(t, results, details_only_refused=len(runs) > 1, every_symbol=every_problem)
    if any(not r.loads for _t, results in runs for r in results):
        problems_found()


def _print_matrix(runs) -> None:
    names = [r.name for r in runs[0][1]]
    width = max(len(n) for n in names + ["module"])
    cols = [t.release for t, _ in runs]
    click.echo(f"{'module':<{width}}  " + "  ".join(f"{c:<16}" for c in cols))
    for i, name in enumerate(names):
        cells = ["loads" if results[i].loads else f"{results[i].error} ({results[i].errno})" for _t, results in runs]
        click.echo(f"{name:<{width}}  " + "  ".join(f"{c:<16}" for c in cells))
    click.echo("")


def _print_run(target, results, *, details_only_refused: bool, every_symbol: bool = False) -> None:
    """Written straight to the stream: a kernel upgrade checks thousands of modules, and click.echo's
    per-call checks (24,000 lines) cost more than the check of a module that loads. Problems that share a
    fix are one line; ``every_symbol`` names each of their symbols there, not the first six."""
    from buildkit.kmod.loader_rules import rules_for

    out = sys.stdout  # main() made it write a non-UTF-8 file name as its bytes (click's own stream would raise)

    def add(line: str) -> None:
        out.write(line + "\n")

    add(f"kernel {target.release}: {target.symvers_path} (vermagic '{target.vermagic}', {target.vendor})")
    add(rules_for(target.version).describe(target.version))
    for r in results:
        if r.loads and details_only_refused:
            continue
        verdict = "loads" if r.loads else f"refused: {r.error} ({r.errno})"
        add(f"{r.name}: {verdict}  ({r.path}; depends: {', '.join(r.depends) or '-'})")
        for line in r.dmesg:
            add(f"  dmesg: {line}")
        if not r.loads:
            add(f"  {r.insmod}")
            if r.modprobe and r.modprobe != r.insmod:
                add(f"  {r.modprobe}  (modprobe, once installed)")
            elif not r.modprobe:
                add("  modprobe (once installed): loads, its in-tree dependencies first")
        for kind, fix, group in _grouped(r.problems):
            label = "warning" if kind in ("taint", "trust") else kind
            if len(group) == 1:
                add(f"  {label}: {group[0].message}")
            else:  # one fix for many symbols (load snd first): said once
                names = [p.symbol for p in group]
                shown = ", ".join(names if every_symbol else names[:6]) + (
                    f" and {len(names) - 6} more" if len(names) > 6 and not every_symbol else "")
                add(f"  {label}: {len(names)} symbols: {shown}")
            add(f"    fix: {fix}")
    add("")
    out.flush()


def _grouped(problems):
    """(kind, fix, [problems]) with the problems that share a kind and a fix together, first seen first."""
    groups: dict[tuple[str, str], list] = {}
    for p in problems:
        groups.setdefault((p.kind, p.fix), []).append(p)
    return [(kind, fix, group) for (kind, fix), group in groups.items()]


@click.command("diff", context_settings=CONTEXT)
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@click.option("--uses", "uses", multiple=True, metavar="MODULE|DIR",
              help="Only the symbols these modules import (their __versions and undefined symbols). Repeatable.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"lost", "added", "crc", "type", "namespace", "owner"} as JSON.')
def symvers_diff(old: str, new: str, uses: tuple[str, ...], as_json: bool) -> None:
    """Compare two kernels' exports: lost, added, CRC changed, type (GPL-ness) changed, namespace changed,
    owner moved.

    \b
    OLD and NEW are a Module.symvers (any layout kbuild has written), a symvers-VER.gz, or a TARGET as
    for 'symvers load'. The lines are kabi.pl's: KABI: symbol s(mod:m ns:NS) lost / changed crc from A
    to B / changed type from A to B; then namespace and owner changes, then additions.

    \b
    Exit status: 0 nothing in scope lost or changed, 1 something was, 2 bad input.

    \b
    Examples:
      buildkit symvers diff /lib/modules/6.1.0-47-amd64 /lib/modules/6.1.0-57-amd64
      buildkit symvers diff old/Module.symvers /boot/symvers-5.14.0-427.el9.x86_64.gz --json
      buildkit symvers diff /lib/modules/6.1.0-47-amd64 /lib/modules/6.1.0-57-amd64 --uses ./mydriver.ko
    """
    from buildkit.kmod.abidiff import diff_exports, imported_symbols, read_exports

    old_name, old_exports = read_exports(old)
    new_name, new_exports = read_exports(new)
    for name, exports in ((old_name, old_exports), (new_name, new_exports)):
        if not exports:  # every symbol of the other side would read as added, or as lost
            warn(f"{name}: no exports in it (an empty Module.symvers: was the build run?)")
    scope = imported_symbols(uses) if uses else None
    result = diff_exports(old_name, old_exports, new_name, new_exports, scope)
    if as_json:
        print_json(result.to_json())
    else:
        for line in result.lines():
            click.echo(line)
        counts = (f"{len(result.lost)} lost, {len(result.crc)} CRC, {len(result.type)} type, "
                  f"{len(result.namespace)} namespace, {len(result.owner)} owner changes, {len(result.added)} added")
        where = f" among the {result.scope} symbols the modules use" if result.scope is not None else ""
        click.echo(f"{old_name} -> {new_name}: {counts}{where}", err=True)
    if result.breaks:
        problems_found()
