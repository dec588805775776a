"""The provider as Airflow itself sees it: entry point, schema, connection form."""

from __future__ import annotations

import importlib.metadata
import json
from importlib import resources

import jsonschema
import pytest

from airflow_provider_arr import get_provider_info
from tests.helpers import needs_airflow


def test_entry_point_is_registered():
    entry_points = importlib.metadata.entry_points(group="apache_airflow_provider")
    ours = [ep for ep in entry_points if ep.value.startswith("airflow_provider_arr")]
    assert len(ours) == 1
    assert ours[0].load() is get_provider_info


def test_provider_info_matches_airflows_schema():
    schema = json.loads(resources.files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_providers_manager_knows_the_connection_type():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-arr" in manager.providers
    try:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
    except ImportError:  # Airflow 3.1: the hooks are the ProvidersManager's
        hooks = manager.hooks
    else:
        hooks = ProvidersManagerTaskRuntime().hooks
    hook_info = hooks["azure_remote_rendering"]
    assert hook_info is not None
    assert hook_info.hook_class_name == "airflow_provider_arr.hooks.remote_rendering.RemoteRenderingHook"
    assert hook_info.connection_id_attribute_name == "arr_conn_id"


#: Airflow 3.1 builds connection forms from a hook's wtforms widgets only (and has no wtforms without the
#: FAB provider); the provider declares its form in provider info, which Airflow reads since 3.2.
DECLARED_FORMS = needs_airflow((3, 2), "the connection form declared in provider info (conn-fields)")


@DECLARED_FORMS
def test_providers_manager_knows_the_connection_form():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    behaviour = manager.field_behaviours["azure_remote_rendering"]
    assert behaviour["relabeling"]["password"] == "Account key (empty to sign in with Entra ID)"
    widgets = manager.connection_form_widgets
    assert "extra__azure_remote_rendering__sts_url" in widgets


ENTRA_FIELDS = [
    "tenantId",
    "client_id",
    "client_secret",
    "certificate_path",
    "managed_identity_client_id",
    "workload_identity_tenant_id",
    "authority_host",
    "entra_scope",
]


@DECLARED_FORMS
@pytest.mark.parametrize("name", ENTRA_FIELDS)
def test_the_form_has_each_entra_field_with_a_description_and_only_the_secret_is_sensitive(name):
    from airflow.providers_manager import ProvidersManager

    widget = ProvidersManager().connection_form_widgets[f"extra__azure_remote_rendering__{name}"]
    assert widget.field["description"]
    assert widget.is_sensitive == (name == "client_secret")
