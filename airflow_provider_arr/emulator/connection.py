"""The Airflow connection of an emulator, in the forms tests and scripts hand to Airflow."""

from __future__ import annotations

import json
from typing import Any


class ConnectionForms:
    """``connection_json()``, ``env()`` and ``with``'s exit for an emulator that says :meth:`connection`."""

    def stop(self) -> object:
        """Stop the emulator (the subclass says how)."""
        raise NotImplementedError

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def connection(self, conn_id: str = "arr_default", **extra: Any) -> dict[str, Any]:
        """Return the Airflow connection, as a dict (the subclass says how)."""
        raise NotImplementedError

    def connection_json(self, **extra: Any) -> str:
        """Return :meth:`connection` as JSON, the form ``AIRFLOW_CONN_*`` variables take.

        :param extra: more connection extras.
        """
        return json.dumps(self.connection(**extra))

    def env(self, conn_id: str = "arr_default", **extra: Any) -> dict[str, str]:
        """Return the environment variable defining the connection, e.g. ``AIRFLOW_CONN_ARR_DEFAULT``.

        :param conn_id: the connection id.
        :param extra: more connection extras.
        """
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(**extra)}
