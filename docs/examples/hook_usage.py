"""The hook on its own: a session's whole life cycle from a script, outside any task.

Inside a task, prefer the operators: they add the ownership records that make a retry or a kill safe.
The hook is for scripts, notebooks and ``@task`` functions that need a call the operators do not make
(e.g. listing the account's sessions). It reads the ``arr_default`` connection, as tasks do.
"""

import time
from datetime import timedelta

from airflow_provider_arr.hooks.remote_rendering import RemoteRenderingHook

with RemoteRenderingHook(arr_conn_id="arr_default") as hook:
    session_id = hook.create_session(timedelta(hours=1), size="standard")  # or "1:00:00"
    print(f"started {session_id}")

    # Block until Ready: read every 5 s, give up after 30 minutes.
    session = hook.wait_until_ready(session_id, poll_interval=5, end_time=time.time() + 30 * 60)
    print(f"{session.status.value} at {session.hostname}, lease {session.max_lease_time}")

    hook.update_session(session_id, timedelta(hours=2))  # the new TOTAL lease, not an addition

    for listed in hook.list_sessions():  # every session of the account, whoever started it
        print(f"{listed.session_id}: {listed.status.value}, running for {listed.elapsed_time}")

    hook.stop_session(session_id)
    print(f"stopped: {hook.get_session(session_id).status.value}")
