"""A pymodbus (3.0.0rc1, Debian python3-pymodbus) Modbus TCP client driven by JSON lines.

Usage: /usr/bin/python3 pymodbus_client.py HOST PORT
Reads one JSON request per stdin line, e.g.
  {"op": "read_holding_registers", "address": 0, "count": 3, "slave": 1}
and prints one JSON answer per line:
  {"ok": true, "registers": [...]} | {"ok": true, "bits": [...]} | {"ok": true}
  {"ok": false, "exception": 2}    | {"ok": false, "error": "..."}
It is an independent Modbus implementation used to check uns-edge's server (test/helpers/pymodbus.ts).
"""
import json
import logging
import sys

from pymodbus.client import ModbusTcpClient
from pymodbus.pdu import ExceptionResponse

logging.basicConfig(level=logging.CRITICAL)

READS = {"read_coils", "read_discrete_inputs", "read_holding_registers", "read_input_registers"}
WRITES = {"write_coil", "write_register", "write_coils", "write_registers"}


def run(client, req):
    op = req["op"]
    slave = req.get("slave", 1)
    if op in READS:
        result = getattr(client, op)(req["address"], req["count"], slave=slave)
    elif op in WRITES:
        result = getattr(client, op)(req["address"], req["value"], slave=slave)
    elif op == "read_exception_status":  # FC 7: a function code uns-edge's server does not implement
        result = client.read_exception_status(slave=slave)
    else:
        return {"ok": False, "error": "unknown op " + op}
    if isinstance(result, ExceptionResponse):
        return {"ok": False, "exception": result.exception_code}
    if result.isError():
        return {"ok": False, "error": str(result)}
    if op in ("read_coils", "read_discrete_inputs"):
        return {"ok": True, "bits": [1 if b else 0 for b in result.bits[: req["count"]]]}
    if op in ("read_holding_registers", "read_input_registers"):
        return {"ok": True, "registers": list(result.registers)}
    return {"ok": True}


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    client = ModbusTcpClient(host, port=port, timeout=1, retries=0)
    if not client.connect():
        print(json.dumps({"ok": False, "error": "connect failed"}), flush=True)
        return 1
    print(json.dumps({"ok": True, "ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = run(client, json.loads(line))
        except Exception as error:  # pylint: disable=broad-except
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
