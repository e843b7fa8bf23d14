"""Flink tests: run by `make flink-test` in .venv-flink (PyFlink + Java), never by the main suite.

Jobs run on PyFlink's local mini-cluster, whose JVM starts once per test
process: its log and temporary files go to the first job's folder, under
pytest's base temp (`make flink-test` puts that under build/).
"""

from __future__ import annotations

import cloudpickle

import jobs

# The jobs' functions travel by value: the cluster's Python does not have tests/flink on its path.
cloudpickle.register_pickle_by_value(jobs)



def pytest_configure(config):
    # Process mode's Beam worker threads see their gRPC stream cancelled when a job ends: noise, not a failure.
    config.addinivalue_line("filterwarnings", "ignore::pytest.PytestUnhandledThreadExceptionWarning")
