"""Run the emulator on a loopback port in a background thread, for tests and notebooks (http or https)."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import uvicorn

from airflow_provider_arr.emulator.app import create_app
from airflow_provider_arr.emulator.connection import ConnectionForms
from airflow_provider_arr.emulator.entra import Principal
from airflow_provider_arr.emulator.state import EmulatorState

CONN_TYPE = "azure_remote_rendering"


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` (``port=0`` picks a free one) before the server starts.

    Listening early means calls that arrive before the event loop runs wait in the backlog.

    :param host: the address to bind, e.g. ``127.0.0.1``.
    :param port: the port, 0 for any free one.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def base_url(host: str, port: int, tls: bool = False) -> str:
    """Return the URL a client on this machine uses to reach a server bound to ``host:port``.

    :param host: the bound address; a wildcard address is reached through loopback.
    :param port: the bound port.
    :param tls: whether the server speaks https.
    """
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def server_config(
    state: EmulatorState, host: str, port: int, certfile: str | None = None, keyfile: str | None = None
) -> uvicorn.Config:
    """Return the uvicorn settings the emulator runs with (quiet and quick to start and stop).

    :param state: the emulator state.
    :param host: the address to serve on.
    :param port: the port to serve on.
    :param certfile: a PEM certificate (chain) to serve https with; plain http if omitted.
    :param keyfile: the certificate's private key, unless ``certfile`` holds it too.
    """
    if keyfile is not None and certfile is None:
        raise ValueError("keyfile needs a certfile")
    return uvicorn.Config(
        create_app(state),
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=1,
        server_header=False,
        date_header=False,  # responses.common_headers() writes it, so a fault can set its own
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )


class EmulatorServer(uvicorn.Server):
    """A uvicorn server that closes idle connections at once when it shuts down.

    Over TLS, closing a connection waits for the client's ``close_notify``; a client that keeps an
    idle pooled connection (an SDK error response still referenced, say) never sends it, and uvicorn
    would wait its whole graceful-shutdown timeout. Calls in flight still get that time to finish.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Abort the connections that are idle, then shut down as uvicorn does.

        :param sockets: the listening sockets, closed by uvicorn.
        """
        for connection in list(self.server_state.connections):
            connection.shutdown()  # closes an idle connection; lets one with a call in flight finish
            transport = getattr(connection, "transport", None)
            if transport is not None and transport.is_closing():
                transport.abort()
        await super().shutdown(sockets)


class ArrEmulator(ConnectionForms):
    """The emulated ARR service (STS and sessions on one port), served from a background thread.

    Use as a context manager: the server answers when ``__enter__`` returns and is stopped, its
    thread joined and its socket closed, on exit.

    :param start_delay: seconds a new session stays ``Starting``.
    :param token_lifetime: seconds an STS token is valid.
    :param host: the loopback address to bind.
    :param port: the port; 0 picks a free one.
    :param state: an existing state to serve; then the other state arguments must not be given.
    :param certfile: a PEM certificate to serve https with (see
        :func:`~airflow_provider_arr.emulator.tls.make_self_signed_cert`); ``url`` then starts with
        ``https://``. Plain http if omitted.
    :param keyfile: the certificate's private key, unless ``certfile`` holds it too.
    :param state_kwargs: further :class:`EmulatorState` arguments (``region``, ``page_size``, ...).
    """

    def __init__(
        self,
        start_delay: float = 0.2,
        token_lifetime: float = 3600,
        host: str = "127.0.0.1",
        port: int = 0,
        state: EmulatorState | None = None,
        certfile: str | os.PathLike[str] | None = None,
        keyfile: str | os.PathLike[str] | None = None,
        **state_kwargs: Any,
    ) -> None:
        if state is not None and state_kwargs:
            raise TypeError("pass either state or EmulatorState arguments, not both")
        if keyfile is not None and certfile is None:
            raise TypeError("keyfile needs a certfile")
        self.state = state or EmulatorState(
            start_delay=start_delay, token_lifetime=token_lifetime, **state_kwargs
        )
        self.host = host
        self.port = port
        self.certfile = os.fspath(certfile) if certfile is not None else None
        self.keyfile = os.fspath(keyfile) if keyfile is not None else None
        self.url = ""
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def account_id(self) -> str:
        """Id of the account the emulator starts with."""
        return self.state.account_id

    @property
    def account_key(self) -> str:
        """Key of that account."""
        return self.state.account_key

    def start(self, timeout: float = 10.0) -> ArrEmulator:
        """Start serving and wait until the server accepts calls.

        :param timeout: seconds to wait for the server to come up.
        :raises RuntimeError: if it does not come up in time.
        """
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        self._socket = bind_socket(self.host, self.port)
        self.port = self._socket.getsockname()[1]
        self.url = base_url(self.host, self.port, tls=self.certfile is not None)
        config = server_config(self.state, self.host, self.port, self.certfile, self.keyfile)
        self._server = EmulatorServer(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"arr-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the ARR emulator did not start on {self.url}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving, join the server thread and close the socket (safe to call twice)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> ArrEmulator:
        """Start the emulator."""
        return self.start()

    def connection(self, conn_id: str = "arr_default", **extra: Any) -> dict[str, Any]:
        """Return an Airflow connection, as a dict, pointing at this emulator.

        :param conn_id: the connection id it is meant for; not in the dict, because Airflow's JSON
            form carries the id in the environment variable's name.
        :param extra: more connection extras, e.g. timeouts.
        """
        return {
            "conn_type": CONN_TYPE,
            "host": self.url,
            "login": self.account_id,
            "password": self.account_key,
            "extra": {"sts_url": self.url, **extra},
        }

    def entra_connection(self, principal: Principal | None = None, **extra: Any) -> dict[str, Any]:
        """Return an Airflow connection that signs in with Entra ID through this emulator (no account key).

        The emulator must serve https (Entra clients refuse any other authority), and the client must
        trust its certificate (``REQUESTS_CA_BUNDLE`` and ``SSL_CERT_FILE``).

        :param principal: a service principal (:meth:`EmulatorState.add_principal`): its tenant, client id
            and secret; for a managed identity, give ``managed_identity_client_id`` in ``extra`` instead.
        :param extra: more connection extras (``certificate_path``, ``api_version``, timeouts...).
        """
        entra: dict[str, Any] = {"authority_host": self.url}
        if principal is not None and not principal.managed:
            entra |= {"tenantId": principal.tenant_id, "client_id": principal.client_id}
            if principal.secret is not None:
                entra["client_secret"] = principal.secret
        connection = self.connection(**(entra | extra))
        del connection["password"]
        return connection
