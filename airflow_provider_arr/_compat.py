"""Every name whose place depends on the Airflow release, in one module (issue 21).

The provider supports Airflow 3.1 and later (docs/versions.md). A name is taken from its
newest public place first and, on a release that does not have it there yet, from the older public
place it had; nothing else in the package imports these names from Airflow. A feature that needs a
newer release than the one running says so when it is used (:func:`needs_newer_airflow`), never at
import.

- ``conf``: ``airflow.sdk`` since 3.2; ``airflow.configuration`` in 3.1.
- ``AirflowFailException``, ``AirflowSkipException``, ``AirflowSensorTimeout``: ``airflow.sdk.exceptions``
  since 3.2; ``airflow.exceptions`` in 3.1.
- ``amask_secret``: ``airflow.sdk.log`` since 3.3; before, ``mask_secret`` serves async callers too.
- ``Variable.keys`` (list Variables by prefix): since 3.3; before, none (:func:`has_variable_keys`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

if TYPE_CHECKING:  # type-checked against the newest release, whose places these are
    from airflow.sdk import conf
    from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException
else:
    try:
        from airflow.sdk import conf
    except ImportError:  # Airflow 3.1
        from airflow.configuration import conf
    try:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException
    except ImportError:  # Airflow 3.1
        from airflow.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "airflow_version",
    "amask_secret",
    "conf",
    "has_variable_keys",
    "mask_secret",
    "needs_newer_airflow",
]


def mask_secret(secret: Any) -> None:
    """Mask ``secret`` in this process's logs and, in a task, in its supervisor's (every 3.x)."""
    from airflow.sdk.log import mask_secret as mask

    mask(secret)


async def amask_secret(secret: Any) -> None:
    """:func:`mask_secret` from a coroutine (the triggerer): 3.3's ``amask_secret``, else the sync one.

    Before 3.3 ``airflow.sdk.log.mask_secret`` is the one call for sync and async callers alike.
    """
    from airflow.sdk import log

    masked = getattr(log, "amask_secret", None)
    if masked is not None:
        await masked(secret)
    else:
        log.mask_secret(secret)


def has_variable_keys() -> bool:
    """Whether ``airflow.sdk.Variable.keys`` (listing Variables by prefix, Airflow 3.3) exists here."""
    from airflow.sdk import Variable

    return hasattr(Variable, "keys")


def airflow_version() -> str:
    """The running Airflow release, e.g. ``3.1.8``."""
    from airflow import __version__

    return str(__version__)


def needs_newer_airflow(feature: str, version: str, needs: str, instead: str) -> str:
    """What a feature says when the running Airflow is older than it needs.

    :param feature: what the user asked for (``"The session janitor (...)"``).
    :param version: the release it needs, e.g. ``"3.3"``.
    :param needs: the Airflow interface it needs, and why.
    :param instead: what works on this release.
    """
    return (
        f"{feature} needs Airflow {version} or later: {needs}. This is Airflow {airflow_version()}. "
        f"What works instead: {instead}"
    )
