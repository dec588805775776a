"""``python -m airflow_provider_arr.emulator``: run the emulator (see :mod:`.cli`)."""

from __future__ import annotations

from airflow_provider_arr.emulator.cli import main

raise SystemExit(main())
