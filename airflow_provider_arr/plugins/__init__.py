"""The operations view in Airflow's UI: what runs on each account, who owns it, what it costs, a safe stop.

:mod:`.ops` is the ``AirflowPlugin`` (entry point ``airflow.plugins``). Airflow imports it in every
process, task processes included, so it imports nothing but the plugin base class; the FastAPI app
(:mod:`.app`) is built the first time the API server asks for it.
"""
