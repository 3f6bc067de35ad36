#!/usr/bin/env python3
"""Where a CUDA object's register spills sit: per kernel, the local-memory instructions (LDL / STL) in all and those
between its first and last warpgroup MMA (HGMMA), i.e. inside the main loop of a wgmma kernel. ptxas -v gives only
the bytes; a spill in the epilogue costs little, one in the main loop a great deal.

Needs cuobjdump: on PATH, or from the PyPI wheel (`pip install nvidia-cuda-cuobjdump`; found under
site-packages/nvidia/cu*/bin). Runs on a machine without a GPU.

Usage: scripts/sass_spills.py OBJECT [--kernel REGEX] [--json]
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


def spill_counts(lines):
    local = [i for i, l in enumerate(lines) if re.search(r"\b(LDL|STL)(\.\S+)?\s", l)]
    mma = [i for i, l in enumerate(lines) if "HGMMA" in l]
    inside = [i for i in local if mma and mma[0] <= i <= mma[-1]]
    return {"local_ops": len(local), "in_mma_span": len(inside), "hgmma": len(mma), "instructions": len(lines)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("object")
    ap.add_argument("--kernel", default="", help="regex the mangled kernel name must match")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        re.compile(args.kernel)
    except re.error as e:
        sys.exit(f"sass_spills: --kernel: not a regular expression ({e}): {args.kernel}")
    if not os.path.isfile(args.object):
        sys.exit(f"sass_spills: object: no such file: {args.object}")
    run = subprocess.run([find_cuobjdump(), "-sass", args.object], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"sass_spills: cuobjdump failed on {args.object}: {run.stderr.strip()}")
    rows = [dict(kernel=n, **spill_counts(l)) for n, l in kernels(run.stdout) if re.search(args.kernel, n)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print("| kernel | LDL/STL | inside the HGMMA span | HGMMA |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {short_name(r['kernel'])} | {r['local_ops']} | {r['in_mma_span']} | {r['hgmma']} |")


def short_name(mangled):
    """The kernel's name and template arguments (c++filt where there is one), without namespaces or parameters."""
    name = mangled
    if shutil.which("c++filt"):
        name = subprocess.run(["c++filt", mangled], capture_output=True, text=True).stdout.strip() or mangled
    name = name.replace("(anonymous namespace)::", "").split("(")[0]
    return re.sub(r"^.*::", "", name.split("<")[0]) + ("<" + name.split("<", 1)[1] if "<" in name else "")


if __name__ == "__main__":
    main()
