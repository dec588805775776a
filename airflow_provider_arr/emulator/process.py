"""The emulator as a separate process: ``python -m airflow_provider_arr.emulator`` on a free loopback port.

For programs that need the emulator outside their own process: a demo that runs ``airflow`` commands
against it, a deployment test, benchmarks that measure it apart from the client, tests of the command
line::

    with EmulatorProcess(start_delay=3) as emulator:
        env = {**os.environ, **emulator.env()}
        subprocess.run(["airflow", "dags", "test", "my_dag"], env=env, check=True)

It runs the command line with ``--port 0`` (on its default host, ``127.0.0.1``), reads the URL and the
Airflow connection that the command line prints first, waits until the emulator answers, and on exit
terminates it (kills it if it has not stopped after ``stop_timeout`` seconds) and waits for it. What
the process prints is read all along, so it never blocks on a full pipe. In the same process,
:class:`~airflow_provider_arr.emulator.ArrEmulator` is simpler and faster.
"""

from __future__ import annotations

import collections
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from typing import IO, Any

from airflow_provider_arr.emulator.connection import ConnectionForms

#: The first line the command line prints: the URL it answers on (see :mod:`.cli`).
URL_PREFIX = "ARR_EMULATOR_URL="
#: The last line of its banner: the ``arr_default`` connection, as Airflow takes it from the environment.
CONNECTION_PREFIX = "export AIRFLOW_CONN_ARR_DEFAULT="
#: Lines of output kept for error messages (the banner is kept whole).
_OUTPUT_TAIL = 200


class EmulatorProcess(ConnectionForms):
    """``python -m airflow_provider_arr.emulator --port 0`` in a child process, as a context manager.

    :param options: more command line options, e.g. ``"--fault", "create:503"`` or
        ``"--certfile", path`` (not ``--port``: it is always a free one).
    :param start_delay: seconds a new session stays Starting (``--start-delay``); the command line's
        default (5 s) if ``None``.
    :param conversion_delay: seconds a new conversion takes (``--conversion-delay``); the command line's
        default (5 s) if ``None``.
    :param env: the child's environment; this process's, if ``None``.
    :param cwd: the child's working directory.
    :param log_path: a file that receives everything the child prints, stdout and stderr (overwritten).
    :param startup_timeout: seconds to wait for the banner and the first answer.
    :param stop_timeout: seconds to wait after SIGTERM before SIGKILL.
    :param start_new_session: run the child in a session (process group) of its own, so that a
        Ctrl-C in the terminal reaches only the parent, which then stops it in order.
    """

    def __init__(
        self,
        *options: str,
        start_delay: float | None = None,
        conversion_delay: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        start_new_session: bool = False,
    ) -> None:
        if "--port" in options:
            raise ValueError("EmulatorProcess always picks a free port: do not pass --port")
        self.command = [sys.executable, "-m", "airflow_provider_arr.emulator", "--port", "0"]
        if start_delay is not None:
            self.command += ["--start-delay", str(start_delay)]
        if conversion_delay is not None:
            self.command += ["--conversion-delay", str(conversion_delay)]
        self.command += list(options)
        self.child_env = dict(os.environ if env is None else env)
        self.child_env.setdefault("PYTHONUNBUFFERED", "1")
        self.cwd = cwd
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.start_new_session = start_new_session
        self.process: subprocess.Popen[str] | None = None
        #: The URL the emulator answers on, e.g. ``http://127.0.0.1:41234``.
        self.url = ""
        #: What the child printed on stdout up to its connection line: the banner (the URL line first).
        self.banner: list[str] = []
        self._connection_json = ""
        self._output: collections.deque[str] = collections.deque(maxlen=_OUTPUT_TAIL)
        self._lock = threading.Lock()
        self._banner_read = threading.Event()
        self._readers: list[threading.Thread] = []
        self._log: IO[str] | None = None

    # ------------------------------------------------------------------------------ start and stop

    def start(self) -> EmulatorProcess:
        """Start the emulator and wait until it answers; raise ``RuntimeError`` if it does not."""
        if self.process is not None:
            raise RuntimeError("this EmulatorProcess was already started")
        if self.log_path is not None:
            self._log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=self.child_env,
            cwd=self.cwd,
            start_new_session=self.start_new_session,
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        for stream, is_stdout in ((self.process.stdout, True), (self.process.stderr, False)):
            reader = threading.Thread(
                target=self._read, args=(stream, is_stdout), name="emulator-process-output", daemon=True
            )
            reader.start()
            self._readers.append(reader)
        try:
            deadline = time.monotonic() + self.startup_timeout
            self._banner_read.wait(self.startup_timeout)
            if not self._connection_json:
                try:  # the output ended: did it exit?
                    status: int | None = self.process.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    status = None
                raise RuntimeError(
                    self._failure(
                        f"exited with {status} before it printed its URL and connection"
                        if status is not None
                        else f"did not print its URL and connection within {self.startup_timeout:g} s"
                    )
                )
            self._wait_until_it_answers(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float | None = None) -> int | None:
        """Terminate the emulator, kill it if it has not exited after ``timeout`` seconds, wait for it.

        Safe to call more than once, and after a failed start.

        :param timeout: seconds between SIGTERM and SIGKILL; ``stop_timeout`` if ``None``.
        :return: its exit status (``-15`` or ``0`` after SIGTERM), ``None`` if it never started.
        """
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None
        return process.returncode

    def __enter__(self) -> EmulatorProcess:
        # Unless start() was called already: ``with EmulatorProcess(...).start() as emulator`` works too.
        return self if self.process is not None else self.start()

    # ------------------------------------------------------------------------------------ the child

    @property
    def pid(self) -> int:
        """The child's process id."""
        if self.process is None:
            raise RuntimeError("the emulator process has not been started")
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit status; ``None`` while it runs."""
        return None if self.process is None else self.process.poll()

    def output(self) -> str:
        """The last lines the child printed, stdout and stderr (for error messages)."""
        with self._lock:
            return "".join(self._output)

    # ------------------------------------------------------------------------------- the connection

    def connection(self, conn_id: str = "arr_default", **extra: Any) -> dict[str, Any]:
        """Return the Airflow connection the emulator printed, as a dict.

        :param conn_id: the connection id it is meant for (not in the dict, as in :class:`ArrEmulator`).
        :param extra: more connection extras, e.g. timeouts.
        """
        if not self._connection_json:
            raise RuntimeError("the emulator process has not been started")
        connection: dict[str, Any] = json.loads(self._connection_json)
        if extra:
            connection["extra"] = {**connection.get("extra", {}), **extra}
        return connection

    @property
    def account_id(self) -> str:
        """The emulated account's id (the connection's login)."""
        return str(self.connection()["login"])

    @property
    def account_key(self) -> str:
        """The emulated account's key (the connection's password)."""
        return str(self.connection()["password"])

    # ------------------------------------------------------------------------------------ internals

    def _read(self, stream: IO[str], is_stdout: bool) -> None:
        try:
            for line in stream:
                with self._lock:
                    self._output.append(line)
                    if self._log is not None:
                        self._log.write(line)
                        self._log.flush()
                if is_stdout and not self._banner_read.is_set():
                    self._banner_line(line)
        except ValueError:  # the stream was closed under us by stop()
            pass
        finally:
            if is_stdout:
                self._banner_read.set()  # at the end of the output, stop waiting for a banner

    def _banner_line(self, line: str) -> None:
        self.banner.append(line)
        if line.startswith(URL_PREFIX) and not self.url:
            self.url = line.removeprefix(URL_PREFIX).strip()
        elif line.startswith(CONNECTION_PREFIX) and self.url:
            self._connection_json = line.removeprefix(CONNECTION_PREFIX).strip().strip("'")
            self._banner_read.set()

    def _wait_until_it_answers(self, deadline: float) -> None:
        """Poll ``GET /_emulator/counts`` (which no fault touches and nothing counts) until it answers."""
        context = None
        if self.url.startswith("https:"):
            certfile = self._option("--certfile")
            context = ssl.create_default_context(cafile=certfile)
        # No proxy: the emulator is on loopback, whatever HTTP_PROXY says.
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if self.returncode is not None:
                raise RuntimeError(self._failure(f"exited with {self.returncode} before it answered"))
            try:
                with opener.open(f"{self.url}/_emulator/counts", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError as error:  # URLError, connection refused or reset, timeouts
                last_error = error
            time.sleep(0.05)
        raise RuntimeError(
            self._failure(
                f"did not answer at {self.url} within {self.startup_timeout:g} s (last error: {last_error!r})"
            )
        )

    def _option(self, name: str) -> str | None:
        options = self.command
        return options[options.index(name) + 1] if name in options[:-1] else None

    def _failure(self, what: str) -> str:
        return f"the emulator ({' '.join(self.command)}) {what}; its output:\n{self.output()}"
