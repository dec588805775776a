"""my_conversion: convert one model into an .arrAsset that a session can load."""

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from airflow_provider_arr.operators.conversion import RemoteRenderingConvertAssetOperator

with DAG(
    "my_conversion",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    params={"input_asset_path": Param("chairs/chair.fbx", type="string")},
) as dag:
    convert = RemoteRenderingConvertAssetOperator(
        task_id="convert",
        input_container_uri="https://mystorage.blob.core.windows.net/models",
        input_asset_path="{{ params.input_asset_path }}",
        output_container_uri="https://mystorage.blob.core.windows.net/assets",
        deferrable=True,
        poll_interval=1,  # seconds between status reads: the emulator converts in a second
        retries=2,  # network trouble is retried; a Failed conversion is not
        retry_delay=timedelta(seconds=1),
    )
