"""Training and inference throughput of systems: ``asdbench bench`` as a script.

    python benchmarks/throughput.py --systems stgram-mfn,dcase-ae
    python benchmarks/throughput.py --systems stgram-mfn --variants default --batch-size 128 --device cuda --json out.json

Per system and variant (plain: fp32, NCHW, eager, no caches; default; compiled): frontend,
end-to-end training, model-only bound and inference throughput in clips/s, their ratios,
read time with a cold and a warm cache, peak memory and the projected wall time of the
paper protocol (40,000 clips x 200 epochs). See ``asdbench/bench.py`` for the method.
"""

from asdbench.cli.bench_cmd import bench_command

if __name__ == "__main__":
    bench_command()
