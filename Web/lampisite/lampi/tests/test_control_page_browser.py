"""The lamp control page in a real headless Chromium, against the live site and a real Mosquitto."""

import json
from pathlib import Path

import paho.mqtt.publish
import pytest
from django.core.management import call_command
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.wait import WebDriverWait

from testing.mqtt_recorder import MqttRecorder

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The fake account `loadtestingdata --start 233 --count 1` seeds.
USERNAME, PASSWORD, DEVICE = "user_000233", "332000_resu", "1e00000000e9"


@pytest.fixture
def browser():
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: install Debian's chromium and chromium-driver (make setup)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=800,700"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    yield driver
    driver.quit()


def publish(broker, topic: str, payload: str) -> None:
    """Publishes as the lamp and its bridge do: QoS 1, retained."""
    paho.mqtt.publish.single(topic, payload, qos=1, retain=True, hostname=broker.host, port=broker.port)


def test_control_page_mirrors_the_lamp_and_sends_the_slider(
    transactional_db, live_server, mqtt_settings, mosquitto, browser, tmp_path
):
    mqtt_settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("loadtestingdata", start=233, count=1, verbosity=0)
    wait = WebDriverWait(browser, 15)

    browser.get(f"{live_server.url}/login/")
    browser.find_element(By.ID, "id_username").send_keys(USERNAME)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait.until(EC.url_to_be(f"{live_server.url}/lampi/"))
    browser.get(f"{live_server.url}/lampi/device/{DEVICE}")
    wait.until(EC.text_to_be_present_in_element((By.ID, "broker-state"), "broker connected"))

    lamp = {"color": {"h": 0.25, "s": 0.75}, "brightness": 0.5, "on": True, "client": "lamp_service"}
    publish(mosquitto, f"devices/{DEVICE}/lamp/changed", json.dumps(lamp))
    publish(mosquitto, f"$SYS/broker/connection/{DEVICE}_broker/state", "1")
    wait.until(EC.text_to_be_present_in_element((By.ID, "device-state"), "lamp connected"))
    wait.until(lambda driver: driver.find_element(By.ID, "brightness").get_property("value") == "0.5")
    shown = {name: browser.find_element(By.ID, name).get_property("value") for name in ["hue", "saturation"]}
    assert shown == {"hue": "0.25", "saturation": "0.75"}
    assert browser.find_element(By.ID, "power").is_selected()
    assert "connected" in browser.find_element(By.ID, "device-state").get_attribute("class").split()

    with MqttRecorder(mosquitto.host, mosquitto.port, [f"devices/{DEVICE}/lamp/set_config"]) as recorder:
        browser.find_element(By.ID, "brightness").send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
        message = recorder.wait_for(lambda message: json.loads(message.payload)["brightness"] == 0.52)
    sent = json.loads(message.payload)
    assert message.qos == 1
    assert sent["color"] == {"h": 0.25, "s": 0.75}
    assert sent["on"] is True
    assert sent["client"].startswith("lampi-web-")
    browser.save_screenshot(tmp_path / "control-page.png")
