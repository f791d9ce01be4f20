"""A real headless Chromium through the stack users run (`make up`): NGINX, uWSGI, Mosquitto over WebSockets.

Sign in, the device list, the control page, a slider move reaching the broker as `set_config`, and a second
browser following the lamp's answer on `lamp/changed`.
"""

import json
from pathlib import Path

import paho.mqtt.publish
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.wait import WebDriverWait

from testing.mqtt_recorder import MqttRecorder
from testing.stacks import HOST, manage, site_url

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The fake account `loadtestingdata --start 233 --count 1` seeds.
USERNAME, PASSWORD, DEVICE = "user_000233", "332000_resu", "1e00000000e9"
# Seconds a page may take to show what the test waits for (a shared, loaded machine).
WAIT = 30


@pytest.fixture
def new_browser():
    """Starts headless Chromiums, each with its own cookies; quits them all after the test."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: install Debian's chromium and chromium-driver (make setup)")
    started = []

    def start() -> webdriver.Chrome:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
        for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=800,700"]:
            options.add_argument(argument)
        started.append(webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER))))
        return started[-1]

    yield start
    for browser in started:
        browser.quit()


def sign_in(browser: webdriver.Chrome, site: str) -> None:
    """Fills and sends the login form as a person does; returns on the device list it leads to."""
    browser.get(f"{site}/login/")
    browser.find_element(By.ID, "id_username").send_keys(USERNAME)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    WebDriverWait(browser, WAIT).until(EC.url_to_be(f"{site}/lampi/"), f"no device list after login: {browser.title}")


def brightness_of(browser: webdriver.Chrome) -> str:
    return browser.find_element(By.ID, "brightness").get_property("value")


def test_a_browser_signs_in_and_moves_the_lamp_and_another_browser_follows(stack, new_browser, tmp_path):
    env, _ = stack
    seeded = manage(env, "loadtestingdata", "--start", "233", "--count", "1")
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    site, broker = site_url(env), {"hostname": HOST, "port": int(env["LAMPI_MQTT_PORT"])}
    # The lamp's state and its bridge's, retained as the lamp and its bridge publish them.
    lamp = {"color": {"h": 0.25, "s": 0.75}, "brightness": 0.5, "on": True, "client": "lamp_service"}
    paho.mqtt.publish.single(f"devices/{DEVICE}/lamp/changed", json.dumps(lamp), qos=1, retain=True, **broker)
    paho.mqtt.publish.single(f"$SYS/broker/connection/{DEVICE}_broker/state", "1", qos=1, retain=True, **broker)

    first = new_browser()
    sign_in(first, site)
    first.find_element(By.CSS_SELECTOR, f"#device-list a[href='/lampi/device/{DEVICE}']").click()
    wait = WebDriverWait(first, WAIT)
    wait.until(EC.url_to_be(f"{site}/lampi/device/{DEVICE}"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "broker-state"), "broker connected"))
    wait.until(EC.text_to_be_present_in_element((By.ID, "device-state"), "lamp connected"))
    wait.until(lambda browser: brightness_of(browser) == "0.5")
    shown = {name: first.find_element(By.ID, name).get_property("value") for name in ["hue", "saturation"]}
    assert shown == {"hue": "0.25", "saturation": "0.75"}
    assert first.find_element(By.ID, "power").is_selected()

    second = new_browser()
    sign_in(second, site)
    second.get(f"{site}/lampi/device/{DEVICE}")
    WebDriverWait(second, WAIT).until(lambda browser: brightness_of(browser) == "0.5")

    with MqttRecorder(HOST, broker["port"], [f"devices/{DEVICE}/lamp/set_config"]) as recorder:
        WebDriverWait(first, WAIT).until(EC.element_to_be_clickable((By.ID, "brightness")))
        first.find_element(By.ID, "brightness").send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
        message = recorder.wait_for(lambda message: json.loads(message.payload)["brightness"] == 0.52, WAIT)
    sent = json.loads(message.payload)
    assert message.qos == 1
    assert (sent["color"], sent["on"]) == ({"h": 0.25, "s": 0.75}, True)
    assert sent["client"].startswith("lampi-web-")
    # The page sends to the lamp only: the second browser moves when the lamp answers, as lamp_service does.
    assert brightness_of(second) == "0.5"
    answer = {**sent, "client": "lamp_service"}
    paho.mqtt.publish.single(f"devices/{DEVICE}/lamp/changed", json.dumps(answer), qos=1, retain=True, **broker)
    WebDriverWait(second, WAIT).until(lambda browser: brightness_of(browser) == "0.52", "the second browser")
    second.save_screenshot(tmp_path / "control-page.png")
