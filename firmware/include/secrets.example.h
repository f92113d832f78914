// Copy to include/secrets.h (git-ignored) and fill in. These values are the same for every node of
// one deployment; what differs per node (device id, certificate, private key) is on LittleFS.
#pragma once

// FERRY_WIFI_SSID / FERRY_WIFI_PASSWORD (string)
//   The 2.4 GHz network the node joins (the ESP32 has no 5 GHz radio).
#define FERRY_WIFI_SSID "my-network"
#define FERRY_WIFI_PASSWORD "change-me"

// FERRY_MQTT_HOST (string) / FERRY_MQTT_PORT (int)
//   The broker. The host name must be one of the SANs of server.crt (`ferry pki server --host ...`
//   or `--ip ...`), because the node verifies it against ca.crt. TLS only: 8883.
#define FERRY_MQTT_HOST "ferry.local"
#define FERRY_MQTT_PORT 8883

// FERRY_OTA_URL (string)
//   Base URL of the OTA server, no trailing slash. Same CA, same client certificate as MQTT.
#define FERRY_OTA_URL "https://ferry.local:8443"

// FERRY_RELEASE_PUB_PEM (string)
//   The release public key(s) the node trusts for OTA, from `ferry ota keygen --out <dir>`
//   (<dir>/release.pub). Not a secret, but deployment-specific. During key rotation, put both
//   PEM blocks in this one string. Never put release.key (the private half) anywhere near here.
#define FERRY_RELEASE_PUB_PEM \
  "-----BEGIN PUBLIC KEY-----\n" \
  "...paste the base64 lines of release.pub here...\n" \
  "-----END PUBLIC KEY-----\n"
