"""A local Flink mini-cluster for tflstm jobs, writing everything under one folder.

PyFlink starts a JVM (the "gateway", which runs the mini-cluster) on its first
call. Left alone, it writes its logs into `site-packages/pyflink/log` and the
mini-cluster's files into the system temporary folder (it ignores TMPDIR), and
in thread mode the embedded Python interpreter does not see a virtualenv's
packages. `local_environment` sets all of that before the JVM starts.
"""

from __future__ import annotations

import os
import shutil
import site
import sys
from pathlib import Path

from pyflink.common import Configuration
from pyflink.datastream import StreamExecutionEnvironment

import tflstm

EXECUTION_MODES = ("thread", "process")
"""PyFlink's ways to run Python functions: in the JVM (embedded interpreter) or in worker processes."""
STATE_BACKENDS = ("hashmap", "rocksdb")
"""Flink's keyed state backends: objects on the JVM heap, or RocksDB on local disk."""


def find_java() -> str:
    """The `java` PyFlink will start: `$JAVA_HOME/bin/java`, else the first on PATH.

    Raises:
        RuntimeError: none found, with what to install.
    """
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home, "bin", "java")) if java_home else shutil.which("java")
    if java is None or not os.access(java, os.X_OK):
        where = f"JAVA_HOME={java_home} has no bin/java" if java_home else "no `java` on PATH and JAVA_HOME is not set"
        raise RuntimeError(
            f"PyFlink needs a Java 11 or 17 runtime: {where}. Install one (Debian/Ubuntu: "
            "apt-get install openjdk-17-jre-headless) or set JAVA_HOME."
        )
    return java


def python_path() -> str:
    """Folders the embedded (thread mode) interpreter needs: this interpreter's site-packages and tflstm's root.

    The embedded interpreter starts from the base Python, not the virtualenv, and
    does not run `.pth` files, so an editable tflstm needs its folder listed too.
    """
    folders = [*site.getsitepackages(), str(Path(tflstm.__file__).resolve().parents[1])]
    return os.pathsep.join(dict.fromkeys(folders))


def local_environment(
    work_dir: str | Path,
    *,
    execution_mode: str = "thread",
    state_backend: str = "hashmap",
    parallelism: int = 1,
    checkpoint_interval_ms: int | None = None,
    restart_attempts: int = 0,
) -> StreamExecutionEnvironment:
    """A `StreamExecutionEnvironment` on a local mini-cluster, with its files under `work_dir`.

    `work_dir/log` gets the JVM's log and `work_dir/tmp` its temporary files
    (both only when this call starts the JVM: they are per process),
    `work_dir/checkpoints` the checkpoints.

    Args:
        work_dir: folder for logs, temporary files and checkpoints (created).
        execution_mode: "thread" (Python functions run inside the JVM: less
            overhead) or "process" (in Python workers talking to the JVM over
            gRPC; on this local mini-cluster, PyFlink runs them in this
            process). Default: "thread".
        state_backend: "hashmap" (keyed state on the JVM heap) or "rocksdb"
            (on local disk, incremental checkpoints: for state larger than
            memory). Default: "hashmap".
        parallelism: parallel subtasks of each operator. Default: 1.
        checkpoint_interval_ms: checkpoint every this many milliseconds, or
            None for no checkpoints. Default: None.
        restart_attempts: restarts from the last checkpoint after a failure
            (fixed delay of 100 ms) before the job fails. Default: 0.

    Raises:
        ValueError: an unknown mode or backend, or a bad number.
        RuntimeError: no Java runtime.
    """
    if execution_mode not in EXECUTION_MODES:
        raise ValueError(f"`execution_mode` must be one of {EXECUTION_MODES}, got {execution_mode!r}.")
    if state_backend not in STATE_BACKENDS:
        raise ValueError(f"`state_backend` must be one of {STATE_BACKENDS}, got {state_backend!r}.")
    for name, value, least in (("parallelism", parallelism, 1), ("restart_attempts", restart_attempts, 0)):
        if not isinstance(value, int) or value < least:
            raise ValueError(f"`{name}` must be an int >= {least}, got {value!r}.")
    interval = checkpoint_interval_ms
    if interval is not None and (not isinstance(interval, int) or interval < 10):
        raise ValueError(f"`checkpoint_interval_ms` must be an int >= 10 or None, got {checkpoint_interval_ms!r}.")
    find_java()
    work = Path(work_dir).resolve()
    if any(c.isspace() for c in str(work)):
        raise ValueError(
            f"`work_dir` must have no whitespace in its path (PyFlink splits JVM_ARGS on it), got {str(work)!r}."
        )
    for sub in ("log", "tmp", "checkpoints"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    # Read by PyFlink when it launches the JVM, on its first call in this process.
    os.environ.setdefault("FLINK_LOG_DIR", str(work / "log"))
    jvm_args = os.environ.get("JVM_ARGS", "")
    if "-Djava.io.tmpdir=" not in jvm_args:
        os.environ["JVM_ARGS"] = f"{jvm_args} -Djava.io.tmpdir={work / 'tmp'}".strip()

    config = Configuration()
    settings = {
        "python.execution-mode": execution_mode,
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "python.pythonpath": python_path(),
        "state.backend.type": state_backend,
        "execution.checkpointing.incremental": str(state_backend == "rocksdb").lower(),
        "execution.checkpointing.dir": (work / "checkpoints").as_uri(),
        "restart-strategy.type": "fixed-delay" if restart_attempts else "none",
        "restart-strategy.fixed-delay.attempts": str(restart_attempts),
        "restart-strategy.fixed-delay.delay": "100 ms",
    }
    if checkpoint_interval_ms is not None:
        settings["execution.checkpointing.interval"] = f"{checkpoint_interval_ms} ms"
    for key, value in settings.items():
        config.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_parallelism(parallelism)
    return env
