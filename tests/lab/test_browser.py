"""What a student sees: log in through nginx, get JupyterLab, run code on a worker.

Drives Debian's chromium with Playwright (no browser download); the lab hub's
self-signed certificate is accepted by this test only.
"""

import re
import time

import pytest
from playwright.sync_api import expect

from fabrun import PROJECT

ARTIFACTS = PROJECT / "artifacts"
SPAWN_SECONDS = 180
KERNEL_SECONDS = 120
CODE = "import socket; print(socket.gethostname())"
# JupyterLab asks each user once (a toast) whether to fetch Jupyter news; it may cover the page.
NEWS_PROMPT = "Would you like to get notified about official Jupyter news?"


@pytest.fixture
def page(browser, request):
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"))
    context.close()


def log_in(page, hub_ip, name, password):
    page.goto(f"https://{hub_ip}/")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")


def decline_news(page):
    """Answer "No" to JupyterLab's news prompt whenever it shows, before any action or assertion."""
    toast = page.locator(".Toastify__toast").filter(has_text=NEWS_PROMPT)
    page.add_locator_handler(toast, lambda toast: toast.get_by_role("button", name="No", exact=True).click())


def new_notebook_with(page, code):
    """Open a notebook from the launcher, wait for its kernel, type CODE in its cell and check it
    is there; return the notebook panel. Retyped when the editor dropped keys (it is only
    checked, never trusted)."""
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    notebook = page.locator(".jp-NotebookPanel")
    expect(notebook).to_have_count(1)  # the workspace was reset: only this one
    # The kernel is up and idle: the status bar reads "Python 3 (ipykernel) | Idle".
    expect(page.locator("#jp-main-statusbar")).to_contain_text(re.compile(r"\|\s*Idle"), timeout=KERNEL_SECONDS * 1000)
    editor = notebook.locator(".jp-Cell .cm-content").first
    for attempt in range(3):
        editor.click()
        expect(editor).to_be_focused()
        editor.press("ControlOrMeta+a")
        editor.press_sequentially(code)
        try:
            expect(editor).to_have_text(code, timeout=10_000)
            return notebook
        except AssertionError:
            if attempt == 2:
                raise
    return notebook


def service_names(connect, hub_ip):
    out = connect(hub_ip).run("docker service ls --format '{{.Name}}'", hide=True).stdout
    return out.split()


def test_student_runs_code_on_a_worker(lab, deploy_run, lab_users, page, connect):
    assert f"https://{lab.hub_ip}/" in deploy_run.output
    name = lab_users.student
    log_in(page, lab.hub_ip, name, lab_users.password)
    started = time.monotonic()
    page.wait_for_url(re.compile(rf"/user/{name}/lab"), timeout=SPAWN_SECONDS * 1000)
    decline_news(page)
    # A fresh workspace: the last run's open notebook (and its output) is not restored.
    page.goto(f"https://{lab.hub_ip}/user/{name}/lab?reset")

    notebook = new_notebook_with(page, CODE)
    notebook.locator(".jp-Cell .cm-content").first.press("Shift+Enter")
    output = notebook.locator(".jp-Cell").first.locator(".jp-OutputArea-output")
    expect(output).to_have_text(re.compile(r"\S"), timeout=KERNEL_SECONDS * 1000)
    kernel_seconds = time.monotonic() - started

    hostname = output.inner_text().strip()
    worker_names = [f"worker{n}" for n in range(1, len(lab.worker_ips) + 1)]
    assert hostname in worker_names, f"notebook ran on {hostname!r}, not on a worker"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "notebook-on-worker.png"))
    (ARTIFACTS / "kernel-seconds.txt").write_text(f"{kernel_seconds:.1f}\n")

    assert f"jupyter-{name}" in service_names(connect, lab.hub_ip)
    page.goto(f"https://{lab.hub_ip}/hub/home")
    page.click("#stop")
    deadline = time.monotonic() + 60
    while f"jupyter-{name}" in service_names(connect, lab.hub_ip):
        assert time.monotonic() < deadline, "the notebook's swarm service outlived its server"
        time.sleep(1)


def test_admin_reaches_the_admin_page(lab, deploy_run, lab_users, page):
    log_in(page, lab.hub_ip, lab_users.admin, lab_users.admin_password)
    page.wait_for_url(re.compile(r"/(hub|user)/"))
    reply = page.goto(f"https://{lab.hub_ip}/hub/admin")
    assert reply.status == 200
    expect(page.get_by_text(lab_users.admin).first).to_be_visible()


def test_user_not_on_the_list_cannot_log_in(lab, deploy_run, lab_users, page):
    log_in(page, lab.hub_ip, "stranger", lab_users.password)
    expect(page.locator(".login_error")).to_contain_text("Invalid")
    assert "/hub/login" in page.url
