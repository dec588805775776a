"""Shared by the example DAGs: the stand-in for real rendering work, and its settings.

The DAG files import it as ``_render_manifest``: Airflow puts the DAGs folder (the root of its DAG
bundle) on ``sys.path`` wherever it parses or runs them.

The "render" writes a small JSON manifest (scene, session, hostname, timestamps) into the directory
named by ``ARR_RENDER_OUTPUT_DIR`` (a temporary directory by default). Real pipelines would connect a
rendering client to the session's hostname here.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Seconds between two status reads: the service suggests 5-10 s; 5 finds a Ready session 2.5 s after
#: it became billable on average (make bench-billed).
POLL_INTERVAL = float(os.environ.get("ARR_EXAMPLE_POLL_INTERVAL", "5"))


def write_render_manifest(
    scene: str,
    session: dict[str, Any],
    fail: bool = False,
    asset: str | None = None,
    seconds: float = 0,
) -> str:
    """Write the render manifest of one scene rendered on a Ready session; return the file's path.

    :param scene: the scene's name.
    :param session: the session's properties, as the Ready sensor returns them.
    :param fail: fail on purpose, to show that the session is still stopped.
    :param asset: the ``.arrAsset`` URI the session renders, when the pipeline converted one.
    :param seconds: how long the stand-in render takes (a real one takes minutes), e.g. to watch the
        session being billed in the operations view while its run is running.
    """
    hostname = session.get("hostname")
    if not hostname:
        raise ValueError(f"Session {session.get('session_id')} has no hostname; is it Ready?")
    started = datetime.now(UTC)
    if fail:
        raise RuntimeError(f"Rendering {scene!r} failed on purpose (fail_render=True)")
    if seconds < 0:
        raise ValueError(f"render_seconds must be 0 or more, not {seconds!r}")
    time.sleep(seconds)
    output_dir = Path(os.environ.get("ARR_RENDER_OUTPUT_DIR") or Path(tempfile.gettempdir(), "arr-renders"))
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "scene": scene,
        "session_id": session["session_id"],
        "hostname": hostname,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
    }
    if asset is not None:
        manifest["asset"] = asset
    path = output_dir / f"{scene}-{session['session_id']}.json"
    path.write_text(json.dumps(manifest, indent=2))
    return str(path)
