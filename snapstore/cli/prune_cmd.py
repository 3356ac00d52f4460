"""snapstore prune: delete the data no snapshot references any more; repack mostly-unused packs."""
from __future__ import annotations

import re

import click

from ..errors import UsageError
from ..lifecycle.prune import DEFAULT_MAX_UNUSED, PruneReport, prune
from .common import JSON_OPTION, Progress, emit_json, human_bytes, open_repo

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024 ** 2, "mb": 1000 ** 2, "mib": 1024 ** 2,
          "g": 1024 ** 3, "gb": 1000 ** 3, "gib": 1024 ** 3, "t": 1024 ** 4, "tb": 1000 ** 4, "tib": 1024 ** 4}


def parse_percent(text: str) -> float:
    """``5%`` or ``5`` -> 0.05."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*%?\s*", text)
    if not match or float(match.group(1)) > 100:
        raise UsageError(f"--max-unused takes a percentage from 0% to 100%, not {text!r}")
    return float(match.group(1)) / 100


def parse_size(text: str) -> int:
    """``500M``, ``2GiB``, ``1.5G``, ``1000000`` -> bytes (K/M/G/T alone are binary, as in restic)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise UsageError(f"--max-repack-size takes a size such as 500M or 2G, not {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def prune_options(f):
    """The options ``forget --prune`` shares."""
    f = click.option("--max-repack-size", metavar="SIZE",
                     help="Repack at most this many bytes of packs per run (e.g. 500M, 2G); default: no limit.")(f)
    f = click.option("--max-unused", default=f"{DEFAULT_MAX_UNUSED:.0%}", show_default=True, metavar="PCT",
                     help="Repack a pack when more than PCT of its bytes are unused (per pack; 0%: every "
                          "partly unused pack).")(f)
    return f


def run_prune(repo, *, max_unused: str, max_repack_size: str | None, dry_run: bool, as_json: bool,
              show: bool = True) -> PruneReport:
    """Prune with stderr phase lines and a byte meter; prints the result if ``show``."""
    limit = parse_size(max_repack_size) if max_repack_size is not None else None
    fraction = parse_percent(max_unused)
    progress = Progress("repack", 0, enabled=not as_json, verb="read")
    try:
        report = prune(repo, max_unused=fraction, max_repack_size=limit, dry_run=dry_run,
                       say=lambda line: click.echo(f"prune: {line}", err=True), progress=progress)
    finally:
        progress.close()
    if show and as_json:
        emit_json(report.as_dict())
    elif show:
        for line in format_report(report):
            click.echo(line)
    return report


def format_report(report: PruneReport) -> list[str]:
    doc = report.as_dict()
    packs, size = doc["packs"], doc["bytes"]
    lines = [f"{doc['snapshots']} snapshot{'s' * (doc['snapshots'] != 1)} need {doc['needed_blobs']} chunks"]
    for problem in packs["unreadable"]:
        lines.append(f"warning: pack {problem} (in no index file; left alone: see 'snapstore repair packs')")
    if doc["nothing_to_do"]:
        lines.append("nothing to prune: every pack is in use (unused bytes left in kept packs: "
                     f"{human_bytes(size['kept_unused'])})")
        return lines
    would = "would " if report.dry_run else ""
    lines.append(f"{would}delete {packs['deleted']} unused pack{'s' * (packs['deleted'] != 1)} "
                 f"({human_bytes(size['deleted_packs'])})")
    lines.append(f"{would}repack {packs['repacked']} partly used pack{'s' * (packs['repacked'] != 1)} "
                 f"({human_bytes(size['repacked_packs'])}, of which {human_bytes(size['repack_unused'])} unused)"
                 + ("" if report.dry_run else f" into {packs['new']} new"))
    if packs["stale_index_entries"]:
        lines.append(f"{would}drop {packs['stale_index_entries']} index entries of packs already gone")
    if report.dry_run:
        lines.append(f"about {human_bytes(size['freed'])} would be freed (dry run; nothing changed)")
    else:
        lines.append(f"{doc['index_files']['before']} index file{'s' * (doc['index_files']['before'] != 1)} "
                     "replaced by one")
        lines.append(f"freed {human_bytes(size['freed'])}")
    return lines


@click.command("prune")
@prune_options
@click.option("--dry-run", "-n", is_flag=True, help="Only show what would be deleted and repacked.")
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, max_unused: str, max_repack_size: str | None, dry_run: bool, as_json: bool) -> None:
    """Delete data that no snapshot references any more (after 'snapstore forget').

    Packs no snapshot uses are deleted; packs with more than --max-unused of unused
    bytes are repacked (their used chunks copied into new packs); the index files are
    replaced by one.  Holds the repository lock exclusively: backups, restores and
    verifies wait for it (and it for them).  Killed at any point, the repository stays
    whole and the next prune finishes the job.  A snapshot whose manifest cannot be
    read stops it before anything is deleted (exit 4).
    """
    run_prune(open_repo(ctx), max_unused=max_unused, max_repack_size=max_repack_size, dry_run=dry_run,
              as_json=as_json)
