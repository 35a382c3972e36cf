"""What runs on a cluster's nodes: the worker a Slurm job starts (hidden: kit submits it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kit.cli.common import app


@app.command("_worker", hidden=True)
def worker(
    share: Annotated[Path, typer.Argument(help="The job's share of the plan (share.json).")],
) -> None:
    """Run one node's share of a session, writing each run's log and outcome beside it."""
    from kit.campaign.worker import work

    raise typer.Exit(work(share))
