"""convert_then_wait: start a conversion, then wait for it with the conversion sensor.

The convert operator can wait itself (``wait_for_completion=True``, the default). Starting it without
waiting and waiting in a sensor lets other tasks run in between, or a different timeout and retry
policy for the wait.
"""

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_arr.operators.conversion import RemoteRenderingConvertAssetOperator
from airflow_provider_arr.sensors.conversion import RemoteRenderingConversionSensor

with DAG("convert_then_wait", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    # [START howto_convert_without_waiting]
    convert = RemoteRenderingConvertAssetOperator(
        task_id="convert",
        input_container_uri="https://mystorage.blob.core.windows.net/models",
        input_asset_path="atrium/atrium.fbx",
        output_container_uri="https://mystorage.blob.core.windows.net/assets",
        output_blob_prefix="converted/{{ ds_nodash }}",
        wait_for_completion=False,  # returns the conversion id at once
    )
    # [END howto_convert_without_waiting]

    # [START howto_conversion_sensor]
    converted = RemoteRenderingConversionSensor(
        task_id="converted",
        conversion_id=convert.output,
        deferrable=True,  # wait in the triggerer, holding no worker slot
        poke_interval=1,
        timeout=3 * 3600,
    )
    # [END howto_conversion_sensor]

    @task
    def report(conversion: dict[str, Any]) -> str:
        """The sensor's XCom value is the conversion's properties."""
        print(f"{conversion['conversion_id']} is {conversion['status']}: {conversion['output_asset_uri']}")
        return str(conversion["output_asset_uri"])

    report(converted.output)
