"""What Airflow says about the owner of a session: the evidence a destructive decision needs.

Rule 1 of :mod:`airflow_provider_arr.ownership` lives here: a read that fails, or a state this code does
not know, is never taken as "finished". Every answer is a :class:`Verdict` that says what was read and
why the session may be stopped or must be kept.

Airflow is read through the Task SDK (``RuntimeTaskInstance.get_dagrun_state``, ``get_dr_count`` and
``get_task_states``: the Execution API of the API server). Outside a task runner there is nothing to
ask: :func:`airflow_state` is then ``None`` and each caller says what that means for it. Tests install
another reader with :func:`use_airflow_state`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from airflow_provider_arr.ownership.records import Owner

#: DAG run states in which the run is over: its sessions are no longer in use.
RUN_FINISHED = frozenset({"success", "failed"})
#: DAG run states in which the run's sessions may still be in use.
RUN_LIVE = frozenset({"queued", "running"})
#: Task instance states that end it for good (no retry follows).
FAILED_FOR_GOOD = frozenset({"failed", "upstream_failed"})
#: Task instance states after which the instance runs no more (until someone clears it).
TRY_OVER = FAILED_FOR_GOOD | {"success", "skipped", "removed"}

Kind = Literal["finished", "in_use", "unknown", "gone"]


@dataclass(frozen=True)
class Verdict:
    """What was read about an owner.

    ``finished``: positive evidence that it is done (its sessions may be stopped); ``in_use``: it may
    still use them; ``unknown``: a read failed or gave a state this code does not know (keep, decide
    later); ``gone``: Airflow answered that its DAG run does not exist (it can never say "finished").
    """

    kind: Kind
    reason: str

    @property
    def finished(self) -> bool:
        """Whether this verdict allows a stop."""
        return self.kind == "finished"


class AirflowState(Protocol):
    """The three reads the rules need; each raises when the read fails."""

    def dag_run_state(self, dag_id: str, run_id: str) -> str: ...
    def dag_run_exists(self, dag_id: str, run_id: str) -> bool: ...
    def task_states(self, dag_id: str, run_id: str, task_id: str) -> dict[int, str]: ...


class TaskSdkState:
    """The reads through the Task SDK of a running task (Airflow 3)."""

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        return state_name(RuntimeTaskInstance.get_dagrun_state(dag_id, run_id))

    def dag_run_exists(self, dag_id: str, run_id: str) -> bool:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        return int(RuntimeTaskInstance.get_dr_count(dag_id, run_ids=[run_id])) > 0

    def task_states(self, dag_id: str, run_id: str, task_id: str) -> dict[int, str]:
        """Every map index of ``task_id`` in the run (``-1``: not mapped) and its state."""
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        found = RuntimeTaskInstance.get_task_states(dag_id, task_ids=[task_id], run_ids=[run_id])
        return parse_task_states(task_id, found.get(run_id) or {})


def parse_task_states(task_id: str, states: dict[str, object]) -> dict[int, str]:
    """``{"create_0": "failed", ...}`` (the Execution API's keys) as ``{0: "failed", ...}``."""
    parsed: dict[int, str] = {}
    for key, state in states.items():
        if key == task_id:
            parsed[-1] = state_name(state)
        elif key.startswith(task_id + "_") and key[len(task_id) + 1 :].isdigit():
            parsed[int(key[len(task_id) + 1 :])] = state_name(state)
    return parsed


def state_name(state: object) -> str:
    """``"failed"`` for ``"failed"``, ``TaskInstanceState.FAILED`` or ``"DagRunState.FAILED"``."""
    value = getattr(state, "value", state)
    return "none" if value is None else str(value).rsplit(".", 1)[-1].lower()


_installed: AirflowState | None = None


def use_airflow_state(reader: AirflowState | None) -> None:
    """Install a reader (``None``: back to the Task SDK). For tests."""
    global _installed
    _installed = reader


def airflow_state() -> AirflowState | None:
    """The reader in use, or ``None`` outside a task runner (no Airflow to ask)."""
    if _installed is not None:
        return _installed
    from airflow.sdk.execution_time import task_runner

    return TaskSdkState() if getattr(task_runner, "SUPERVISOR_COMMS", None) is not None else None


def owner_verdict(owner: Owner, reader: AirflowState) -> Verdict:
    """Whether the create task instance ``owner`` is done with its sessions (the janitor's question)."""
    try:
        run_state = reader.dag_run_state(owner.dag_id, owner.run_id)
    except Exception as error:
        return _run_unreadable(owner, reader, error)
    if run_state in RUN_FINISHED:
        return Verdict("finished", f"belongs to a DAG run that is {run_state}")
    if run_state not in RUN_LIVE:
        return Verdict("unknown", f"its DAG run is in a state this janitor does not know ({run_state!r})")
    try:
        task_state = reader.task_states(owner.dag_id, owner.run_id, owner.task_id).get(owner.map_index)
    except Exception as error:
        return Verdict(
            "unknown", f"its run is {run_state} and its task's state could not be read ({_name(error)})"
        )
    if task_state in FAILED_FOR_GOOD:
        return Verdict("finished", f"has failed for good ({task_state})")
    return Verdict("in_use", "is still running")


def try_over(owner: Owner, states: dict[int, str] | None) -> Verdict:
    """Whether ``owner``'s last try is over, from its task's states (``None``: they could not be read)."""
    if states is None:
        return Verdict("unknown", "the create task's state could not be read")
    state = states.get(owner.map_index, "none")
    if state in TRY_OVER:
        return Verdict("finished", f"its try is over ({state})")
    return Verdict("in_use", f"it is {state}")


def _run_unreadable(owner: Owner, reader: AirflowState, error: Exception) -> Verdict:
    """A failed read of the run's state: a deleted run (Airflow says it has no such run), or unknown."""
    try:
        exists = reader.dag_run_exists(owner.dag_id, owner.run_id)
    except Exception:
        exists = None
    if exists is False:
        return Verdict("gone", "its DAG run no longer exists")
    return Verdict("unknown", f"its DAG run's state could not be read ({_name(error)})")


def _name(error: BaseException) -> str:
    """An error's class name only: a Task SDK error's text may carry anything."""
    return type(error).__name__
