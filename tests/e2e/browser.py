"""Airflow's web UI driven in Debian's Chromium (headless) through Playwright, for the browser test.

``scripts/e2e.sh`` installs Chromium with apt-get when it is missing; Playwright (a test extra, pinned in
``constraints.txt``) drives that system browser through ``executable_path`` and never downloads one of
its own. One browser and one page serve a whole test module; every screenshot goes to a directory of the
e2e temp dir (kept with ``ARR_E2E_KEEP=1``) and its path is logged.

For a later test: :meth:`AirflowUI.open_task` opens a task instance's page, and
:meth:`AirflowUI.extra_link` / :meth:`AirflowUI.click_extra_link` find and follow one of its extra links
(Airflow 3 shows them as links above the task's tabs, opening in a new tab).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from e2e_deployment import AirflowDeployment, log

#: Seconds a page element may take to appear (the api-server shares two cores with the whole deployment).
UI_TIMEOUT = 30.0


def chromium_path() -> str:
    """The system Chromium (``ARR_E2E_CHROMIUM`` overrides); scripts/e2e.sh installs Debian's."""
    found = os.environ.get("ARR_E2E_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("Chromium was not found; scripts/e2e.sh installs it (apt-get install chromium)")
    return found


class AirflowUI:
    """One headless Chromium page logged in to a deployment's UI.

    :param airflow: the deployment.
    :param shots: the directory for screenshots (created).
    """

    def __init__(self, airflow: AirflowDeployment, shots: Path) -> None:
        self.airflow = airflow
        self.shots = shots
        self.shots.mkdir(parents=True, exist_ok=True)
        self._playwright: Any = None
        self._browser: Any = None
        self.page: Any = None

    def __enter__(self) -> AirflowUI:
        from playwright.sync_api import sync_playwright

        started = time.monotonic()
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=chromium_path(),
                # As root Chromium needs --no-sandbox; /dev/shm is small in containers.
                args=["--no-sandbox", "--disable-dev-shm-usage"],
            )
            self.page = self._browser.new_page(viewport={"width": 1400, "height": 1000})
            self.page.set_default_timeout(UI_TIMEOUT * 1000)
        except BaseException:
            self.__exit__()
            raise
        log(f"Chromium up in {time.monotonic() - started:.1f} s ({chromium_path()})")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None

    @contextmanager
    def signed_in_as(self, username: str) -> Iterator[AirflowUI]:
        """Another user, signed in on a page of a fresh browser context (its own cookies), for a while.

        One Playwright per thread: a second ``AirflowUI`` would start another and fail.
        """
        context = self._browser.new_context(viewport={"width": 1400, "height": 1000})
        saved, self.page = self.page, context.new_page()
        self.page.set_default_timeout(UI_TIMEOUT * 1000)
        try:
            self.login(username)
            yield self
        finally:
            self.page = saved
            context.close()

    def url(self, path: str) -> str:
        """A UI URL of the deployment."""
        return f"{self.airflow.api_url}/{path.lstrip('/')}"

    def shot(self, name: str) -> Path:
        """Save a full-page screenshot as ``<name>.png`` and log where it is."""
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        log(f"screenshot {path}")
        return path

    def login(self, username: str | None = None) -> None:
        """Sign in on the simple auth manager's page, as a user does: the admin, or ``"viewer"``."""
        viewer = username == "viewer"
        self.page.goto(self.url("/"))
        self.page.get_by_label("Username").fill(username or self.airflow.username)
        self.page.get_by_label("Password").fill(
            self.airflow.viewer_password if viewer else self.airflow.password
        )
        self.page.get_by_role("button", name="Sign in").click()
        if viewer:  # no Admin menu for a viewer: wait until the login page is left
            self.page.wait_for_function("() => !location.pathname.includes('login')")
            self.page.get_by_role("button", name="Browse").wait_for()
        else:
            self.page.get_by_role("button", name="Admin").wait_for()

    # --- connections ----------------------------------------------------------------------------

    def open_connection_form(self, connection_id: str, hook_name: str) -> Any:
        """Open "Add Connection", give the id and pick the type; return the dialog (a locator)."""
        self.page.goto(self.url("/connections"))
        self.page.get_by_role("button", name="Add Connection").click()
        dialog = self.page.get_by_role("dialog")
        dialog.get_by_label("Connection ID").fill(connection_id)
        dialog.get_by_role("combobox", name="Connection Type").fill(hook_name)
        self.page.get_by_role("option", name=hook_name).click()
        dialog.get_by_label("Description").wait_for()  # the standard fields are open
        return dialog

    def open_extra_fields(self, dialog: Any) -> None:
        """Unfold the form's "Extra Fields" section (the standard fields fold away)."""
        dialog.get_by_role("button", name="Extra Fields", exact=True).click()
        dialog.locator("[name^=element_]").first.wait_for()

    def connection_row(self, connection_id: str) -> Any:
        """The connection list's row of one connection."""
        self.page.goto(self.url("/connections"))
        return self.page.get_by_role("row").filter(has_text=connection_id)

    def toasts(self) -> list[str]:
        """The text of the notifications shown now (the test result comes as one)."""
        self.page.get_by_role("status").first.wait_for()
        return [text.strip() for text in self.page.get_by_role("status").all_inner_texts()]

    # --- task pages -----------------------------------------------------------------------------

    def open_task(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> None:
        """Open a task instance's page (its Logs tab is the first shown)."""
        path = f"/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}"
        if map_index >= 0:
            path += f"/mapped/{map_index}"
        self.page.goto(self.url(path))
        self.page.get_by_role("link", name="Logs", exact=True).wait_for()

    def task_log_text(self, wait_for: str) -> str:
        """The log as the Logs tab shows it, once it shows ``wait_for``; collapsed groups are opened."""
        self.page.get_by_text(wait_for).first.wait_for()
        collapsed = self.page.locator("[data-testid^='summary-']").filter(has_text="▶")
        for _ in range(20):  # each click re-renders the (virtualized) list: look again every time
            if not collapsed.count():
                break
            collapsed.first.click()
        return str(self.page.locator("body").inner_text())

    def extra_link(self, name: str | re.Pattern[str]) -> Any:
        """The task page's extra link of that name (a locator; ``.get_attribute("href")`` is its URL)."""
        return self.page.get_by_role("link", name=name)

    def click_extra_link(self, name: str | re.Pattern[str]) -> Any:
        """Click an extra link; return the page it opened (a new tab), loaded."""
        with self.page.context.expect_page() as opened:
            self.extra_link(name).click()
        page = opened.value
        page.wait_for_load_state()
        return page
