"""Run my_render with `airflow dags test`, in another process, against an emulator in a third one."""

import os
import subprocess
from pathlib import Path

from airflow_provider_arr.emulator.process import EmulatorProcess

with EmulatorProcess(start_delay=1) as emulator:  # more CLI options first: "--fault", "create:503"
    env = {
        **os.environ,
        **emulator.env(),  # AIRFLOW_CONN_ARR_DEFAULT, pointing at the emulator
        "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).parent / "dags"),
    }
    subprocess.run(["airflow", "dags", "test", "my_render"], env=env, check=True)
print("my_render succeeded")  # check=True raised CalledProcessError if the run had failed
