"""Training and inference throughput of systems: ``asdbench bench`` as a script.

    python benchmarks/throughput.py --systems stgram-mfn,dcase-ae
    python benchmarks/throughput.py --systems stgram-mfn --variants eager,compiled --batch-size 128 --device cuda --json out.json

Per system and variant (plain: fp32, NCHW, eager, no caches; eager: the system's settings; compiled: the same
compiled): frontend, end-to-end training, model-only bound and inference throughput in clips/s, their ratios,
read time with a cold and a warm cache, peak memory and the projected wall time of the paper protocol (40,000
clips x 200 epochs). See ``asdbench/scale/bench.py`` for the method.
"""

import sys

from asdbench.cli import cli

if __name__ == "__main__":
    cli(["bench", *sys.argv[1:]], prog_name="throughput.py")
