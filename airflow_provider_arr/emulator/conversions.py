"""Asset conversions of the emulated service: records, their life cycle, and the state's conversion calls.

A conversion is ``NotStarted`` for the first fifth of ``conversion_delay`` seconds, ``Running`` until the
delay is over, then ``Succeeded`` with an output asset URI, or ``Failed`` when its input is not a
supported model or a failure was scripted (:meth:`ConversionStore.fail_next_conversion` for the next
one, :meth:`ConversionStore.fail_conversions` for every one whose input path matches a glob). Like the
sessions, transitions are computed lazily from the state's clock. :class:`ConversionStore` is a part of
:class:`~airflow_provider_arr.emulator.state.EmulatorState` (which creates ``_lock``, ``clock`` and
``wall_clock`` and calls :meth:`ConversionStore._init_conversions`). Nothing here knows a wire format.
"""

from __future__ import annotations

import fnmatch
import math
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from airflow_provider_arr.emulator.errors import EmulatorError
from airflow_provider_arr.emulator.records import normalize_id

#: Seconds a new conversion takes, unless ``conversion_delay`` is set otherwise.
DEFAULT_CONVERSION_DELAY = 5.0
#: The input formats the emulated service converts (the contract's list).
SUPPORTED_INPUTS = (".fbx", ".gltf", ".glb", ".ply", ".xyz", ".e57")
DEFAULT_CONVERSION_FAILURE = "The conversion failed: the input asset could not be read (scripted failure)."

__all__ = [
    "DEFAULT_CONVERSION_DELAY",
    "DEFAULT_CONVERSION_FAILURE",
    "SUPPORTED_INPUTS",
    "ConversionConflictError",
    "ConversionNotFoundError",
    "ConversionRecord",
    "ConversionStatus",
    "ConversionStore",
    "Location",
]


class ConversionStatus(StrEnum):
    """Conversion states as the 2021-01-01 API spells them (v1 says Success and Failure)."""

    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def is_final(self) -> bool:
        """Whether the conversion has ended."""
        return self in (ConversionStatus.SUCCEEDED, ConversionStatus.FAILED, ConversionStatus.CANCELLED)


class ConversionNotFoundError(EmulatorError):
    """No conversion with that id exists in that account."""


class ConversionConflictError(EmulatorError):
    """A conversion with the requested id exists with other settings."""


@dataclass(frozen=True)
class Location:
    """One side of a conversion: a blob container, a prefix, and the asset's path or name.

    :param container_uri: ``https://<storage account>.blob.core.windows.net/<container>``.
    :param blob_prefix: the virtual folder, or ``None``.
    :param asset: the input's relative path, or the output's file name (``None``: derived).
    :param sas: the SAS token, if one was given: remembered, never reported.
    """

    container_uri: str
    blob_prefix: str | None
    asset: str | None
    sas: str | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ConversionRecord:
    """A snapshot of one conversion, taken under the state's lock.

    :param conversion_id: its id.
    :param account_id: the account that owns it.
    :param status: a :class:`ConversionStatus` value.
    :param input: where the model is read.
    :param output: where the asset goes.
    :param output_asset_uri: the asset's URI, once ``Succeeded``.
    :param error_code: the ``error.code`` once ``Failed``.
    :param error_message: the ``error.message`` once ``Failed``.
    :param creation_time: Unix time of the create.
    :param dialect: ``v1`` or ``2021-01-01``: through which it was created.
    :param next_change: seconds until its status changes, ``None`` once final (the ``Retry-After`` hint).
    """

    conversion_id: str
    account_id: str
    status: str
    input: Location
    output: Location
    output_asset_uri: str | None
    error_code: str | None
    error_message: str | None
    creation_time: float
    dialect: str
    next_change: float | None

    @property
    def retry_after(self) -> int:
        """Whole seconds until asking again is worth it (at least 1)."""
        return max(1, math.ceil(self.next_change or 1))


@dataclass
class _LiveConversion:
    record: ConversionRecord
    created_at: float
    delay: float
    failure: tuple[str, str] | None

    def snapshot(self, now: float) -> ConversionRecord:
        elapsed = now - self.created_at
        if elapsed >= self.delay:
            if self.failure is not None:
                code, message = self.failure
                return replace(
                    self.record,
                    status=ConversionStatus.FAILED.value,
                    error_code=code,
                    error_message=message,
                    next_change=None,
                )
            return replace(
                self.record,
                status=ConversionStatus.SUCCEEDED.value,
                output_asset_uri=_output_uri(self.record.input, self.record.output),
                next_change=None,
            )
        started = self.delay / 5
        status = ConversionStatus.NOT_STARTED if elapsed < started else ConversionStatus.RUNNING
        change = (started if status is ConversionStatus.NOT_STARTED else self.delay) - elapsed
        return replace(self.record, status=status.value, next_change=change)


def _output_uri(source: Location, target: Location) -> str:
    name = target.asset
    if not name:
        stem = (source.asset or "asset").rsplit("/", 1)[-1].rsplit(".", 1)[0]
        name = f"{stem}.arrAsset"
    parts = [target.container_uri.rstrip("/"), (target.blob_prefix or "").strip("/"), name]
    return "/".join(part for part in parts if part)


class ConversionStore:
    """The conversions of the emulator state, behind the state's lock."""

    _lock: threading.RLock
    clock: Callable[[], float]
    wall_clock: Callable[[], float]
    _faults_injected: Any

    def _init_conversions(
        self, conversion_delay: float, fail_conversions: Mapping[str, str | None] | None = None
    ) -> None:
        if conversion_delay < 0:
            raise ValueError("conversion_delay must not be negative")
        #: Seconds a new conversion takes (read when it is created); a test may change it.
        self.conversion_delay = float(conversion_delay)
        self._conversions: dict[tuple[str, str], _LiveConversion] = {}
        self._pending_conversion_failures: deque[str] = deque()
        self._failing_inputs: list[tuple[str, str]] = []
        for pattern, message in (fail_conversions or {}).items():
            self.fail_conversions(pattern, message or DEFAULT_CONVERSION_FAILURE)

    def fail_conversions(self, pattern: str, message: str = DEFAULT_CONVERSION_FAILURE) -> None:
        """Make every conversion created from now on whose input path matches ``pattern`` end ``Failed``.

        Unlike :meth:`fail_next_conversion`, which conversion fails does not depend on the order in which
        concurrent tasks create theirs. The conversion runs its ``conversion_delay`` first, as one that
        succeeds would. The rule stays until :meth:`reset`; the first matching rule gives the message.

        :param pattern: a shell-style glob (:func:`fnmatch.fnmatchcase`: case sensitive, ``*`` also
            matches ``/``) matched against the input asset's path as the client sent it
            (``relativeInputAssetPath``, below any blob prefix), e.g. ``broken/*`` or ``*.ply``.
        :param message: the ``error.message`` the conversion reports (its ``error.code`` is
            ``ConversionFailed``).
        :raises ValueError: for an empty pattern or message.
        """
        if not pattern or not message:
            raise ValueError("pattern and message must not be empty")
        with self._lock:
            self._failing_inputs.append((pattern, message))

    def failing_conversions(self) -> list[tuple[str, str]]:
        """The rules of :meth:`fail_conversions` in force, as ``(pattern, message)`` pairs, oldest first."""
        with self._lock:
            return list(self._failing_inputs)

    def fail_next_conversion(self, message: str = DEFAULT_CONVERSION_FAILURE) -> None:
        """Make the next created conversion end ``Failed`` with ``message`` when its time is over.

        A conversion that a :meth:`fail_conversions` rule matches fails by that rule and leaves this
        failure for the next one.

        :param message: the ``error.message`` it reports (its ``error.code`` is ``ConversionFailed``).
        """
        with self._lock:
            self._pending_conversion_failures.append(message)

    def create_conversion(
        self,
        account_id: str,
        conversion_id: str | None,
        source: Location,
        target: Location,
        dialect: str,
    ) -> tuple[ConversionRecord, bool]:
        """Start a conversion; with a client-chosen id, the same id and settings is a retry.

        :param account_id: the owning account.
        :param conversion_id: the client's id (2021-01-01), or ``None`` for a new GUID (v1).
        :param source: where the model is.
        :param target: where the asset goes.
        :param dialect: ``v1`` or ``2021-01-01``.
        :return: the conversion and whether it was created now (``False`` for a retry).
        :raises ConversionConflictError: the id exists with other settings.
        """
        account = normalize_id(account_id)
        with self._lock:
            now = self.clock()
            if conversion_id is None:
                conversion_id = str(uuid.uuid4())
            existing = self._conversions.get((account, conversion_id))
            if existing is not None:
                if (existing.record.input, existing.record.output) != (source, target):
                    raise ConversionConflictError(f"A conversion with id {conversion_id!r} already exists.")
                return existing.snapshot(now), False
            failure: tuple[str, str] | None = None
            asset = source.asset or ""
            if not asset.lower().endswith(SUPPORTED_INPUTS):
                suffix = "." + asset.rsplit(".", 1)[-1] if "." in asset else "(none)"
                failure = (
                    "InvalidInputFormat",
                    f"The input asset {asset!r} has an unsupported format {suffix}; supported: "
                    f"{', '.join(SUPPORTED_INPUTS)}.",
                )
            rules = (message for glob, message in self._failing_inputs if fnmatch.fnmatchcase(asset, glob))
            rule = next(rules, None)  # the first matching rule gives the message
            if rule is not None:
                failure = ("ConversionFailed", rule)
                self._faults_injected["fail_conversion"] += 1
            elif self._pending_conversion_failures:
                failure = ("ConversionFailed", self._pending_conversion_failures.popleft())
                self._faults_injected["fail_conversion"] += 1
            record = ConversionRecord(
                conversion_id=conversion_id,
                account_id=account,
                status=ConversionStatus.NOT_STARTED.value,
                input=source,
                output=target,
                output_asset_uri=None,
                error_code=None,
                error_message=None,
                creation_time=self.wall_clock(),
                dialect=dialect,
                next_change=None,
            )
            live = _LiveConversion(record, now, max(self.conversion_delay, 0.0), failure)
            self._conversions[(account, conversion_id)] = live
            return live.snapshot(now), True

    def get_conversion(self, conversion_id: str, account_id: str) -> ConversionRecord:
        """Return a conversion's current state.

        :raises ConversionNotFoundError: no such conversion in that account.
        """
        with self._lock:
            live = self._conversions.get((normalize_id(account_id), conversion_id))
            if live is None:
                raise ConversionNotFoundError(f"No conversion with id {conversion_id!r} exists.")
            return live.snapshot(self.clock())

    def list_conversions_page(
        self, account_id: str, limit: int, after: str | None = None
    ) -> tuple[list[ConversionRecord], str | None]:
        """One page of an account's conversions, in creation order, and the id the next page starts after.

        :raises ConversionNotFoundError: ``after`` names no conversion (a stale or forged continuation).
        """
        account = normalize_id(account_id)
        with self._lock:
            now = self.clock()
            ids = [cid for (owner, cid) in self._conversions if owner == account]
            start = 0
            if after is not None:
                if after not in ids:
                    raise ConversionNotFoundError(f"No conversion with id {after!r} exists.")
                start = ids.index(after) + 1
            page = [self._conversions[(account, cid)].snapshot(now) for cid in ids[start : start + limit]]
        more = start + limit < len(ids)
        return page, (page[-1].conversion_id if more and page else None)

    def conversions(self) -> list[ConversionRecord]:
        """Every conversion ever created, of all accounts, in creation order."""
        with self._lock:
            now = self.clock()
            return [live.snapshot(now) for live in self._conversions.values()]

    def _clear_conversions(self) -> None:
        """Forget conversions and scripted failures (next and by glob); the caller holds the lock."""
        self._conversions.clear()
        self._pending_conversion_failures.clear()
        self._failing_inputs.clear()


def introspection_record(record: ConversionRecord) -> Mapping[str, Any]:
    """A conversion as ``GET /_emulator/conversions`` shows it (SAS tokens are never shown)."""
    return {
        "conversionId": record.conversion_id,
        "accountId": record.account_id,
        "dialect": record.dialect,
        "status": record.status,
        "input": {
            "storageContainerUri": record.input.container_uri,
            "blobPrefix": record.input.blob_prefix,
            "relativeInputAssetPath": record.input.asset,
            "withSas": record.input.sas is not None,
        },
        "output": {
            "storageContainerUri": record.output.container_uri,
            "blobPrefix": record.output.blob_prefix,
            "outputAssetFilename": record.output.asset,
            "withSas": record.output.sas is not None,
        },
        "outputAssetUri": record.output_asset_uri,
        "errorMessage": record.error_message,
        "creationTime": record.creation_time,
    }
