"""Benchmarks of spindlex_tw side by side with OpenSSH's sshd and AsyncSSH (not tests).

Run ``python -m bench.run --quick`` (or without ``--quick`` for the full sizes);
see ``docs/performance.md``.
"""
