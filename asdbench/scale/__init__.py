"""Many runs and their speed: suites of runs (``suite``), sweeps on Ray or one after another (``sweep``), the watcher that
leaves nothing behind a killed sweep driver (``orphans``), and the
throughput benchmark (``bench``, ``bench_spec``).

May import: every layer but the command line. Jobs are generated (``suite``) apart from running them
(``sweep.run_serially``, ``sweep.run_sweep``), so a new runner is a function beside those two.
"""
