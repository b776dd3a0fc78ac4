"""The in-process executor: every shard, one after the other, in this process. Its sibling ``ray`` spreads the
same work over a Ray cluster; both take a builder (``engine.shards.ShardWorker``) and a list of pending shards and
yield ``(shard, rows, rejects)`` as shards finish, so the runner never knows which one ran them."""

from __future__ import annotations

from typing import Any


class LocalExecutor:
    """Every shard, one after the other, in this process."""

    name = "local"

    def run(self, builder, pending: list[tuple[int, list]]):
        for k, items in pending:
            rows, rejects = builder.run_shard(k, items)
            yield k, rows, rejects

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": 1}
