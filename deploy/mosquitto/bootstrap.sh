#!/bin/sh
# One-time broker bootstrap for Tally (docs/security.md, "Devices and the broker").
#
#   deploy/mosquitto/bootstrap.sh /var/lib/mosquitto/dynamic-security.json
#
# 1. `mosquitto_ctrl dynsec init` writes the dynamic-security file with one admin account
#    (TALLY_DYNSEC_ADMIN_PASSWORD). Start Mosquitto with deploy/mosquitto/mosquitto.conf.
# 2. `tally-collector devices broker-bootstrap` (run once the broker is up, with
#    devices.broker_admin_url = mqtt://tally-admin:<password>@broker:1883) creates the role
#    `tally-collector` (read tally/v1/#, publish device configs and acks), gives it to the admin
#    account and creates the collector's own account (TALLY_MQTT_PASSWORD).
# Devices get their accounts from the collector at enrollment; nothing else is needed here.
set -eu
file=${1:?path of the dynamic-security file}
: "${TALLY_DYNSEC_ADMIN_PASSWORD:?set TALLY_DYNSEC_ADMIN_PASSWORD}"
if [ -e "$file" ]; then
    echo "$file exists; not overwriting" >&2
    exit 1
fi
mosquitto_ctrl dynsec init "$file" tally-admin "$TALLY_DYNSEC_ADMIN_PASSWORD"
chmod 600 "$file"
echo "now start mosquitto, then run: tally-collector devices broker-bootstrap"
