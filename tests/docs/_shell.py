"""Run the docs' shell recipes and scripts as a user's shell would, and leave nothing running.

A recipe may start the emulator in the background; it then outlives the shell, holds a pipe of ours
open, and must be ended by the test. So each command runs in a process group of its own, its output
goes to a file, and leaving the ``with`` block kills the group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType


def user_env(home: Path) -> dict[str, str]:
    """A user's shell: this venv's ``airflow`` and ``arr-emulator`` first on PATH, a fresh Airflow home."""
    env = {key: value for key, value in os.environ.items() if key != "AIRFLOW_CONN_ARR_DEFAULT"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["AIRFLOW_HOME"] = str(home)
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    return env


def migrate(env: dict[str, str], cwd: Path) -> None:
    """``airflow db migrate``: the database a user's Airflow home already has."""
    subprocess.run(["airflow", "db", "migrate"], env=env, cwd=cwd, check=True, capture_output=True)


class ProcessGroup:
    """``args`` in a process group of its own; leaving the ``with`` block kills the whole group."""

    def __init__(self, args: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        # A file, not a pipe (see the module docstring); closed in __exit__.
        self._output = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self._output, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait(self, timeout: float) -> tuple[int, str]:
        """Wait for the command itself (not what it left in the background): its exit status and output."""
        status = self.process.wait(timeout=timeout)
        self._output.seek(0)
        return status, self._output.read()

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group is gone: nothing left running
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._output.close()
