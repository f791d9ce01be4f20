// The lamp control page: mirrors the lamp's state from `devices/<id>/lamp/changed` and sends the sliders'
// values to `devices/<id>/lamp/set_config` over MQTT-over-WebSockets (mqtt.js, vendored under vendor/mqtt).
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("mqtt-config").textContent);
  const deviceId = config.deviceId;
  const topics = {
    changed: `devices/${deviceId}/lamp/changed`,
    setConfig: `devices/${deviceId}/lamp/set_config`,
    bridge: `$SYS/broker/connection/${deviceId}_broker/state`,
  };
  // A unique id per page: the lamp echoes it in `changed`, so the page can ignore its own echoes.
  const clientId = "lampi-web-" + Math.random().toString(16).slice(2, 14);
  const url = config.websocketsUrl || `ws://${window.location.hostname}:${config.websocketsPort}/mqtt`;

  const inputs = {
    hue: document.getElementById("hue"),
    saturation: document.getElementById("saturation"),
    brightness: document.getElementById("brightness"),
    power: document.getElementById("power"),
  };
  const brokerState = document.getElementById("broker-state");
  const deviceState = document.getElementById("device-state");
  const swatch = document.getElementById("swatch");

  function paintSwatch() {
    const h = Math.round(inputs.hue.value * 360);
    const s = Math.round(inputs.saturation.value * 100);
    const l = inputs.power.checked ? Math.round(inputs.brightness.value * 50) : 0;
    swatch.style.background = `hsl(${h}, ${s}%, ${l}%)`;
  }

  function setEnabled(enabled) {
    Object.values(inputs).forEach((input) => { input.disabled = !enabled; });
  }

  const client = mqtt.connect(url, { clientId: clientId, clean: true, reconnectPeriod: 2000 });

  client.on("connect", () => {
    brokerState.textContent = "broker connected";
    brokerState.className = "state connected";
    // Controls come alive once the subscriptions are granted: the retained `changed` state arrives first, so
    // a slider moved at once never sends the page's defaults over the lamp's real state.
    client.subscribe([topics.changed, topics.bridge], { qos: 1 }, (error) => {
      if (error) {
        brokerState.textContent = "subscription refused: " + error.message;
        brokerState.className = "state disconnected";
        return;
      }
      setEnabled(true);
    });
  });
  client.on("offline", () => {
    brokerState.textContent = "broker unreachable, retrying";
    brokerState.className = "state disconnected";
    setEnabled(false);
  });
  client.on("error", (error) => {
    brokerState.textContent = "broker error: " + error.message;
    brokerState.className = "state disconnected";
  });

  client.on("message", (topic, payload) => {
    if (topic === topics.bridge) {
      const connected = payload.toString() === "1";
      deviceState.textContent = connected ? "lamp connected" : "lamp disconnected";
      deviceState.className = "state " + (connected ? "connected" : "disconnected");
      return;
    }
    let state;
    try { state = JSON.parse(payload.toString()); } catch (error) { return; }
    if (state.client === clientId) return;
    if (state.color) {
      inputs.hue.value = state.color.h;
      inputs.saturation.value = state.color.s;
    }
    if (state.brightness !== undefined) inputs.brightness.value = state.brightness;
    if (state.on !== undefined) inputs.power.checked = Boolean(state.on);
    paintSwatch();
  });

  function sendConfig() {
    paintSwatch();
    const message = {
      color: { h: Number(inputs.hue.value), s: Number(inputs.saturation.value) },
      brightness: Number(inputs.brightness.value),
      on: inputs.power.checked,
      client: clientId,
    };
    client.publish(topics.setConfig, JSON.stringify(message), { qos: 1 });
  }

  // `input` fires while a slider is dragged, so the lamp follows the finger as on its touchscreen.
  ["hue", "saturation", "brightness"].forEach((name) => inputs[name].addEventListener("input", sendConfig));
  inputs.power.addEventListener("change", sendConfig);
  window.addEventListener("beforeunload", () => client.end(true));
  paintSwatch();
})();
