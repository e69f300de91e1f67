#!/usr/bin/python3
"""Turn bench/run's raw results.tsv (+ meta.env) into results.md.

usage: report.py RESULTS.tsv META.env OUT.md
"""
import csv
import math
import statistics
import sys
from collections import OrderedDict, defaultdict

SYSTEMS = ["reservefs-eof", "reservefs-write", "passthrough_ll", "native"]
RESERVEFS = ["reservefs-eof", "reservefs-write"]
PEERS = ["passthrough_ll", "native"]

DESCR = {
    "seqwrite": "sequential write, 1 MiB blocks, final fsync included",
    "seqread": "sequential read, 1 MiB blocks, cold cache (remount + drop_caches)",
    "randwrite": "random 4 KiB pwrite in a preallocated file, final fsync included",
    "randread": "random 4 KiB pread, cold cache (remount + drop_caches)",
    "mmapwrite": "random 4 KiB stores through a shared mmap, msync every N writes + at end",
    "fsyncappend": "4 KiB appends, each followed by fdatasync (database log)",
    "smallfiles": "mdbench: create+4 KiB write+close / cold stat / unlink",
    "rss": "daemon VmRSS after remount + looking up N files (lower is better)",
}


def load(path):
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            rows.append(r)
    return rows


def load_meta(path):
    meta = {}
    try:
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    meta[k] = v
    except OSError:
        pass
    return meta


def collect(rows):
    """-> OrderedDict[(workload, metric)] -> {'unit','better','byrep':{sys:{rep:value}},
    'vals':{sys:[the same values]},'fails':{sys:[notes]}}"""
    data = OrderedDict()
    for r in rows:
        if r["metric"] == "run":
            continue
        key = (r["workload"], r["metric"])
        d = data.setdefault(key, {"unit": r["unit"], "better": r["better"],
                                  "byrep": defaultdict(dict), "fails": defaultdict(list)})
        if r["value"] == "FAIL" or r["value"] == "":
            d["fails"][r["system"]].append(r["note"] or "failed")
        else:
            d["byrep"][r["system"]][r["rep"]] = float(r["value"])
    for d in data.values():
        d["vals"] = {s: list(v.values()) for s, v in d["byrep"].items()}
    return data


def head(L, cols, right):
    """Header and alignment rows of a table: @cols, the last @right of them right-aligned."""
    L.append("| " + " | ".join(cols) + " |")
    L.append("|" + "---|" * (len(cols) - right) + "---:|" * right)


def fmt(v, unit):
    if unit == "KiB":
        return f"{v / 1024:.1f} MiB"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}"


def fmt_range(v, unit):
    """The median of @v, with its min – max when there are several."""
    c = fmt(statistics.median(v), unit)
    if len(v) > 1:
        c += f" ({fmt(min(v), unit)} – {fmt(max(v), unit)})"
    return c


def ratio(d, a, b):
    va, vb = d["vals"].get(a), d["vals"].get(b)
    if not va or not vb:
        return None
    mb = statistics.median(vb)
    return statistics.median(va) / mb if mb else None


def overlap(d, a, b):
    """True when the min-max ranges of a and b (two or more runs each) overlap:
    the ratio of medians is then within this run's own spread."""
    va, vb = d["vals"].get(a), d["vals"].get(b)
    if not va or not vb or len(va) < 2 or len(vb) < 2:
        return False
    return max(va) >= min(vb) and max(vb) >= min(va)


def paired(d, a, b):
    """Ratios a/b repetition by repetition: the runs of one repetition follow each
    other within a minute or two, so slow drifts of the disk cancel out."""
    ra, rb = d["byrep"].get(a, {}), d["byrep"].get(b, {})
    return [ra[k] / rb[k] for k in sorted(ra, key=int) if k in rb and rb[k]]


def sign_p(k, n):
    """Two-sided sign test: the chance of k or more of n repetitions on one side
    (or as many on the other) if both systems were equally fast."""
    if n == 0:
        return 1.0
    k = max(k, n - k)
    tail = sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def verdict(rs, target, better):
    """'ahead' / 'behind' when a sign test over the repetitions says so at 5%,
    else 'tie'; ahead means better than target (higher, or lower for RSS)."""
    up = sum(1 for r in rs if (r > target if better == "higher" else r < target))
    down = sum(1 for r in rs if (r < target if better == "higher" else r > target))
    n = up + down
    if n and sign_p(up, n) < 0.05:
        return ("ahead" if up > down else "behind"), up, len(rs)
    return "tie", up, len(rs)


def paired_cell(rs, target, better):
    """Paired ratios against @target: median (range), repetitions that met it,
    the sign test's verdict; "–" with fewer than 3 repetitions."""
    if len(rs) < 3:
        return "–"
    v, up, n = verdict(rs, target, better)
    met = "≥" if better == "higher" else "<"
    return f"{statistics.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f}), {up}/{n} {met} {target:g}: **{v}**"


def ratios(data):
    """List of (workload, metric, better, pair-label, ratio) for every computable pair."""
    out = []
    for (w, m), d in data.items():
        for a in RESERVEFS + ["passthrough_ll"]:
            for b in PEERS:
                if a == b:
                    continue
                r = ratio(d, a, b)
                if r is not None:
                    out.append((w, m, d["better"], f"{a} / {b}", r))
    return out


def main():
    rows = load(sys.argv[1])
    meta = load_meta(sys.argv[2])
    data = collect(rows)
    present = [s for s in SYSTEMS if any(s in d["vals"] or s in d["fails"] for d in data.values())]
    variants = sorted({s for d in data.values() for s in d["vals"] if s not in SYSTEMS})
    pt_variants = [s for s in variants if s.startswith("passthrough_ll:")]
    variants = [s for s in variants if s not in pt_variants]
    L = []
    L.append("# reservefs benchmarks against peers\n")
    L.append("Generated by `bench/run`" + (" --quick" if meta.get("quick") == "1" else "") +
             "; see `bench/README.md` for what each workload does. Raw numbers: `results.tsv`.\n")
    L.append("| | |\n|---|---|")
    for k, label in [("date", "date"), ("commit", "commit"), ("nproc", "nproc"), ("cpu", "cpu"),
                     ("mem", "memory"), ("kernel", "kernel"), ("backing_fs", "backing fs"),
                     ("libfuse", "libfuse"), ("fio", "fio"), ("reps", "repetitions"),
                     ("sizes", "sizes"), ("pt_opts", "passthrough_ll options"),
                     ("reservefs_size", "reservefs store size"), ("nofile", "RLIMIT_NOFILE"),
                     ("elapsed", "run time")]:
        if meta.get(k):
            L.append(f"| {label} | {meta[k]} |")
    L.append("")
    if meta.get("reservefs_note"):
        L.append(f"**reservefs was skipped: {meta['reservefs_note']}.**\n")

    L.append("## How to read the ratios\n")
    L.append("Ratios compare medians. For throughput (MiB/s, IOPS, ops/s) **higher is better**: "
             "`reservefs / passthrough_ll` = 1.20 means reservefs did 20% more work per second than "
             "libfuse's passthrough_ll. For memory (RSS) **lower is better**. `passthrough_ll / native` "
             "is the plain cost of going through FUSE on this machine, the yardstick for the rest. "
             "A ratio marked ≈ compares two systems whose min–max ranges over the repetitions "
             "overlap: the difference is within this run's own spread.\n")

    # ratio table
    rs = ratios(data)
    pairs = [p for p in ["reservefs-eof / passthrough_ll", "reservefs-eof / native",
                         "reservefs-write / passthrough_ll", "reservefs-write / native",
                         "passthrough_ll / native"] if any(r[3] == p for r in rs)]
    if pairs:
        L.append("## Ratios (medians)\n")
        head(L, ["workload", "metric", "better"] + pairs, len(pairs))
        for (w, m), d in data.items():
            cells = []
            for p in pairs:
                a, b = p.split(" / ")
                r = ratio(d, a, b)
                cells.append("–" if r is None else
                             f"{r:.2f}" + (" ≈" if overlap(d, a, b) else ""))
            if all(c == "–" for c in cells):
                continue
            L.append(f"| {w} | {m} | {d['better']} | " + " | ".join(cells) + " |")
        L.append("")

    # paired ratios, with a sign test against each target
    targets = [("reservefs-eof", "passthrough_ll", 1.0), ("reservefs-write", "passthrough_ll", 1.0),
               ("reservefs-eof", "native", 0.9), ("reservefs-write", "native", 0.9)]
    prow = []
    for (w, m), d in data.items():
        cells = []
        for a, b, t in targets:
            if b == "native" and w != "seqread":
                cells.append("–")
                continue
            cells.append(paired_cell(paired(d, a, b), t, d["better"]))
        if any(c != "–" for c in cells):
            prow.append(f"| {w} | {m} | " + " | ".join(cells) + " |")
    if prow:
        L.append("## Paired ratios and targets\n")
        L.append("The same ratios taken repetition by repetition (each repetition runs every "
                 "system back to back), their median and range, how many repetitions met the "
                 "target (≥ 1.0 against passthrough_ll; sequential read ≥ 0.9 of native), and a "
                 "two-sided sign test at 5%: **ahead** / **behind** when the repetitions fall "
                 "on one side of the target more often than chance allows, **tie** when this "
                 "run cannot tell.\n")
        head(L, ["workload", "metric"] + [f"{a} / {b} (target {t:g})" for a, b, t in targets], 0)
        L.extend(prow)
        L.append("")

    L.append("## Medians (min – max)\n")
    head(L, ["workload", "metric", "unit"] + present, len(present))
    for (w, m), d in data.items():
        cells = []
        for s in present:
            v = d["vals"].get(s)
            if v:
                c = fmt_range(v, d["unit"])
                if d["fails"].get(s):
                    c += f" +{len(d['fails'][s])} failed"
            elif d["fails"].get(s):
                c = "FAILED"
            else:
                c = "–"
            cells.append(c)
        unit = "MiB" if d["unit"] == "KiB" else d["unit"]
        L.append(f"| {w} | {m} | {unit} | " + " | ".join(cells) + " |")
    L.append("")

    if variants:
        L.append("## reservefs variants\n")
        L.append("The same workload on `reservefs-eof` mounted with extra options (after the colon): "
                 "`dirty_limit=4M` / `dirty_limit=0` (unlimited) show what the per-file dirty limit "
                 "costs; `mmap_dirty_max=0` leaves the kernel's dirty pages of the mount unbounded; "
                 "`bench_no_reserve` bypasses the reservation bookkeeping on write, so the "
                 "ratio is what that bookkeeping costs (1.00 = nothing).\n")
        head(L, ["workload", "metric", "variant", "median (min – max)", "reservefs-eof",
                 "variant / reservefs-eof", "paired: median, repetitions above 1"], 4)
        for (w, m), d in data.items():
            base = d["vals"].get("reservefs-eof")
            for s in variants:
                v = d["vals"].get(s)
                if not v:
                    continue
                med = statistics.median(v)
                c = fmt_range(v, d["unit"])
                b = fmt(statistics.median(base), d["unit"]) if base else "–"
                r = f"{med / statistics.median(base):.2f}" if base and statistics.median(base) else "–"
                rs = paired(d, s, "reservefs-eof")
                pr = (f"{statistics.median(rs):.2f}, {sum(x > 1 for x in rs)}/{len(rs)}"
                      if rs else "–")
                L.append(f"| {w} | {m} | {s} | {c} | {b} | {r} | {pr} |")
        L.append("")

    if pt_variants:
        L.append("## Against passthrough_ll with the kernel's permission checks\n")
        L.append("passthrough_ll leaves permissions to the backing filesystem, which it reaches "
                 "with the daemon's own credentials; reservefs has the kernel check them "
                 "(`default_permissions`), as a multi-user filesystem must. With that option "
                 "the kernel asks for a directory's attributes again after every create or "
                 "unlink in it, before it checks the next one: one more round trip each. "
                 "`passthrough_ll:default_permissions` is the peer with the same checks.\n")
        head(L, ["workload", "metric", "peer", "median (min – max)",
                 "reservefs-eof / peer", "paired: median (range), reps ≥ target, verdict"], 3)
        for (w, m), d in data.items():
            for s in pt_variants:
                v = d["vals"].get(s)
                r = ratio(d, "reservefs-eof", s)
                if not v or r is None:
                    continue
                pr = paired_cell(paired(d, "reservefs-eof", s), 1.0, d["better"])
                L.append(f"| {w} | {m} | {s} | {fmt_range(v, d['unit'])} | {r:.2f} | {pr} |")
        L.append("")

    fails = [(w, m, s, n) for (w, m), d in data.items() for s, ns in d["fails"].items() for n in ns]
    runfails = [r for r in rows if r["metric"] == "run"]
    if fails or runfails:
        L.append("## Failures\n")
        for w, m, s, n in fails:
            L.append(f"- {w} / {m} on {s}: {n}")
        for r in runfails:
            L.append(f"- {r['workload']} on {r['system']} rep {r['rep']}: {r['note']}")
        L.append("")

    L.append("## Workloads\n")
    for w, t in DESCR.items():
        if any(k[0] == w for k in data):
            L.append(f"- **{w}**: {t}")
    L.append("")
    with open(sys.argv[3], "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
