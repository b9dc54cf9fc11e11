"""Assemble waiter_x86_64.S into the bytes kept in waiter.py (``make
waiter``; a developer's tool, never loaded by a command).

binutils' ``as`` and ``ld`` with the linker script below: one read+execute
segment (the ELF header, program headers and code; no dynamic section, no
interpreter: a position-independent program the kernel loads at a random
base) and one read-write segment for the buffers, no section headers
(``-s``).  tests/unit/test_waiter_program.py rebuilds it where binutils is
installed and compares with waiter.ELF_X86_64.

usage: python -m pyrunc.waiter_build [--write]
  prints the program's hex; --write puts it into waiter.py
"""

import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "waiter_x86_64.S")
MODULE = os.path.join(HERE, "waiter.py")
LINKER_SCRIPT = """\
ENTRY(_start)
PHDRS {
  text PT_LOAD FILEHDR PHDRS FLAGS(5);
  bss PT_LOAD FLAGS(6);
  stack PT_GNU_STACK FLAGS(6);
}
SECTIONS {
  . = SIZEOF_HEADERS;
  .text : { *(.text) } :text
  . = ALIGN(4096);
  .bss (NOLOAD) : { *(.bss) } :bss
  /DISCARD/ : { *(*) }
}
"""


def build(source=SOURCE):
    """The program's bytes (as, ld from binutils on an x86_64 host)."""
    with tempfile.TemporaryDirectory(prefix="pyrunc-waiter-") as tmp:
        obj, script, out = (os.path.join(tmp, n) for n in ("w.o", "w.ld", "w"))
        with open(script, "w") as f:
            f.write(LINKER_SCRIPT)
        subprocess.run(["as", "--64", "-o", obj, source], check=True)
        subprocess.run(
            ["ld", "-static", "-pie", "--no-dynamic-linker", "-z", "noexecstack", "--build-id=none", "-s"]
            + ["-T", script, "-o", out, obj],
            check=True,
        )
        with open(out, "rb") as f:
            return f.read()


def as_python(elf):
    lines = [elf[i : i + 48].hex() for i in range(0, len(elf), 48)]
    return "ELF_X86_64 = bytes.fromhex(\n" + "".join(f'    "{line}"\n' for line in lines) + ")"


def write(elf, path=MODULE):
    with open(path) as f:
        text = f.read()
    new, n = re.subn(r"ELF_X86_64 = bytes\.fromhex\(\n(?:    \"[0-9a-f]*\"\n)*\)", lambda m: as_python(elf), text)
    if n != 1:
        raise SystemExit(f"{path}: no ELF_X86_64 = bytes.fromhex(...) to replace")
    with open(path, "w") as f:
        f.write(new)


def main(argv):
    elf = build()
    if "--write" in argv:
        write(elf)
    else:
        print(elf.hex())


if __name__ == "__main__":
    main(sys.argv[1:])
