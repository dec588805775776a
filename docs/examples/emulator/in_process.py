"""The emulator in your own process: start it, script a fault, call it, read what it saw."""

import httpx

from airflow_provider_arr.emulator import ArrEmulator

with ArrEmulator(start_delay=0.2, conversion_delay=0.5) as emulator:
    print(emulator.url)  # http://127.0.0.1:<a free port>
    print(emulator.env())  # {"AIRFLOW_CONN_ARR_DEFAULT": "..."}: the connection, for Airflow

    emulator.state.add_fault("token", 503)  # the next token call answers 503, as the service would
    token_url = f"{emulator.url}/accounts/{emulator.account_id}/token"
    key = {"Authorization": f"Bearer {emulator.account_id}:{emulator.account_key}"}
    assert httpx.get(token_url, headers=key).status_code == 503
    assert httpx.get(token_url, headers=key).status_code == 200  # the fault is used up

    print(emulator.state.request_counts)  # Counter({'token': 2})
    print(emulator.state.faults_injected)  # Counter({'503': 1})
