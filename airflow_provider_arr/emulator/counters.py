"""What the emulated service counts: the calls each operation received and the faults it injected.

:class:`RequestCounters` is a part of :class:`~airflow_provider_arr.emulator.state.EmulatorState`
(which creates ``_lock`` and calls :meth:`RequestCounters._init_counters`); it is not used alone.
"""

from __future__ import annotations

import threading
from collections import Counter

__all__ = ["RequestCounters"]


class RequestCounters:
    """The request and fault counts of the emulator state, behind the state's lock."""

    _lock: threading.RLock

    def _init_counters(self) -> None:
        self._counts: Counter[str] = Counter()
        self._faults_injected: Counter[str] = Counter()

    @property
    def request_counts(self) -> Counter[str]:
        """A copy of the number of calls received per operation (faulted calls included)."""
        with self._lock:
            return Counter(self._counts)

    def reset_counts(self) -> None:
        """Set every request count back to zero."""
        with self._lock:
            self._counts.clear()

    @property
    def faults_injected(self) -> Counter[str]:
        """A copy of the number of faults injected so far, by kind.

        Request faults count under :attr:`Fault.kind` (``429``, ``503``, ``drop_before``,
        ``drop_after``, ``truncate``, ``garble``, ``delay``, ...), session faults as ``fail_start``,
        ``slow_start``, ``expire`` and ``external_stop``; scripted and chaos faults alike.
        """
        with self._lock:
            return Counter(self._faults_injected)

    def _clear_counters(self) -> None:
        """Forget every count; the caller holds the lock."""
        self._counts.clear()
        self._faults_injected.clear()
