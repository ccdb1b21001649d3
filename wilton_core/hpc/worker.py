"""The detached runner behind `wiltonctl hpc schedule-task --no-wait` (and `resume --no-wait`).

    python -m wilton_core.hpc.worker BATCH_ID [--concurrency N] [--router-url URL]

The store URL comes from the environment (WILTON_STORE_URL / WILTON_DATA_DIR), never from the
command line, where a password would be visible in `ps`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from wilton_core.cli.entry import new_app
from wilton_core.errors import WiltonError

__all__ = ["main"]


cli = new_app()


@cli.command()
def run(
    batch_id: Annotated[str, typer.Argument(help="the batch to run (wiltonctl hpc schedule-task prints it)")],
    concurrency: Annotated[int | None, typer.Option(help="requests in flight (default: the batch's own)")] = None,
    router_url: Annotated[str | None, typer.Option(help="the router (default $WILTON_ROUTER_URL or :8080)")] = None,
) -> int:
    """Run one batch's pending tasks through the router. Exit 1 when the batch or the store is unusable."""
    from wilton_core.hpc.repo import TaskRepo
    from wilton_core.hpc.runner import BatchRunner
    from wilton_core.settings import load_settings
    from wilton_core.store import open_store

    try:
        settings = load_settings(router_url=router_url)
        store = open_store(settings.resolved_store_url())
        try:
            repo = TaskRepo(store)
            info = repo.batch(batch_id)
            if info is None:
                raise WiltonError(f"no batch {batch_id}")
            runner = BatchRunner(repo, settings.resolved_router_url(), concurrency=concurrency or info.concurrency,
                                 api_key=settings.router_api_key_value())
            out = asyncio.run(runner.run(batch_id))
        finally:
            store.close()
    except WiltonError as e:
        print(f"hpc worker: {e}", file=sys.stderr)
        return 1
    print(f"hpc worker: batch {out.batch_id}: ran {out.ran} tasks, batch {out.status}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from wilton_core.cli.entry import run_app

    return run_app(cli, argv, "python -m wilton_core.hpc.worker")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
