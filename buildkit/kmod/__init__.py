"""Kernel-module symbols: read module ELF files and Module.symvers, resolve, diagnose, order.

``elf`` and ``modfile`` read; ``symvers`` parses and writes; ``resolve``, ``deps`` and ``diagnose`` decide.
Nothing here imports click or the build/container code.
"""
