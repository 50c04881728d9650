#!/usr/bin/env bash
# Installs the Debian packages the test suite talks to (real peers, no stubs) when they are missing:
# Mosquitto (broker), socat (RTU over a pseudo-terminal pair), Chromium (editor e2e), pymodbus
# (an independent Modbus implementation), udevadm (serialport's port list), nats-server (a broker cluster). Needs root or sudo; otherwise says what to install.
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v socat >/dev/null 2>&1 || need+=(socat)
[ -x /usr/bin/chromium ] || need+=(chromium)
/usr/bin/python3 -c 'import pymodbus' >/dev/null 2>&1 || need+=(python3-pymodbus)
/usr/bin/python3 -c 'import serial_asyncio' >/dev/null 2>&1 || need+=(python3-serial-asyncio) # pymodbus RTU server in the socat tests (pulls python3-serial)
command -v udevadm >/dev/null 2>&1 || need+=(udev) # serialport lists serial ports with `udevadm info -e` (the link dialog's port list)
[ -x /usr/sbin/nats-server ] || need+=(nats-server) # a 3-node NATS cluster with JetStream + MQTT for the broker-failover tests (test/helpers/nats-cluster.ts)
command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 && [ -e /usr/aarch64-linux-gnu/lib/crti.o ] || need+=(g++-aarch64-linux-gnu libc6-dev-arm64-cross) # the linux-arm64 fast-poller prebuild (scripts/prebuild.mjs, npm pack); the C library is only a recommends
command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user) # runs that prebuild in an arm64 Node.js (test/integration/native-pack.spec.ts)
[ ${#need[@]} -eq 0 ] && exit 0
echo "uns-edge: installing Debian packages for the tests: ${need[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "uns-edge: not root and no sudo; please install: apt-get install ${need[*]}" >&2; exit 1
  fi
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
