"""snapstore forget: remove snapshots by restic's keep policy, or by id."""
from __future__ import annotations

import click

from ..errors import UsageError
from ..lifecycle.forget import Filter, forget_snapshots, parse_group_by, plan_for_repository, resolve_ids
from ..lifecycle.policy import Policy, parse_duration
from .common import JSON_OPTION, emit_json, open_repo
from .prune_cmd import format_report, parse_percent, parse_size, prune_options, run_prune

FREED_NOTE = "the data only they used stays in the repository until 'snapstore prune' (or forget --prune)"


def _row(snap: dict) -> str:
    tags = f"  [{','.join(snap['tags'])}]" if snap["tags"] else ""
    return f"{snap['short_id']}  {snap['time'][:19].replace('T', ' ')}  {snap['host']}/{snap['agent']}{tags}"


def policy_options(f):
    """The keep options, shared with ``snapstore schedule``."""
    for name, what in (("yearly", "year"), ("monthly", "month"), ("weekly", "ISO week"), ("daily", "day"),
                       ("hourly", "hour")):
        f = click.option(f"--keep-{name}", type=int, default=0, metavar="N",
                         help=f"Keep the newest snapshot of each of the last N {what}s that have one (-1: all).")(f)
    f = click.option("--keep-tag", multiple=True, metavar="TAG", help="Keep every snapshot with this tag.")(f)
    f = click.option("--keep-within", metavar="DURATION",
                     help="Keep snapshots within DURATION (e.g. 7d, 36h, 2m, 1y) of the group's newest.")(f)
    f = click.option("--keep-last", type=int, default=0, metavar="N", help="Keep the N newest snapshots (-1: all).")(f)
    return f


def build_policy(keep_last: int, keep_hourly: int, keep_daily: int, keep_weekly: int, keep_monthly: int,
                 keep_yearly: int, keep_within: str | None, keep_tag: tuple[str, ...]) -> Policy:
    return Policy(last=keep_last, hourly=keep_hourly, daily=keep_daily, weekly=keep_weekly, monthly=keep_monthly,
                  yearly=keep_yearly, within=parse_duration(keep_within) if keep_within else None, tags=keep_tag)


@click.command("forget")
@click.argument("snapshot_refs", nargs=-1, metavar="[ID|latest]...")
@policy_options
@click.option("--group-by", default="host,agent", show_default=True, metavar="FIELDS",
              help="Apply the policy separately to each group (host, agent, tags; '' for one group).")
@click.option("--host", help="Only consider snapshots of this host.")
@click.option("--agent", help="Only consider snapshots of this agent.")
@click.option("--tag", "tags", multiple=True, help="Only consider snapshots with this tag (repeatable: all of them).")
@click.option("--keep-safety", default="7d", show_default=True, metavar="DURATION",
              help="How long restore's safety snapshots (tag pre-restore) are kept unless the policy names them.")
@click.option("--dry-run", "-n", is_flag=True, help="Only show what would be removed and why the rest stays.")
@click.option("--prune", "then_prune", is_flag=True,
              help="Then delete the data no remaining snapshot references (as 'snapstore prune').")
@prune_options
@JSON_OPTION
@click.pass_context
def command(ctx: click.Context, snapshot_refs: tuple[str, ...], keep_last: int, keep_hourly: int, keep_daily: int,
            keep_weekly: int, keep_monthly: int, keep_yearly: int, keep_within: str | None,
            keep_tag: tuple[str, ...], group_by: str, host: str | None, agent: str | None, tags: tuple[str, ...],
            keep_safety: str, dry_run: bool, then_prune: bool, max_unused: str, max_repack_size: str | None,
            as_json: bool) -> None:
    """Remove snapshots: those named, or those a keep policy does not keep.

    Policies follow restic's: per group of host and agent, the newest snapshot of each
    of the last N hours/days/weeks/months/years that have one, the last N, those within
    a duration of the newest, those with a tag.  Only snapshot files are removed (under
    the exclusive repository lock); the chunks they referenced stay in the repository
    until a prune (--prune runs one right after, under the same lock).
    """
    policy = build_policy(keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly,
                          keep_within, keep_tag)
    safety = parse_duration(keep_safety)
    fields = parse_group_by(group_by)
    if then_prune:  # a bad prune option is reported before anything is forgotten
        parse_percent(max_unused)
        parse_size(max_repack_size) if max_repack_size is not None else None
    repo = open_repo(ctx)
    if snapshot_refs:
        if not policy.empty() or host or agent or tags:
            raise UsageError("give snapshot IDs or a keep policy, not both")
        named = resolve_ids(repo, snapshot_refs)
        doc = {"groups": [], "remove": [{"id": s.id, "short_id": s.short_id, "time": s.time, "host": s.host,
                                         "agent": s.agent, "tags": s.tags} for s in named]}
        ids = [s.id for s in named]
    else:
        plan = plan_for_repository(repo, policy, group_by=fields, selection=Filter(host, agent, tags), safety=safety)
        doc = plan.as_dict()
        doc["remove"] = [r for g in doc["groups"] for r in g["remove"]]
        ids = plan.remove_ids
    pruned = None
    if dry_run:
        removed = []
    else:
        with repo.lock(exclusive=True):  # forget and prune in one hold: nothing runs in between
            removed = forget_snapshots(repo, ids)
            if then_prune:
                pruned = run_prune(repo, max_unused=max_unused, max_repack_size=max_repack_size, dry_run=False,
                                   as_json=as_json, show=False)
    doc |= {"dry_run": dry_run, "removed": len(removed)}
    if pruned is not None:
        doc["prune"] = pruned.as_dict()
    if as_json:
        emit_json(doc)
        return
    for group in doc["groups"]:
        label = ", ".join(f"{k} {v or '-'}" for k, v in group["group"].items()) or "all snapshots"
        kind = " (safety snapshots)" if group["kind"] == "safety" else ""
        click.echo(f"{label}{kind}: keep {len(group['keep'])}, remove {len(group['remove'])}")
        for snap in group["keep"]:
            click.echo(f"  keep    {_row(snap)}  ({'; '.join(snap['reasons'])})")
        for snap in group["remove"]:
            click.echo(f"  {'would remove' if dry_run else 'remove'}  {_row(snap)}")
    if not doc["groups"]:
        for snap in doc["remove"]:
            click.echo(f"  {'would remove' if dry_run else 'remove'}  {_row(snap)}")
    n = len(doc["remove"])
    if dry_run:
        click.echo(f"{n} snapshot{'s' * (n != 1)} would be removed (dry run; nothing changed)"
                   + ("; what prune would then free shows only once they are gone" if then_prune else ""))
    else:
        click.echo(f"{len(removed)} snapshot{'s' * (len(removed) != 1)} removed"
                   + (f"; {FREED_NOTE}" if removed and pruned is None else ""))
    if pruned is not None:
        for line in format_report(pruned):
            click.echo(line)
