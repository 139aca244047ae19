"""Backup and restore figures (issue 15) on a scratch database of 100,000 cases seeded by
SQL the way bench_console seeds them: `hotline backup`'s time and dump size, and the time
of a restore into a fresh database (the runbook's disaster path).

    python -m bench.bench_backup --admin-url postgresql://postgres@127.0.0.1:5432/test \\
        [--cases 100000]
"""

import asyncio
import tempfile
from pathlib import Path

from bench.bench_console import seed
from bench.common import bench_parser, timed
from bench.service import scratch_database
from dispatch.ops import backup, schema


def main() -> None:
    parser = bench_parser(__doc__, redis=False)
    parser.add_argument("--cases", type=int, default=100_000)
    args = parser.parse_args()
    with scratch_database(args.admin_url) as source, scratch_database(args.admin_url) as target:
        schema.migrate(source)
        counts, took = timed(lambda: asyncio.run(seed(source, args.cases)))
        print(f"seeded {counts} in {took:.1f} s")
        with tempfile.TemporaryDirectory() as folder:
            (dump, _), took = timed(
                lambda: backup.backup(source, Path(folder), keep=2, embedded=False))
            print(f"backup: {took:.1f} s, {dump.stat().st_size / 2**20:.1f} MiB ({dump.name})")
            _, took = timed(lambda: backup.restore(target, dump, force=False, embedded=False))
            print(f"restore into a fresh database: {took:.1f} s")


if __name__ == "__main__":
    main()
