"""my_conversion against the emulator: a model converts, and a conversion made to fail fails the task."""

import pytest

from dags.my_conversion import dag


def test_the_model_converts(arr_emulator):
    dag_run = dag.test()

    assert dag_run.state == "success"
    (conversion,) = arr_emulator.state.conversions()
    assert conversion.status == "Succeeded"
    assert conversion.output_asset_uri.endswith("/assets/chair.arrAsset")


@pytest.mark.arr_emulator(fail_conversions={"broken/*": "The model has no geometry."})
def test_a_failed_conversion_fails_the_task_without_retries(arr_emulator, capfd):
    dag_run = dag.test(run_conf={"input_asset_path": "broken/chair.fbx"})

    assert dag_run.state == "failed"
    (task_instance,) = dag_run.get_task_instances()
    assert task_instance.state == "failed"
    assert task_instance.try_number == 1  # not retried, although the task has retries=2
    (conversion,) = arr_emulator.state.conversions()
    assert conversion.status == "Failed"
    # The task's log (printed by dag.test()) ends with the error: the service's message and its MS-CV.
    assert "is Failed: ConversionFailed: The model has no geometry." in capfd.readouterr().out
