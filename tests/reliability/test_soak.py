"""A short soak (``scripts/soak.py``): 30 life cycles through the operators at 10 % chaos, both dialects."""

from __future__ import annotations

from scripts.soak import run_soak, says_what_happened


def test_soak_leaves_nothing_running_and_starts_no_duplicate():
    report = run_soak(cycles=30, chaos_rate=0.1, seed=2026)
    print(report.format())  # shown with -s, and on failure

    assert len(report.cycles) == 30
    assert sum(report.faults.values()) >= 10  # the chaos was real
    assert report.left_running == []
    assert report.duplicates == []
    assert report.unexplained == []
    assert report.secrets_in_failures == []


def test_says_what_happened():
    assert says_what_happened(
        RuntimeError("create_session failed: HTTP 503; service message: busy; MS-CV: x.0")
    )
    assert says_what_happened(
        RuntimeError(
            "get_session failed: no HTTP answer; service message: ConnectionError: ('Connection aborted.', "
            "ConnectionResetError(104, 'Connection reset by peer')); MS-CV: none"
        )
    )
    assert says_what_happened(RuntimeError("Session abc is Error and will not become Ready: no capacity"))
    assert says_what_happened(ValueError("max_lease_time: must be longer than zero, got -01:00:00"))
    assert says_what_happened(ValueError("connection 'arr' extra 'retry_limit': must be a number, got 'x'"))
    assert not says_what_happened(KeyError("sessionId"))
    assert not says_what_happened(RuntimeError("create_session failed"))
    assert not says_what_happened(RuntimeError("HTTP 500"))
