"""Start-up time of the command line: each command in a fresh process, the median of a few, in seconds.

    python benchmarks/startup.py [--repeat 5]

A command that only parses arguments or prints help should not wait for torch, MLflow or matplotlib:
``asdbench --help`` imports click and the command table alone (the commands' modules load when they run).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

import click

COMMANDS = [
    ["--help"],
    ["run", "--help"],
    ["list"],
    ["config", "show", "dcase-ae"],
    ["compare", "--help"],
]


@click.command()
@click.option("--repeat", default=5, show_default=True)
def main(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        click.echo("| command | median s | min s |\n|---|---:|---:|")
        for args in COMMANDS:
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "asdbench", *args], cwd=tmp, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times.append(time.perf_counter() - start)
            click.echo(f"| `asdbench {' '.join(args)}` | {statistics.median(times):.2f} | {min(times):.2f} |")


if __name__ == "__main__":
    main()
