#!/usr/bin/env bash
# Stages one node's identity for the LittleFS image: firmware/data/{device_id,ca.crt,device.crt,device.key}.
#
#   ferry pki device <id> --dir <pki>                 # once per node (writes <pki>/devices/<id>.crt/.key)
#   firmware/tools/provision.sh <pki> <id>
#   (cd firmware && pio run -e esp32dev -t uploadfs)  # writes data/ to the node's LittleFS partition
#
# data/ is git-ignored and holds a private key: delete it (or run this for the next node) when done.
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 <pki dir> <device id>" >&2
  exit 2
fi
pki=$1
id=$2
if ! [[ $id =~ ^[a-z0-9][a-z0-9_-]{0,62}$ ]]; then
  echo "provision: device id \"$id\" does not match ^[a-z0-9][a-z0-9_-]{0,62}$" >&2
  exit 2
fi
for f in "$pki/ca.crt" "$pki/devices/$id.crt" "$pki/devices/$id.key"; do
  if [[ ! -f $f ]]; then
    echo "provision: $f is missing; run: ferry pki device $id --dir $pki" >&2
    exit 1
  fi
done
# The certificate must belong to this id: the broker's ACL uses the CN as the identity.
cn=$(openssl x509 -in "$pki/devices/$id.crt" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p')
if [[ $cn != "$id" ]]; then
  echo "provision: $pki/devices/$id.crt has CN \"$cn\", expected \"$id\"" >&2
  exit 1
fi
data="$(cd "$(dirname "$0")/.." && pwd)/data"
mkdir -p "$data"
chmod 700 "$data"
printf '%s' "$id" > "$data/device_id"
cp "$pki/ca.crt" "$data/ca.crt"
cp "$pki/devices/$id.crt" "$data/device.crt"
install -m 600 "$pki/devices/$id.key" "$data/device.key"
echo "staged $id in $data; next: (cd firmware && pio run -e esp32dev -t uploadfs)"
