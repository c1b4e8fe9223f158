#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Check that the UAPI header means the same thing to 32- and 64-bit user space.

  check_abi.py layout     --cc gcc --header H --workdir D
  check_abi.py standalone --cc gcc --header H --workdir D

layout: every struct in the header is found by parsing it; a C file that
emits sizeof/offsetof of every struct and field and the value of every
BELUGA_IOC_* command is generated and compiled to assembly with -m32 and with
-m64; the two sets of values must be identical.  The header's own rules are checked too: no
implicit padding (each field starts where the previous ended, the last ends
at sizeof) and sizes a multiple of 8.

standalone: the header alone compiles with -std=c89 -pedantic -Werror, in
both modes, as C and as C++98 (64-bit only: C++ users include it too).
"""
import argparse
import os
import re
import subprocess
import sys

STRUCT = re.compile(r"\bstruct\s+(\w+)\s*\{(.*?)\}\s*;", re.S)
FIELD = re.compile(r"^(?:struct\s+\w+|[A-Za-z_]\w*)\s+(\w+)\s*(\[[^\]]+\])?$")
IOC = re.compile(r"^#define\s+(BELUGA_IOC_\w+)\s+_IO", re.M)


def strip_comments(text):
    return re.sub(r"/\*.*?\*/", " ", text, flags=re.S)


def parse(header):
    """Return ({struct: [field, ...]}, [ioctl macro, ...]) from the header."""
    with open(header) as f:
        text = strip_comments(f.read())
    structs = {}
    for name, body in STRUCT.findall(text):
        fields = []
        for decl in body.split(";"):
            decl = " ".join(decl.split())
            if not decl:
                continue
            m = FIELD.match(decl)
            if not m or "{" in decl:
                sys.exit(f"check_abi: cannot parse field '{decl}' of struct {name}; "
                         "teach tests/abi/check_abi.py (unions, bit-fields, ...)")
            fields.append(m.group(1))
        structs[name] = fields
    if not structs:
        sys.exit(f"check_abi: no struct found in {header}")
    return structs, IOC.findall(text)


# Values are read from the assembly, not by running the program (the kernel's
# asm-offsets trick): the host may be unable to execute 32-bit binaries.
EMIT = '\tasm volatile("\\n.ascii \\"@@abi {tag} %c0\\"" : : "i" ((unsigned long)({expr})));'


def program(header, structs, iocs):
    lines = ["#include <stddef.h>", f'#include "{os.path.abspath(header)}"',
             "#define MEMBER_SIZE(s, f) sizeof(((struct s *)0)->f)", "void abi_layout(void);",
             "void abi_layout(void)", "{"]
    for s, fields in structs.items():
        lines.append(EMIT.format(tag=f"struct {s} size", expr=f"sizeof(struct {s})"))
        for f in fields:
            lines.append(EMIT.format(tag=f"field {s}.{f} offset", expr=f"offsetof(struct {s}, {f})"))
            lines.append(EMIT.format(tag=f"field {s}.{f} size", expr=f"MEMBER_SIZE({s}, {f})"))
    for ioc in iocs:
        # Two 16-bit halves: a 32-bit immediate >= 2^31 would print negative.
        lines.append(EMIT.format(tag=f"ioctl {ioc} high", expr=f"({ioc}) >> 16"))
        lines.append(EMIT.format(tag=f"ioctl {ioc} low", expr=f"({ioc}) & 0xffff"))
    lines.append("}")
    return "\n".join(lines) + "\n"


def compile_to_facts(cc, src, asm, bits):
    """{"struct S size": "112", "field S.f offset": "8", ...} for -m<bits>."""
    subprocess.run([cc, f"-m{bits}", "-std=gnu11", "-Wall", "-Werror", "-S", "-o", asm, src],
                   check=True)
    facts = {}
    with open(asm) as f:
        for line in f:
            m = re.search(r'@@abi (.*) \$?(-?\d+)"', line)
            if m:
                facts[m.group(1)] = int(m.group(2))
    return facts


def layout(args):
    structs, iocs = parse(args.header)
    os.makedirs(args.workdir, exist_ok=True)
    src = os.path.join(args.workdir, "abi_layout.c")
    with open(src, "w") as f:
        f.write(program(args.header, structs, iocs))
    try:
        facts = {bits: compile_to_facts(args.cc, src, os.path.join(args.workdir, f"abi_layout{bits}.s"), bits)
                 for bits in (32, 64)}
    except subprocess.CalledProcessError as e:
        sys.exit(f"check_abi: {e} (is gcc-multilib installed?)")
    errors = compare(facts[32], facts[64]) + hygiene(facts[64], structs)
    print(f"checked {len(structs)} structs, {sum(map(len, structs.values()))} fields, "
          f"{len(iocs)} ioctl commands in {args.header} with -m32 and -m64")
    for s in structs:
        print(f"  struct {s}: {facts[64][f'struct {s} size']} bytes")
    for e in errors:
        print("ABI ERROR: " + e)
    return 1 if errors else 0


def compare(f32, f64):
    return [f"{k.split(' ', 1)[1].replace(' ', ': ', 1)} {f32.get(k)} (-m32) != {f64.get(k)} (-m64)"
            for k in sorted(set(f32) | set(f64)) if f32.get(k) != f64.get(k)]


def hygiene(facts, structs):
    """Explicit padding and 8-byte multiple sizes (the header's stated rules)."""
    errors = []
    for s, names in structs.items():
        size = facts[f"struct {s} size"]
        end = 0
        for f in names:
            off, fsize = facts[f"field {s}.{f} offset"], facts[f"field {s}.{f} size"]
            if off != end:
                errors.append(f"{s}.{f}: implicit padding of {off - end} bytes before it")
            end = off + fsize
        if end != size:
            errors.append(f"struct {s}: implicit tail padding of {size - end} bytes")
        if size % 8:
            errors.append(f"struct {s}: size {size} is not a multiple of 8")
    return errors


def standalone(args):
    os.makedirs(args.workdir, exist_ok=True)
    src = os.path.join(args.workdir, "abi_standalone.c")
    with open(src, "w") as f:
        f.write(f'#include "{os.path.abspath(args.header)}"\n')
    strict = ["-Wall", "-Wextra", "-pedantic", "-Werror", "-fsyntax-only"]
    runs = [[args.cc, "-m32", "-std=c89"], [args.cc, "-m64", "-std=c89"],
            [args.cc, "-m64", "-x", "c++", "-std=c++98"]]
    failed = 0
    for r in runs:
        cmd = r + strict + [src]
        rc = subprocess.run(cmd).returncode
        print(("ok    " if rc == 0 else "FAIL  ") + " ".join(r[1:]) + " -pedantic -Werror")
        failed |= rc != 0
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("check", choices=["layout", "standalone"])
    p.add_argument("--cc", default="gcc")
    p.add_argument("--header", required=True)
    p.add_argument("--workdir", required=True)
    args = p.parse_args()
    sys.exit(layout(args) if args.check == "layout" else standalone(args))


if __name__ == "__main__":
    main()
