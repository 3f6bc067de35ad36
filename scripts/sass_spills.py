#!/usr/bin/env python3
"""Where a CUDA object's register spills sit: per kernel, the local-memory instructions (LDL / STL) in all and those
between its first and last warpgroup MMA (HGMMA), i.e. inside the main loop of a wgmma kernel. ptxas -v gives only
the bytes; a spill in the epilogue costs little, one in the main loop a great deal. With --mix N, also the N most
frequent opcodes inside that span, per HGMMA: a static count (code on a branch not taken, such as the integer-division
fallback of a runtime block size, counts as much as the main path), so read it as an upper bound of the issue cost.

Needs cuobjdump: on PATH, or from the PyPI wheel (`pip install nvidia-cuda-cuobjdump`; found under
site-packages/nvidia/cu*/bin). Runs on a machine without a GPU.

Usage: scripts/sass_spills.py OBJECT [--kernel REGEX] [--mix N] [--json]
  e.g. scripts/sass_spills.py build/src/CMakeFiles/hilo_cuda.dir/lords/cuda/wgmma_gemm.cu.o --kernel 'ELi256E'
"""
import argparse
import glob
import json
import os
import re
import shutil
import site
import subprocess
import sys


def find_cuobjdump():
    found = shutil.which("cuobjdump")
    if found:
        return found
    for base in site.getsitepackages() + [site.getusersitepackages()]:
        for path in glob.glob(os.path.join(base, "nvidia", "cu*", "bin", "cuobjdump")):
            return path
    sys.exit("sass_spills: cuobjdump not found (pip install nvidia-cuda-cuobjdump, or put it on PATH)")


def kernels(sass):
    """Yields (mangled name, its SASS lines) per function of cuobjdump -sass output."""
    name, lines = None, []
    for line in sass.splitlines():
        m = re.search(r"Function : (\S+)", line)
        if m:
            if name:
                yield name, lines
            name, lines = m.group(1), []
        elif name:
            lines.append(line)
    if name:
        yield name, lines


def opcode(line):
    """The opcode's first part (HMMA, LDS, ...) of a SASS instruction line, or None for other lines."""
    m = re.match(r"\s*/\*[0-9a-f]{4,}\*/\s*(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)", line)
    return m.group(1) if m else None


def spill_counts(lines, mix=0):
    local = [i for i, l in enumerate(lines) if re.search(r"\b(LDL|STL)(\.\S+)?\s", l)]
    mma = [i for i, l in enumerate(lines) if "HGMMA" in l]
    inside = [i for i in local if mma and mma[0] <= i <= mma[-1]]
    row = {"local_ops": len(local), "in_mma_span": len(inside), "hgmma": len(mma), "instructions": len(lines)}
    if mix and mma:
        ops = [o for o in (opcode(l) for l in lines[mma[0]:mma[-1] + 1]) if o]
        counts = {}
        for o in ops:
            counts[o] = counts.get(o, 0) + 1
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:mix]
        row["span_per_hgmma"] = round(len(ops) / len(mma), 1)
        row["mix_per_hgmma"] = {o: round(n / len(mma), 1) for o, n in top}
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("object")
    ap.add_argument("--kernel", default="", help="regex the mangled kernel name must match")
    ap.add_argument("--mix", type=int, default=0, metavar="N",
                    help="also the N most frequent opcodes inside the HGMMA span, per HGMMA")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        re.compile(args.kernel)
    except re.error as e:
        sys.exit(f"sass_spills: --kernel: not a regular expression ({e}): {args.kernel}")
    if args.mix < 0:
        sys.exit(f"sass_spills: --mix: expected a count >= 0, got {args.mix}")
    if not os.path.isfile(args.object):
        sys.exit(f"sass_spills: object: no such file: {args.object}")
    run = subprocess.run([find_cuobjdump(), "-sass", args.object], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"sass_spills: cuobjdump failed on {args.object}: {run.stderr.strip()}")
    rows = [dict(kernel=n, **spill_counts(l, args.mix)) for n, l in kernels(run.stdout) if re.search(args.kernel, n)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    mix = " | instructions per HGMMA in the span | most frequent, per HGMMA" if args.mix else ""
    print(f"| kernel | LDL/STL | inside the HGMMA span | HGMMA{mix} |")
    print("| --- | --- | --- | ---" + (" | --- | ---" if args.mix else "") + " |")
    for r in rows:
        cells = [short_name(r["kernel"]), r["local_ops"], r["in_mma_span"], r["hgmma"]]
        if args.mix:
            cells += [r.get("span_per_hgmma", "-"),
                      " ".join(f"{o} {n}" for o, n in r.get("mix_per_hgmma", {}).items()) or "-"]
        print("| " + " | ".join(str(c) for c in cells) + " |")


def short_name(mangled):
    """The kernel's name and template arguments (c++filt where there is one), without namespaces or parameters."""
    name = mangled
    if shutil.which("c++filt"):
        name = subprocess.run(["c++filt", mangled], capture_output=True, text=True).stdout.strip() or mangled
    name = name.replace("(anonymous namespace)::", "").split("(")[0]
    return re.sub(r"^.*::", "", name.split("<")[0]) + ("<" + name.split("<", 1)[1] if "<" in name else "")


if __name__ == "__main__":
    main()
