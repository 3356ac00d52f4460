"""``stats --plot``: repository size and the bytes each backup added, over time (matplotlib, Agg)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..errors import UsageError
from .stats import RepositoryStats

FORMATS = (".png", ".svg")


UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def _human(n: float, _pos=None) -> str:
    for unit in UNITS:
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"


def _unit(largest: float) -> tuple[str, int]:
    """The unit the size axis is drawn in, so its ticks are round numbers of it."""
    power = 0
    while largest >= 1024 * 2 and power < len(UNITS) - 1:
        largest /= 1024
        power += 1
    return UNITS[power], 1024 ** power


def plot_stats(stats: RepositoryStats, out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise UsageError(f"--plot writes .png or .svg files, not {out.name!r}")
    if not stats.snapshots:
        raise UsageError("the repository has no snapshots to plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    times = [datetime.fromisoformat(s.time) for s in stats.snapshots]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2], "hspace": 0.1})
    growth = stats.growth()
    colors = plt.get_cmap("tab10").colors
    agent_color = {agent: colors[(i + 1) % len(colors)] for i, agent in enumerate(sorted(growth))}
    total, running = [], 0
    for s in stats.snapshots:
        running += s.added_bytes
        total.append(running)
    name, scale = _unit(max([*total, *(s.logical_bytes for s in stats.snapshots)]))
    top.fill_between(times, [v / scale for v in total], step="post", alpha=0.15, color="#1f4e79")
    top.step(times, [v / scale for v in total], where="post", color="#1f4e79", linewidth=2.2,
             label="repository size (all agents)")
    for agent, series in sorted(growth.items()):
        t = [datetime.fromisoformat(p["time"]) for p in series]
        top.plot(t, [p["logical_bytes"] / scale for p in series], marker="o", markersize=3.5, linewidth=1.4,
                 linestyle="--", color=agent_color[agent], label=f"{agent}: agent size")
    top.set_ylabel(f"size ({name})")
    top.set_ylim(bottom=0)
    top.grid(True, alpha=0.3)
    top.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncol=2, fontsize=9, frameon=False)
    fig.suptitle(f"{len(stats.snapshots)} snapshots, {_human(stats.disk_bytes)} on disk for "
                 f"{_human(stats.logical_bytes)} of snapshots: deduplication {stats.dedup_ratio:.1f}x, "
                 f"compression {stats.compression_ratio:.1f}x", fontsize=11, x=0.07, y=0.995, ha="left")
    bottom.bar(times, [max(s.added_bytes, 1) for s in stats.snapshots], width=_bar_width(times), align="center",
               color=[agent_color[f"{s.agent}@{s.host}"] for s in stats.snapshots], alpha=0.85)
    bottom.set_yscale("log", base=2)
    bottom.yaxis.set_major_locator(LogLocator(base=2, numticks=6))
    bottom.yaxis.set_major_formatter(FuncFormatter(_human))
    bottom.yaxis.set_minor_locator(NullLocator())
    bottom.set_ylabel("added by each backup\n(bar colour: agent)")
    bottom.grid(True, axis="y", alpha=0.3)
    locator = mdates.AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    for ax in (top, bottom):
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.align_ylabels()
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


def _bar_width(times: list[datetime]) -> float:
    """A bar width (in days) that leaves gaps between neighbouring snapshots."""
    if len(times) < 2:
        return 0.02
    gaps = [(b - a).total_seconds() / 86400 for a, b in zip(times, times[1:]) if b > a]
    return max(min(gaps, default=0.02) * 0.7, 1e-4)
