"""Start-up time of the command line: each command in a fresh process, the median of a few, in seconds.

    python benchmarks/startup.py [--repeat 5]

A command that only parses arguments or prints help should not wait for torch, MLflow or matplotlib:
``asdbench --help`` imports click and the command table alone (the commands' modules load when they run);
``list``, ``config show`` and ``run --help`` read the plugin catalog (``asdbench.catalog``). The "cold" column is
each command's first call with no catalog in the cache (it loads the plugins and writes it), the others the
calls after it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

COMMANDS = [
    ["--help"],
    ["run", "--help"],
    ["list"],
    ["config", "show", "dcase-ae"],
    ["compare", "--help"],
    ["data", "check", "--help"],
    ["score", "--help"],
    ["bench", "--help"],
    ["sweep", "--help"],
    ["plot", "--help"],
]


@click.command()
@click.option("--repeat", default=5, show_default=True)
def main(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ASDBENCH_CACHE": str(Path(tmp) / "cache")}
        catalog = Path(tmp) / "cache" / "plugin-catalog.json"

        def seconds(args: list[str]) -> float:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "asdbench", *args], cwd=tmp, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return time.perf_counter() - start

        click.echo("| command | cold s | median s | min s |\n|---|---:|---:|---:|")
        for args in COMMANDS:
            catalog.unlink(missing_ok=True)
            cold = seconds(args)
            times = [seconds(args) for _ in range(repeat)]
            click.echo(f"| `asdbench {' '.join(args)}` | {cold:.2f} | {statistics.median(times):.2f} | {min(times):.2f} |")


if __name__ == "__main__":
    main()
