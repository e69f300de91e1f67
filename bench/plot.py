#!/usr/bin/python3
"""Bar chart of bench/run's ratios -> results.png (python3-matplotlib from Debian).

usage: plot.py RESULTS.tsv OUT.png
Left: throughput ratios of medians (higher is better), log scale, 1.0 marked.
Right: daemon RSS (lower is better), absolute MiB.
"""
import os
import statistics
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import collect, load, ratio  # noqa: E402

PAIRS = [("reservefs-eof", "passthrough_ll", "#1f77b4"),
         ("reservefs-eof", "native", "#aec7e8"),
         ("reservefs-write", "passthrough_ll", "#2ca02c"),
         ("reservefs-write", "native", "#98df8a"),
         ("passthrough_ll", "native", "#7f7f7f")]
SYS_COLORS = {"reservefs-eof": "#1f77b4", "reservefs-write": "#2ca02c",
              "passthrough_ll": "#7f7f7f", "native": "#ff7f0e"}


def main():
    data = collect(load(sys.argv[1]))
    thr = [(k, d) for k, d in data.items() if d["better"] == "higher"]
    rss = [(k, d) for k, d in data.items() if d["unit"] == "KiB"]
    pairs = [p for p in PAIRS if any(ratio(d, p[0], p[1]) is not None for _, d in thr)]

    fig, axes = plt.subplots(1, 2, figsize=(15, max(6, 0.55 * len(thr) * max(1, len(pairs)) / 2.2 + 2)),
                             gridspec_kw={"width_ratios": [3, 1.2]})
    ax = axes[0]
    n = len(pairs) or 1
    h = 0.8 / n
    labels = [f"{w}\n{m}" for (w, m), _ in thr]
    for j, (a, b, col) in enumerate(pairs):
        ys, xs = [], []
        for i, (_, d) in enumerate(thr):
            r = ratio(d, a, b)
            if r is not None:
                ys.append(i + (j - (n - 1) / 2) * h)
                xs.append(r)
        bars = ax.barh(ys, xs, height=h, color=col, label=f"{a} / {b}")
        for y, x in zip(ys, xs):
            ax.text(x, y, f" {x:.2f}", va="center", fontsize=7)
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xscale("log")
    allx = [ratio(d, a, b) for a, b, _ in pairs for _, d in thr]
    allx = [x for x in allx if x]
    if allx:
        lo, hi = min(allx + [1.0]), max(allx + [1.0])
        ax.set_xlim(lo / 1.5, hi * 1.6)
        ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50)
                 if lo / 1.5 <= t <= hi * 1.6]
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks(range(len(thr)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ratio of medians (log scale) — higher is better")
    ax.set_title("Throughput ratios")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", which="both", alpha=0.3)

    ax = axes[1]
    if rss:
        systems = [s for s in SYS_COLORS if any(s in d["vals"] for _, d in rss)]
        n2 = len(systems) or 1
        h2 = 0.8 / n2
        for j, s in enumerate(systems):
            ys, xs = [], []
            for i, (_, d) in enumerate(rss):
                v = d["vals"].get(s)
                if v:
                    ys.append(i + (j - (n2 - 1) / 2) * h2)
                    xs.append(statistics.median(v) / 1024)
            ax.barh(ys, xs, height=h2, color=SYS_COLORS[s], label=s)
            for y, x in zip(ys, xs):
                ax.text(x, y, f" {x:.1f}", va="center", fontsize=7)
        for i, (_, d) in enumerate(rss):
            for j, s in enumerate(systems):
                if s not in d["vals"] and d["fails"].get(s):
                    ax.text(0, i + (j - (n2 - 1) / 2) * h2, f" {s}: failed", va="center",
                            fontsize=7, color="red")
        ax.set_yticks(range(len(rss)))
        ax.set_yticklabels([m for (_, m), _ in rss], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("daemon VmRSS, MiB — lower is better")
        ax.set_title("Daemon memory")
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(axis="x", alpha=0.3)
    else:
        ax.axis("off")
    fig.suptitle("reservefs vs libfuse passthrough_ll vs native (bench/run)")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)


if __name__ == "__main__":
    main()
