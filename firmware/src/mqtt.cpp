// MQTT 3.1.1 over mutual TLS with 256dpi/arduino-mqtt (lwmqtt) on NetworkClientSecure.
//
// Why this client (docs/firmware-notes.md#mqtt-client-choice): PubSubClient can only publish at
// QoS 0; arduino-mqtt publishes QoS 1 and blocks until the PUBACK, which is exactly the Transport
// contract the core's Outbox relies on ("true = the broker has it"), and it supports a retained
// QoS 1 Last Will. esp-mqtt would also work but its outbox drops messages after 30 s, so the RAM
// outbox in the core stays the one offline store either way.
#include <Arduino.h>
#include <MQTT.h>
#include <NetworkClientSecure.h>

#include <deque>

#include "app.h"
#include "config.h"
#include "ferry/backoff.h"
#include "ferry/outbox.h"
#include "secrets.h"

// arduino-mqtt reads a whole packet into this buffer; the broker's retained `ack` message must fit,
// or it could never be read: fixed header (5) + topic length (2) + `sensors/<63-char id>/ack` (75)
// + the longest confirmation the gateway sends.
static_assert(FERRY_MQTT_BUFFER_BYTES >= 5 + 2 + 75 + ferry::kMaxConfirmationBytes,
              "FERRY_MQTT_BUFFER_BYTES cannot hold a 32-range commit confirmation");

namespace {

NetworkClientSecure g_net;
MQTTClient g_mqtt(FERRY_MQTT_BUFFER_BYTES);
ferry::Reconnector g_backoff(FERRY_BACKOFF_BASE_MS, FERRY_BACKOFF_CAP_MS, FERRY_BACKOFF_STABLE_MS);
const Identity* g_id = nullptr;
const ferry::Topics* g_topics = nullptr;
bool g_was_connected = false;
bool g_stopped = false;

// Written from the message callback (inside g_mqtt.loop()/publish()), read from loop(): both run
// on the Arduino loop task, so no lock is needed. arduino-mqtt forbids publishing from the callback.
// Confirmations are queued rather than handed to the outbox here, because the callback also runs
// inside the outbox's own blocking publishes (ferry/outbox.h: not re-entrant). A confirmation lost
// to a full queue costs only a resend (docs/delivery.md).
std::string g_pending_cmd;
bool g_has_cmd = false;
constexpr size_t kAckQueue = 8;
std::deque<std::string> g_acks;

void on_message(MQTTClient*, char topic[], char bytes[], int length) {
  if (!g_topics || length < 0) return;
  if (g_topics->led_set == topic) {
    g_pending_cmd.assign(bytes, size_t(length));
    g_has_cmd = true;
  } else if (g_topics->ack == topic) {
    if (g_acks.size() == kAckQueue) g_acks.pop_front();
    g_acks.emplace_back(bytes, size_t(length));
  }
}

class MqttTransport : public ferry::Transport {
 public:
  bool connected() const override { return const_cast<MQTTClient&>(g_mqtt).connected(); }
  bool publish(const std::string& topic, std::string_view payload, int qos, bool retain) override {
    // QoS 1: returns after PUBACK or FERRY_MQTT_TIMEOUT_MS (lwmqtt_publish waits for the ack).
    return g_mqtt.publish(topic.c_str(), payload.data(), int(payload.size()), retain, qos);
  }
} g_transport;

bool connect_once() {
  logf("mqtt", "connecting to %s:%d as %s", FERRY_MQTT_HOST, FERRY_MQTT_PORT, g_id->device_id.c_str());
  // Last Will: retained "offline" at QoS 1, sent by the broker if this connection dies.
  g_mqtt.setWill(g_topics->status.c_str(), "offline", true, 1);
  // Persistent session: QoS 1 led/set commands sent while we were away are queued by the broker.
  // The client id must equal the certificate CN for the broker's ACL (use_identity_as_username).
  if (!g_mqtt.connect(g_id->device_id.c_str())) {
    char tls[128] = "";
    g_net.lastError(tls, sizeof tls);
    logf("mqtt", "connect failed: lwmqtt %d, return code %d, TLS: %s", int(g_mqtt.lastError()), int(g_mqtt.returnCode()),
         tls);
    return false;
  }
  if (!g_mqtt.subscribe(g_topics->led_set.c_str(), 1)) {
    logf("mqtt", "subscribe to %s failed", g_topics->led_set.c_str());
    g_mqtt.disconnect();
    return false;
  }
  // Commit confirmations (docs/delivery.md). QoS 0: the broker sends the retained one at once, and
  // a lost one costs a resend. With an old ACL Mosquitto still grants the subscription but never
  // delivers (ACL files restrict delivery, not subscribing: eclipse-mosquitto/mosquitto#2042), so
  // the outbox falls back to PUBACKs after 60 s.
  if (!g_mqtt.subscribe(g_topics->ack.c_str(), 0)) {
    logf("mqtt", "subscribe to %s failed", g_topics->ack.c_str());
    g_mqtt.disconnect();
    return false;
  }
  // The self-test's "one acknowledged publish": the retained online status at QoS 1.
  if (!g_mqtt.publish(g_topics->status.c_str(), "online", true, 1)) {
    logf("mqtt", "online status not acknowledged");
    g_mqtt.disconnect();
    return false;
  }
  logf("mqtt", "connected (session %s)", g_mqtt.sessionPresent() ? "resumed" : "new");
  return true;
}

}  // namespace

void mqtt_begin(const Identity& id, const ferry::Topics& topics) {
  g_id = &id;
  g_topics = &topics;
  // Mutual TLS: verify the broker against our CA, present the device certificate.
  // NetworkClientSecure stores these pointers; Identity's strings live for the program's lifetime.
  g_net.setCACert(id.ca_pem.c_str());
  g_net.setCertificate(id.cert_pem.c_str());
  g_net.setPrivateKey(id.key_pem.c_str());
  g_net.setHandshakeTimeout(FERRY_MQTT_TIMEOUT_MS / 1000 + 5);
  g_mqtt.begin(FERRY_MQTT_HOST, FERRY_MQTT_PORT, g_net);
  g_mqtt.setOptions(FERRY_MQTT_KEEPALIVE_S, /*cleanSession=*/false, FERRY_MQTT_TIMEOUT_MS);
  g_mqtt.onMessageAdvanced(on_message);
}

bool mqtt_poll(uint32_t now, bool wifi_up, bool& just_connected) {
  just_connected = false;
  if (g_stopped) return false;
  if (g_mqtt.connected()) {
    g_mqtt.loop();
    if (g_mqtt.connected()) return true;
  }
  if (g_was_connected) {
    g_was_connected = false;
    uint32_t d = g_backoff.disconnected(now, rng());
    logf("mqtt", "connection lost (lwmqtt %d); retry in %lu ms", int(g_mqtt.lastError()), static_cast<unsigned long>(d));
    return false;
  }
  if (!wifi_up || !g_backoff.due(now)) return false;
  if (!connect_once()) {
    uint32_t d = g_backoff.failed(now, rng());
    logf("mqtt", "retry in %lu ms", static_cast<unsigned long>(d));
    return false;
  }
  g_backoff.connected(now);
  g_was_connected = true;
  just_connected = true;
  return true;
}

ferry::Transport& mqtt_transport() { return g_transport; }

bool mqtt_take_command(std::string& payload) {
  if (!g_has_cmd) return false;
  payload.swap(g_pending_cmd);
  g_pending_cmd.clear();
  g_has_cmd = false;
  return true;
}

bool mqtt_take_ack(std::string& payload) {
  if (g_acks.empty()) return false;
  payload.swap(g_acks.front());
  g_acks.pop_front();
  return true;
}

void mqtt_stop(const char* why) {
  if (g_mqtt.connected()) {
    g_mqtt.publish(g_topics->status.c_str(), "offline", true, 1);
    g_mqtt.disconnect();
  }
  g_was_connected = false;
  g_stopped = true;
  logf("mqtt", "stopped: %s", why);
}

void mqtt_resume() { g_stopped = false; }
