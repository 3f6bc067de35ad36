#!/usr/bin/env python3
"""Re-prices the LoRDS batch-1 GEMV's geometry candidates from a sweep log (scripts/device/lords_batch1_sweep.sh,
run with HILO_LORDS_VERBOSE, which prints every candidate the cost model priced) under variants of the cost model,
and reports what each variant would choose and the measured time of that choice (the sweep's forced geometries).

    python3 scripts/lords_geometry_fit.py sweep.log

Variants: the x * A bytes' weight against a code byte (w), the fixed cost per CTA (F, KB-equivalents), and whether
slab counts whose last slab has under half the others' column tiles are skipped. Unmeasured choices count 999 us.
"""
import re
import sys


def load(path):
    meas, cands, seen = {}, {}, set()
    for blk in open(path).read().split("=== ")[1:]:
        head = blk.split("\n")[0]
        parts = [x.strip() for x in head.split("|")]
        fmt, setting = parts if len(parts) == 2 else ("--bits 4 --block 64", parts[0])
        m = re.search(r"WR=(\d+)(?: HILO_LORDS_SPLIT=(\d+))?", setting)
        wr, ks = int(m.group(1)), int(m.group(2)) if m.group(2) else 0
        order, cur = [], []
        for line in blk.split("\n"):
            c = re.match(r"\s+candidate (\d+) rows/CTA x (\d+) slabs: (\d+) clusters resident, (\d+) waves", line)
            if c:
                cur.append(tuple(int(x) for x in c.groups()))
                continue
            ch = re.match(r"lords_gemv(?: \(wgmma\))?: rows (\d+) x cols (\d+) tiles, rank_pad (\d+): \d+ rows/CTA "
                          r"\((\d+)x\d+ warps\), (\d+) slabs", line)
            if ch:
                rt, ct, rp, w, k = map(int, ch.groups())
                order.append(((rt, ct), rp, (w, k), cur))
                cur = []
            t = re.match(r"\s+(\d+)x(\d+)\s+1\s+lords\s+\d+\s+([\d.]+)", line)
            if t:
                shape = (int(t.group(1)) // 16, int(t.group(2)) // 128)
                meas.setdefault((fmt, shape), {})[(wr, ks)] = float(t.group(3))
        if setting == "HILO_LORDS_WR=0" and fmt not in seen:
            seen.add(fmt)
            for shape, rp, chosen, cs in order:
                cands[(fmt, shape)] = (chosen, cs, rp)
    return meas, cands


def main():
    meas, cands = load(sys.argv[1])
    default_total = sum(meas[k][(0, 0)] for k in cands)
    print(f"the log's own choices: {default_total:.1f} us in all")
    for balanced in (False, True):
        for w in (0.5, 1.0, 1.5, 2.0):
            for fixed in (8, 16):
                total, picks = 0.0, []
                for key, (chosen, cs, rp) in cands.items():
                    bits = 3 if "--bits 3" in key[0] else 4
                    tile, frag = 256 * bits, 2048 * {16: 2, 32: 4, 64: 7}[rp]
                    ct = key[1][1]
                    best = None
                    for rows, ks, _, waves in cs:
                        wr, tpc = rows // 32, -(-ct // ks)
                        if balanced and 2 * (ct - (ks - 1) * tpc) < tpc:
                            continue
                        cost = waves * (tpc * (2 * wr * tile + w * frag) / 1024 + fixed)
                        if best is None or cost < best[0] * 0.999:
                            best = (cost, wr, ks)
                    got = (best[1], best[2])
                    t = meas[key].get((0, 0) if got == chosen else got, 999.0)
                    total += t
                    picks.append(f"{key[0][2:].replace(' --', '/')} {key[1][0] * 16}x{key[1][1] * 128}: {got[0] * 32}x{got[1]} {t}")
                print(f"balanced {balanced} w {w} F {fixed}: {total:.1f} us | " + "; ".join(picks))


if __name__ == "__main__":
    main()
