"""The Airflow UI of the compose stack in a real browser (headless Debian chromium, system chromedriver).

Screenshots are saved under artifacts/e2e/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from e2e import scenarios
from e2e.conftest import ARTIFACTS, ComposeStack, ensure_apt_packages

pytestmark = [pytest.mark.docker, pytest.mark.airflow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def browser(compose_stack: ComposeStack) -> Iterator[Any]:
    """A headless chromium logged in to the stack's UI as the admin user."""
    ensure_apt_packages({"chromium": "chromium", "chromedriver": "chromium-driver"})
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs the `selenium` package (pip)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.implicitly_wait(0)
    try:
        driver.get(compose_stack.client.url + "/auth/login")
        by = pytest.importorskip("selenium.webdriver.common.by").By
        _wait(driver, lambda d: d.find_elements(by.NAME, "username"), "the login form")
        driver.find_element(by.NAME, "username").send_keys("airflow")
        driver.find_element(by.NAME, "password").send_keys("airflow")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "01-login.png"))
        driver.find_element(by.XPATH, "//button[@type='submit']").click()
        _wait(driver, lambda d: "/auth/login" not in d.current_url, "the login to redirect")
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any, what: str, timeout: float = 60) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.5).until(condition, f"timed out waiting for {what}")


def _text(driver: Any) -> str:
    return driver.find_element("tag name", "body").text


def test_failed_finally_example_shows_groups_and_task_states(compose_stack: ComposeStack, browser: Any):
    client = compose_stack.client
    run_id = client.trigger(scenarios.FAILING_DAG)
    assert client.finished(scenarios.FAILING_DAG, run_id) == "failed"
    browser.get(f"{client.url}/dags/{scenarios.FAILING_DAG}/runs/{run_id}")
    groups_and_tasks = ("errors", "finally", "fail", "cleanup_task", "send_alert")
    _wait(browser, lambda d: all(name in _text(d) for name in groups_and_tasks), "the groups and tasks", 90)
    browser.save_screenshot(str(ARTIFACTS / "02-finally-example-run.png"))
    expected = {"fail": "failed", "send_alert": "success", "cleanup_task": "success"}
    for number, (task_id, state) in enumerate(expected.items(), start=3):
        browser.get(f"{client.url}/dags/{scenarios.FAILING_DAG}/runs/{run_id}/tasks/{task_id}")
        _wait(browser, lambda d, s=state: s in _text(d).lower(), f"the state of {task_id}", 90)
        browser.save_screenshot(str(ARTIFACTS / f"{number:02d}-task-{task_id}.png"))
        assert task_id in _text(browser)


def test_trigger_form_lists_the_flow_inputs(compose_stack: ComposeStack, browser: Any):
    from selenium.webdriver.common.by import By

    browser.get(f"{compose_stack.client.url}/dags/{scenarios.INPUTS_DAG}")
    trigger = _wait(
        browser, lambda d: [b for b in d.find_elements(By.XPATH, "//button[contains(., 'Trigger')]")], "Trigger"
    )
    trigger[0].click()
    _wait(browser, lambda d: "who" in _text(d) and "times" in _text(d), "the inputs in the trigger form")
    browser.save_screenshot(str(ARTIFACTS / "06-trigger-form.png"))
    page = _text(browser)
    assert "who" in page and "times" in page
    # The INT input's field holds its default.
    fields = browser.find_elements(By.TAG_NAME, "input")
    assert "1" in [field.get_attribute("value") for field in fields]
