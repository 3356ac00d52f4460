"""snapstore sample-agent: a Mirix-compatible demo agent, or a day of use applied to one."""
from __future__ import annotations

import click

from ..errors import UsageError
from .common import JSON_OPTION, emit_json, human_bytes


@click.command("sample-agent")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--scale", type=float, default=1.0, show_default=True, help="Size: 1 is a few MB.")
@click.option("--seed", type=int, default=None, help="Random seed (same seed, same content).")
@click.option("--mutate", type=float, default=None, metavar="FRACTION",
              help="Instead of creating, apply a day of use changing about FRACTION of the data.")
@JSON_OPTION
def command(directory: str, scale: float, seed: int | None, mutate: float | None, as_json: bool) -> None:
    """Create a sample agent in DIRECTORY (mirix.yaml, sqlite.db, .env, logs/)."""
    from .. import sample_agent

    try:
        if mutate is not None:
            doc = sample_agent.mutate_agent(directory, fraction=mutate, seed=seed).as_dict()
            message = (f"applied a day of use to {directory}: {human_bytes(doc['bytes_before'])} -> "
                       f"{human_bytes(doc['bytes_after'])}")
        else:
            doc = sample_agent.create_sample_agent(directory, scale=scale, seed=seed or 0).as_dict()
            message = (f"created sample agent in {directory} ({human_bytes(doc['size_bytes'])}); "
                       f"back it up with: snapstore backup --config {doc['config_path']}")
    except (ValueError, OSError) as exc:
        raise UsageError(f"sample-agent: {exc}") from None
    if as_json:
        emit_json(doc)
    else:
        click.echo(message)
