"""The detached runner behind `wiltonctl hpc schedule-task --no-wait` (and `resume --no-wait`).

    python -m wilton_core.hpc.worker BATCH_ID [--concurrency N] [--router-url URL]

The store URL comes from the environment (WILTON_STORE_URL / WILTON_DATA_DIR), never from the
command line, where a password would be visible in `ps`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from wilton_core.errors import WiltonError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wilton_core.hpc.worker")
    p.add_argument("batch_id")
    p.add_argument("--concurrency", type=int, default=None)
    p.add_argument("--router-url", default=None)
    args = p.parse_args(argv)
    from wilton_core.hpc.repo import TaskRepo
    from wilton_core.hpc.runner import BatchRunner
    from wilton_core.settings import load_settings
    from wilton_core.store import open_store

    try:
        settings = load_settings(router_url=args.router_url)
        store = open_store(settings.resolved_store_url())
        try:
            repo = TaskRepo(store)
            info = repo.batch(args.batch_id)
            if info is None:
                raise WiltonError(f"no batch {args.batch_id}")
            runner = BatchRunner(repo, settings.resolved_router_url(), concurrency=args.concurrency or info.concurrency,
                                 api_key=settings.router_api_key_value())
            out = asyncio.run(runner.run(args.batch_id))
        finally:
            store.close()
    except WiltonError as e:
        print(f"hpc worker: {e}", file=sys.stderr)
        return 1
    print(f"hpc worker: batch {out.batch_id}: ran {out.ran} tasks, batch {out.status}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
