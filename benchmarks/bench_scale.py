#!/usr/bin/env python3
"""snapstore backup, snapstore watch, restic and borg against the agent's size (issue 14's benchmark).

    python benchmarks/bench_scale.py [--scales 50,200,800] [--big] [--agents-dir DIR] [--interval 5s]
                                     [--workdir DIR] [--out docs/benchmarks.md] [--plot docs/scaling.png]
                                     [--keep] [--json]

For each scale (sample agent `snapstore sample-agent DIR --scale S --seed 1`: ~0.25, 1 and 4 GB
at 50, 200 and 800; --big adds 3200, ~16 GB), one run, the four side by side:

    initial     `snapstore backup`, `restic backup`, `borg create` into empty repositories; then
                `snapstore watch --interval I` starts on its own repository (its first snapshot
                reads the whole database)
    no change   the three backups again; watch gets SIGUSR1 (a tick that finds nothing to store)
    1% day      `snapstore sample-agent DIR --mutate 0.01` runs as a separate writer process while
                watch runs (watch snapshots every I on its own); then the three backups of that day

watch follows its own copy of the agent: the read transaction it holds keeps the day's pages in
the WAL (no checkpoint passes it), so on the same folder restic and borg would read only the WAL.
Both copies get the same day (the same --seed); the two snapstore restores must hold the same data.
    export      `snapstore export latest` (the backup repository)
    restore     `snapstore restore latest` from both snapstore repositories (the two restored
                files must be identical), `restic restore`, `borg extract`

Each command's wall time, CPU time (user + system with its reaped children) and peak RSS come
from os.wait4; bytes added are the repository directory's growth.  watch is one long process:
its CPU time for a step is the difference of its process tree's utime + stime
(/proc/PID/stat) sampled before the step and when the step's snapshot line appears, its RSS the
high-water mark so far (VmHWM).  For the 1% day: the CPU from before the day's first commit to
the snapshot after its last, and how long after the last commit (the WAL's last write) that
snapshot lands.  Targets (issue 14): watch's CPU on the 1% day <= 0.1x restic's 1%-day backup
time and <= 0.2x snapstore backup's of the same change; that snapshot within interval + 1 s of
the last commit; watch's bytes <= backup's for the day; peak RSS of every step < 300 MiB;
the initial repository <= restic's.  Load averages before and after each scale.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_backup as common  # noqa: E402
from bench_lifecycle import write_section  # noqa: E402

SECTION = ("<!-- bench_scale:start -->", "<!-- bench_scale:end -->")
SCALES = (50.0, 200.0, 800.0)
BIG_SCALE = 3200.0
RSS_LIMIT = 300 * 1024 * 1024
WATCH_RESTIC, WATCH_BACKUP = 0.1, 0.2  # watch's 1%-day CPU against these tools' 1%-day backup time
TOOLS = ("backup", "watch", "restic", "borg")
TOOL_NAMES = {"backup": "snapstore backup", "watch": "snapstore watch", "restic": "restic", "borg": "borg"}
BORG_PASSPHRASE = "bench-scale"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def checked(result: common.Result, what: str) -> common.Result:
    if result.rc != 0:
        raise common.BenchError(f"{what} failed (exit {result.rc}): {result.stderr.strip()[-2000:]}")
    return result


def figure(result: common.Result, added: int | None = None) -> dict:
    return {"wall_s": result.wall_s, "cpu_s": result.cpu_s, "peak_rss": result.peak_rss, "added": added}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --------------------------------------------------------------------------- the tools
class Borg:
    """borg 1 on the agent folder (repokey-blake2: encrypted, as restic always is), state in the work dir."""

    def __init__(self, work: Path):
        self.repo, self.cwd = work / "borg-repo", work
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BORG_")}
        self.env |= {"BORG_PASSPHRASE": BORG_PASSPHRASE, "BORG_BASE_DIR": str(work / "borg-base"),
                     "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes"}
        self.n = 0

    def run(self, *args: str, what: str, cwd: Path | None = None) -> common.Result:
        return checked(common.run_measured(["borg", *args], env=self.env, cwd=cwd or self.cwd), what)

    def init(self) -> None:
        self.run("init", "--encryption=repokey-blake2", str(self.repo), what="borg init")

    def backup(self, agent: Path) -> common.Result:
        self.n += 1  # relative path: the archive holds agent/..., as restic's holds the absolute path
        return self.run("create", f"{self.repo}::day{self.n}", agent.name, what="borg create")

    def restore(self, target: Path) -> common.Result:
        target.mkdir(parents=True)
        return self.run("extract", f"{self.repo}::day{self.n}", what="borg extract", cwd=target)


class Watch:
    """One `snapstore watch --json` process; its snapshot lines, timed as they appear."""

    def __init__(self, cmd: list[str], env: dict, out: Path):
        self.out = out
        self.stdout = open(out, "w")
        self.err = open(str(out) + ".err", "w")
        self.started = time.time()
        self.proc = subprocess.Popen(cmd, stdout=self.stdout, stderr=self.err, stdin=subprocess.DEVNULL, env=env)
        self.lines: list[dict] = []  # each with "seen" (time.time()) and "cpu" (tree CPU then) added
        self._offset = 0

    def poll(self) -> list[dict]:
        """New complete lines since the last poll."""
        with open(self.out) as f:
            f.seek(self._offset)
            text = f.read()
        complete = text[:text.rfind("\n") + 1]
        self._offset += len(complete.encode())
        new = []
        if complete:
            now, cpu = time.time(), self.cpu()
            for line in complete.splitlines():
                doc = json.loads(line) | {"seen": now, "cpu": cpu, "hwm": self.hwm()}
                self.lines.append(doc)
                new.append(doc)
        return new

    def wait_line(self, timeout: float = 3600) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            new = self.poll()
            if new:
                return new[0]
            if self.proc.poll() is not None:
                raise common.BenchError(f"watch exited ({self.proc.returncode}): "
                                        f"{Path(str(self.out) + '.err').read_text()[-2000:]}")
            time.sleep(0.02)
        raise common.BenchError("watch wrote no snapshot line in time")

    def cpu(self) -> float:
        """utime + stime of the watch process and its live descendants, plus its reaped children's."""
        stats = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                stats[int(d.name)] = (int(fields[1]), sum(int(x) for x in fields[11:13]),
                                      sum(int(x) for x in fields[13:15]))
        tree, total = {self.proc.pid}, 0
        grew = True
        while grew:
            grew = False
            for pid, (ppid, _own, _children) in stats.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
        for pid in tree:
            if pid in stats:
                total += stats[pid][1] + (stats[pid][2] if pid == self.proc.pid else 0)
        return total / CLK_TCK

    def hwm(self) -> int:
        """The watch process's peak RSS so far (bytes)."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def stop(self) -> dict:
        """SIGTERM (watch takes a last snapshot and exits); its whole-run rusage."""
        self.proc.send_signal(signal.SIGTERM)
        _pid, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.stdout.close()
        self.err.close()
        if self.proc.returncode != 0:
            raise common.BenchError(f"watch exited {self.proc.returncode}: "
                                    f"{Path(str(self.out) + '.err').read_text()[-2000:]}")
        return {"cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss": usage.ru_maxrss * 1024,
                "wall_s": time.time() - self.started}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------- one scale
def agent_for(scale: float, work: Path, args, snapstore: list[str], env: dict) -> tuple[Path, str]:
    """The agent folder under work: a copy of --agents-dir/scaleS, else generated."""
    agent = work / "agent"
    given = Path(args.agents_dir) / f"scale{scale:g}" if args.agents_dir else None
    if given is not None and (given / "sqlite.db").is_file():
        common.progress(f"copying {given}")
        subprocess.run(["cp", "-a", str(given), str(agent)], check=True)
        return agent, f"copy of {given}"
    common.progress(f"sample agent at scale {scale:g}")
    checked(common.run_measured([*snapstore, "sample-agent", str(agent), "--scale", f"{scale:g}", "--seed", "1"],
                                env=env), "sample-agent")
    return agent, f"`snapstore sample-agent DIR --scale {scale:g} --seed 1`"


def run_scale(scale: float, args, snapstore: list[str], restic_exe: str, root: Path) -> dict:
    work = root / f"scale{scale:g}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPSTORE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode compiled once, kept in the work dir
    env |= {"PYTHONPYCACHEPREFIX": str(root / "pycache"), "SNAPSTORE_CACHE_DIR": str(work / "cache")}
    agent, origin = agent_for(scale, work, args, snapstore, env)
    db, config = common.find_db(agent), agent / "mirix.yaml"
    # watch follows its own copy: the read transaction it holds keeps the day's pages in the WAL (no
    # checkpoint can pass it), which would spare restic and borg re-reading the database file.
    watched = work / "agent-watch"
    subprocess.run(["cp", "-a", str(agent), str(watched)], check=True)
    out: dict = {"scale": scale, "agent": origin, "db_bytes": db.stat().st_size, "load_before": loadavg(),
                 "steps": {}}
    repo_b, repo_w = work / "repo-backup", work / "repo-watch"
    ss_b, ss_w = [*snapstore, "--repo", str(repo_b)], [*snapstore, "--repo", str(repo_w)]
    restic = common.Restic(restic_exe, work / "restic-repo", work / "restic-cache")
    borg = Borg(work)
    for init in ([*ss_b, "init"], [*ss_w, "init"]):
        checked(common.run_measured(init, env=env), "snapstore init")
    restic.init()
    borg.init()

    def agent_files() -> list[Path]:
        return [p for p in agent.rglob("*") if p.is_file()]

    def backups(step: str) -> None:
        common.progress(f"scale {scale:g}, {step}: snapstore backup, restic, borg")
        figs = out["steps"].setdefault(step, {})
        common.warm_read(agent_files())
        before = common.tree_bytes(repo_b)
        r = checked(common.run_measured([*ss_b, "backup", "--config", str(config), "--json"], env=env),
                    f"snapstore backup ({step})")
        figs["backup"] = figure(r, common.tree_bytes(repo_b) - before)
        common.warm_read(agent_files())
        before = common.tree_bytes(restic.repo)
        r, _summary = restic.backup([agent])
        figs["restic"] = figure(r, common.tree_bytes(restic.repo) - before)
        common.warm_read(agent_files())
        before = common.tree_bytes(borg.repo)
        r = borg.backup(agent)
        figs["borg"] = figure(r, common.tree_bytes(borg.repo) - before)

    backups("initial")
    common.progress(f"scale {scale:g}: watch starts (its first snapshot reads everything)")
    common.warm_read(agent_files())
    empty = common.tree_bytes(repo_w)
    watch = Watch([*ss_w, "watch", "--config", str(watched / "mirix.yaml"), "--interval", args.interval, "--json"], env,
                  work / "watch.out")
    try:
        first = watch.wait_line()
        out["steps"]["initial"]["watch"] = {"wall_s": first["seen"] - watch.started, "cpu_s": first["cpu"],
                                            "peak_rss": first["hwm"], "added": common.tree_bytes(repo_w) - empty,
                                            "capture": first["capture"]}
        backups("no change")
        common.progress(f"scale {scale:g}, no change: watch SIGUSR1")
        watch.poll()  # lines of the interval's own ticks so far are not this one's
        cpu0, bytes0, t0 = watch.cpu(), common.tree_bytes(repo_w), time.time()
        watch.proc.send_signal(signal.SIGUSR1)
        line = watch.wait_line()
        out["steps"]["no change"]["watch"] = {"wall_s": line["seen"] - t0, "cpu_s": line["cpu"] - cpu0,
                                              "peak_rss": line["hwm"], "capture": line["capture"],
                                              "added": common.tree_bytes(repo_w) - bytes0}
        out["day"] = one_day(watch, watched, common.find_db(watched), repo_w, snapstore, env)
        out["steps"]["1% day"] = {"watch": out["day"]["watch"]}
        common.progress(f"scale {scale:g}: the same 1% day on the backed-up copy (no watch on it)")
        r = checked(common.run_measured(mutate_cmd(snapstore, agent), env=env), "sample-agent --mutate")
        out["day"]["mutate_alone"] = figure(r)
        backups("1% day")
        out["watch_run"] = watch.stop()
    finally:
        watch.kill()
    out["steps"]["1% day"]["watch"]["peak_rss"] = out["watch_run"]["peak_rss"]
    out["restore_identical"] = restores(out, work, ss_b, ss_w, restic, borg, env)
    out["repo_bytes"] = {"backup": common.tree_bytes(repo_b), "watch": common.tree_bytes(repo_w),
                         "restic": common.tree_bytes(restic.repo), "borg": common.tree_bytes(borg.repo)}
    out["load_after"] = loadavg()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return out


def mutate_cmd(snapstore: list[str], agent: Path) -> list[str]:
    """The benchmark's 1% day (the same seed on both copies: the same change)."""
    return [*snapstore, "sample-agent", str(agent), "--mutate", "0.01", "--seed", "2"]


def one_day(watch: Watch, agent: Path, db: Path, repo_w: Path, snapstore: list[str], env: dict) -> dict:
    """A 1% day written by a separate process while watch runs; watch's CPU and bytes from before the
    first commit to the snapshot that holds the last one, and when that snapshot lands."""
    common.progress("1% day: sample-agent --mutate 0.01 while watch runs")
    watch.poll()
    cpu0, bytes0 = watch.cpu(), common.tree_bytes(repo_w)
    t0 = time.time()
    mutate = subprocess.Popen(mutate_cmd(snapstore, agent), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    while True:  # watch's lines are timed as they appear, also during the day
        pid, status, usage = os.wait4(mutate.pid, os.WNOHANG)
        if pid:
            break
        watch.poll()
        time.sleep(0.02)
    ended = time.time()
    mutate.returncode = os.waitstatus_to_exitcode(status)
    if mutate.returncode != 0:
        raise common.BenchError(f"sample-agent --mutate failed: {mutate.stderr.read().decode()[-2000:]}")
    wal = Path(str(db) + "-wal")
    last_commit = wal.stat().st_mtime if wal.exists() else ended
    # The first tick that started after the writer ended sees the final state: it stores it, or finds
    # nothing new (then the snapshot before it already held the last commit). 0.1 s: the poll's lag.
    while True:
        watch.poll()
        after = [d for d in watch.lines if d["seen"] - d["tick_s"] - 0.1 >= ended]
        if after:
            line = after[0]
            break
        watch.wait_line()
    day_lines = [d for d in watch.lines if d["seen"] > t0]
    landed = line if line["snapshot_id"] else next(d for d in reversed(day_lines) if d["snapshot_id"])
    return {
        "mutate_wall_s": ended - t0, "mutate_cpu_s": usage.ru_utime + usage.ru_stime,
        "last_commit_to_snapshot_s": landed["seen"] - last_commit,
        "writer_exit_to_snapshot_s": landed["seen"] - ended,
        "snapshots": sum(1 for d in day_lines if d["snapshot_id"] and d["seen"] <= landed["seen"]),
        "captures": sorted({d["capture"] for d in day_lines if d["seen"] <= landed["seen"]}),
        "pages_read": sum(d["pages_read"] for d in day_lines if d["seen"] <= landed["seen"]),
        "page_count": landed["page_count"],
        "watch": {"cpu_s": landed["cpu"] - cpu0, "wall_s": landed["seen"] - t0,
                  "added": common.tree_bytes(repo_w) - bytes0, "peak_rss": landed["hwm"]},
    }


def restores(out: dict, work: Path, ss_b: list[str], ss_w: list[str], restic: common.Restic, borg: Borg,
             env: dict) -> str:
    """export, then each tool's restore of its last snapshot; how the two snapstore restores compare
    (BenchError if they hold different data)."""
    steps = out["steps"]
    common.progress("export and restores")
    r = checked(common.run_measured([*ss_b, "export", "latest", str(work / "export")], env=env), "snapstore export")
    steps["export"] = {"backup": figure(r)}
    shutil.rmtree(work / "export", ignore_errors=True)
    targets = {"backup": work / "restored-backup" / "sqlite.db", "watch": work / "restored-watch" / "sqlite.db"}
    steps["restore"] = {}
    for tool, cmd in (("backup", ss_b), ("watch", ss_w)):
        targets[tool].parent.mkdir()
        r = checked(common.run_measured([*cmd, "restore", "latest", "--to", str(targets[tool])], env=env),
                    f"snapstore restore ({tool})")
        steps["restore"][tool] = figure(r)
    same = compare(targets["backup"], targets["watch"])
    for path in targets.values():
        shutil.rmtree(path.parent)
    r = checked(common.run_measured([restic.exe, "--repo", str(restic.repo), "restore", "latest", "--target",
                                     str(work / "restored-restic")], env=restic.env), "restic restore")
    steps["restore"]["restic"] = figure(r)
    shutil.rmtree(work / "restored-restic")
    steps["restore"]["borg"] = figure(borg.restore(work / "restored-borg"))
    shutil.rmtree(work / "restored-borg")
    return same


def compare(a: Path, b: Path) -> str:
    """The backed-up copy's and the watched copy's restores after the same day: the same data."""
    if file_digest(a) == file_digest(b):
        return "byte-identical"
    from bench_restore import same_database  # the two copies' files may differ in layout, not in content

    same_database(a, b)
    return "equal row for row"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(common.BLOCK):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- targets, table, plot
def interval_s(text: str) -> float:
    from snapstore.lifecycle.schedule import parse_interval

    return float(parse_interval(text))


def targets(s: dict, interval: float) -> list[tuple[str, float | None, str, bool | None]]:
    """(what, ratio or figure, target, met) for one scale."""
    day, steps = s["day"], s["steps"]
    cpu = day["watch"]["cpu_s"]
    r_restic = common.ratio(cpu, steps["1% day"]["restic"]["wall_s"])
    r_backup = common.ratio(cpu, steps["1% day"]["backup"]["wall_s"])
    r_bytes = common.ratio(day["watch"]["added"], steps["1% day"]["backup"]["added"])
    r_init = common.ratio(steps["initial"]["backup"]["added"], steps["initial"]["restic"]["added"])
    peak = max(f["peak_rss"] for step in steps.values() for tool, f in step.items()
               if tool in ("backup", "watch") and f.get("peak_rss"))
    lands = day["last_commit_to_snapshot_s"]
    return [
        ("watch CPU on the 1% day / restic's 1%-day backup time", r_restic, f"<= {WATCH_RESTIC}",
         None if r_restic is None else r_restic <= WATCH_RESTIC),
        ("watch CPU on the 1% day / snapstore backup's 1%-day time", r_backup, f"<= {WATCH_BACKUP}",
         None if r_backup is None else r_backup <= WATCH_BACKUP),
        ("last commit to watch's snapshot (s)", lands, f"<= interval + 1 = {interval + 1:g} s",
         lands <= interval + 1),
        ("watch bytes / backup bytes, 1% day", r_bytes, "<= 1", None if r_bytes is None else r_bytes <= 1),
        ("snapstore peak RSS of every step (MiB)", peak / 2**20, "< 300 MiB", peak < RSS_LIMIT),
        ("initial repository / restic's", r_init, "<= 1", None if r_init is None else r_init <= 1),
    ]


def cell(f: dict | None) -> str:
    if not f:
        return "—"
    parts = [f"{common.human_secs(f['wall_s'])} ({common.human_secs(f.get('cpu_s'))} CPU)",
             common.human_bytes(f.get("peak_rss"))]
    if f.get("added") is not None:
        parts.append("+" + common.human_bytes(f["added"]))
    return ", ".join(parts)


def markdown(out: dict) -> str:
    interval = interval_s(out["interval"])
    m = out["machine"]
    lines = [SECTION[0], "## Scaling: backup, watch, restic and borg against the agent's size", "",
             f"`{out['command']}` ({m['date']}, {m['nproc']} CPUs, {common.human_bytes(m['mem_total_bytes'])} "
             f"RAM; {out['versions']['restic']}, {out['versions']['borg']}; shared machine: load averages "
             "per scale below). One run per scale. Each cell: wall time (CPU time: user + system, with "
             "reaped children), peak RSS, bytes the repository grew by. watch runs with "
             f"`--interval {out['interval']}` through all steps; its cells are measured on the running process "
             "(CPU from /proc/PID/stat of its process tree; RSS its high-water mark so far; the 1%-day "
             "cell: from before the writer's first commit to the snapshot holding its last). restic and "
             "borg (repokey-blake2) are encrypted, snapstore is not. watch follows its own copy of the agent "
             "(the read transaction it holds keeps a day's pages in the WAL, which would spare restic and borg "
             "re-reading the database file); both copies get the same 1% day (the same seed).", ""]
    for s in out["scales"]:
        d = s["day"]
        lines += [f"### Scale {s['scale']:g}: {common.human_bytes(s['db_bytes'])} database", "",
                  f"Agent: {s['agent']}. Load average (1/5/15 min) {'/'.join(map(str, s['load_before']))} before, "
                  f"{'/'.join(map(str, s['load_after']))} after.", "",
                  "| step | " + " | ".join(TOOL_NAMES[t] for t in TOOLS) + " |",
                  "|---|" + "---|" * len(TOOLS)]
        for step, figs in s["steps"].items():
            lines.append(f"| {step} | " + " | ".join(cell(figs.get(t)) for t in TOOLS) + " |")
        lines += ["", f"1% day: the writer (`sample-agent --mutate 0.01`, a separate process) ran "
                      f"{common.human_secs(d['mutate_wall_s'])} on the watched copy "
                      f"({common.human_secs(d['mutate_alone']['wall_s'])} on the other); watch wrote {d['snapshots']} snapshot(s) "
                      f"({', '.join(d['captures'])}; {d['pages_read']} pages read of {d['page_count']}); its "
                      f"last snapshot landed {common.human_secs(d['last_commit_to_snapshot_s'])} after the last "
                      f"commit (the WAL's last write), {common.human_secs(d['writer_exit_to_snapshot_s'])} after "
                      f"the writer exited. watch over the whole run: {common.human_secs(s['watch_run']['cpu_s'])} "
                      f"CPU, peak RSS {common.human_bytes(s['watch_run']['peak_rss'])}. Both snapstore restores "
                      f"are {s['restore_identical']}. Repositories at the end: "
                      + ", ".join(f"{TOOL_NAMES[t]} {common.human_bytes(s['repo_bytes'][t])}" for t in TOOLS)
                      + ".", "",
                  "| target | figure | target | |", "|---|---|---|---|"]
        for what, value, target, met in targets(s, interval):
            verdict = "n/a" if met is None else ("met" if met else "**NOT met**")
            shown = common.fmt_ratio(value) if value is None or abs(value - 1) > 0.001 else f"{value:.5f}"
            lines.append(f"| {what} | {shown} | {target} | {verdict} |")
        lines.append("")
    lines += ["![time and peak RSS against the database size](scaling.png)", "", SECTION[1]]
    return "\n".join(lines) + "\n"


def plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    sizes = [s["db_bytes"] / 2**30 for s in out["scales"]]
    panels = [("initial", "wall_s", "initial: wall time (s)"), ("no change", "wall_s", "no change: wall time (s)"),
              ("1% day", "wall_s", "1% day: wall time (s); watch: its CPU"),
              (None, "peak_rss", "peak RSS, any step (MiB)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4))
    for ax, (step, key, title) in zip(axes, panels):
        for tool in TOOLS:
            # watch's 1%-day wall time includes the writer's: its own cost is the CPU it spent
            k = "cpu_s" if (tool, step) == ("watch", "1% day") else key
            ys = []
            for s in out["scales"]:
                if step is None:
                    vals = [f[k] for f in (st.get(tool) for st in s["steps"].values()) if f and f.get(k)]
                    ys.append(max(vals) / 2**20 if vals else float("nan"))
                else:
                    f = s["steps"][step].get(tool) or {}
                    ys.append(f.get(k) or float("nan"))
            ax.plot(sizes, ys, marker="o", label=TOOL_NAMES[tool])
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis, form in ((ax.xaxis, "%.2g"), (ax.yaxis, "%g")):
            axis.set_major_formatter(FormatStrFormatter(form))
            axis.set_minor_formatter(NullFormatter())
        ax.set_xticks(sizes)
        ax.set_xlabel("database size (GiB)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"snapstore backup / watch, restic, borg ({out['machine']['date']})", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scales", help="Comma-separated sample-agent scales (default 50,200,800).")
    p.add_argument("--big", action="store_true", help=f"Also scale {BIG_SCALE:g} (~16 GB).")
    p.add_argument("--agents-dir", help="Reuse the sample agents DIR/scaleS (copied first; generated when missing).")
    p.add_argument("--interval", default="5s", help="watch --interval (default 5s).")
    p.add_argument("--workdir")
    p.add_argument("--out", help="Markdown file whose bench_scale section is (re)written.")
    p.add_argument("--plot", help="PNG written with the plot (default: scaling.png beside --out).")
    p.add_argument("--keep", action="store_true", help="Keep the work directory.")
    p.add_argument("--json", action="store_true", help="Print every figure as one JSON object.")
    p.add_argument("--render", metavar="FILE",
                   help="Measure nothing: write the table and plot of a run's --json output saved in FILE.")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        out = json.loads(Path(args.render).read_text())
        return publish(out, args)
    scales = [float(x) for x in args.scales.split(",")] if args.scales else list(SCALES)
    if args.big:
        scales.append(BIG_SCALE)
    interval_s(args.interval)  # a bad interval fails before any work
    snapstore = common.find_snapstore(None)
    restic_exe, reason = common.find_restic(allow_install=False)
    if restic_exe is None or not shutil.which("borg"):
        raise SystemExit(f"bench_scale: needs restic and borg on PATH ({reason or 'borg is not on PATH'})")
    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    out: dict = {"command": "python benchmarks/bench_scale.py " + " ".join(sys.argv[1:] if argv is None else argv),
                 "interval": args.interval, "machine": common.machine_info(),
                 "versions": {"restic": common.tool_version([restic_exe, "version"]).split(" compiled")[0],
                              "borg": common.tool_version(["borg", "--version"])},
                 "scales": []}
    try:
        for scale in scales:
            out["scales"].append(run_scale(scale, args, snapstore, restic_exe, root))
            (root / "run.json").write_text(json.dumps(out, indent=2))  # for --render, should a later scale fail
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    return publish(out, args)


def publish(out: dict, args) -> int:
    section = markdown(out)
    print(json.dumps(out, indent=2) if args.json else section)
    if args.out:
        write_section(Path(args.out), section, SECTION)
    if args.plot or args.out:
        plot(out, Path(args.plot) if args.plot else Path(args.out).parent / "scaling.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
