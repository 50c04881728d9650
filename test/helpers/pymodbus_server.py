"""A pymodbus (3.0.0rc1, Debian python3-pymodbus) Modbus TCP or RTU server controlled by JSON lines.

Usage: /usr/bin/python3 pymodbus_server.py '{"units": [1, 2], "size": 200}'
Listens on 127.0.0.1 on a free port and prints {"ready": true, "port": N}.
With "serial": {"port": "/tmp/x/b", "baudrate": 38400, "parity": "E", "stopbits": 1} it is a Modbus
RTU server on that serial device (pyserial + serial_asyncio) and prints {"ready": true, "port": path}.
Then it reads one command
per stdin line and answers {"ok": true} (or {"ok": false, "error": ...}):
  {"cmd": "set", "unit": 1, "table": "holding", "address": 0, "values": [1, 2]}
  {"cmd": "get", "unit": 1, "table": "holding", "address": 0, "count": 2}  -> {"ok": true, "values": [...]}
  {"cmd": "remove_unit", "unit": 2}  unit no longer answers at all (ignore_missing_slaves)
  {"cmd": "add_unit", "unit": 2}     unit answers again (values kept)
  {"cmd": "fail", "unit": 1, "on": true}  every access raises -> pymodbus answers exception 4
  {"cmd": "drop"}                    close every client connection (the server keeps listening)
EOF on stdin stops the server. Addresses are 0-based (zero_mode=True): what a client asks for.
"""
import asyncio
import json
import logging
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server.async_io import ModbusSerialServer, ModbusTcpServer
from pymodbus.transaction import ModbusRtuFramer

logging.basicConfig(level=logging.CRITICAL)
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

TABLE_KEYS = {"coil": "c", "discrete": "d", "holding": "h", "input": "i"}


class FailableBlock(ModbusSequentialDataBlock):
    """A sequential block that can be made to raise (pymodbus then answers exception 4)."""

    failing = False

    def getValues(self, address, count=1):  # noqa: N802 (pymodbus API name)
        if self.failing:
            raise RuntimeError("simulated device failure")
        return super().getValues(address, count)

    def setValues(self, address, values):  # noqa: N802
        if self.failing:
            raise RuntimeError("simulated device failure")
        super().setValues(address, values)


def make_unit(size):
    blocks = {key: FailableBlock(0, [0] * size) for key in ("co", "di", "hr", "ir")}
    return ModbusSlaveContext(zero_mode=True, **blocks), blocks


async def main():
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    size = int(config.get("size", 200))
    units = {}
    for unit in config.get("units", [1]):
        units[unit] = make_unit(size)
    context = ModbusServerContext(slaves={u: ctx for u, (ctx, _) in units.items()}, single=False)
    serial = config.get("serial")
    if serial:
        server = ModbusSerialServer(
            context,
            framer=ModbusRtuFramer,
            port=serial["port"],
            baudrate=int(serial.get("baudrate", 19200)),
            parity=serial.get("parity", "E"),
            stopbits=int(serial.get("stopbits", 1)),
            bytesize=8,
            ignore_missing_slaves=True,
        )
        await server.start()
        serving = None
        port = serial["port"]
    else:
        server = ModbusTcpServer(
            context, address=("127.0.0.1", 0), allow_reuse_address=True, ignore_missing_slaves=True
        )
        serving = asyncio.create_task(server.serve_forever())
        await server.serving
        port = server.server.sockets[0].getsockname()[1]
    print(json.dumps({"ready": True, "port": port}), flush=True)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def block(cmd):
        _, blocks = units[cmd["unit"]]
        key = {"c": "co", "d": "di", "h": "hr", "i": "ir"}[TABLE_KEYS[cmd["table"]]]
        return blocks[key]

    while True:
        line = await reader.readline()
        if not line:
            break
        try:
            cmd = json.loads(line)
            answer = {"ok": True}
            if cmd["cmd"] == "set":
                block(cmd).values[cmd["address"] : cmd["address"] + len(cmd["values"])] = cmd["values"]
            elif cmd["cmd"] == "get":
                answer["values"] = [int(v) for v in block(cmd).values[cmd["address"] : cmd["address"] + cmd["count"]]]
            elif cmd["cmd"] == "remove_unit":
                del context[cmd["unit"]]
            elif cmd["cmd"] == "add_unit":
                context[cmd["unit"]] = units[cmd["unit"]][0]
            elif cmd["cmd"] == "fail":
                for b in units[cmd["unit"]][1].values():
                    b.failing = bool(cmd["on"])
            elif cmd["cmd"] == "drop":
                for handler in list(server.active_connections.values()):
                    handler.transport.close()
            else:
                answer = {"ok": False, "error": "unknown cmd " + str(cmd["cmd"])}
        except Exception as error:  # pylint: disable=broad-except
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)

    if serving is None:
        await server.shutdown()
    else:
        await server.server_close()
        serving.cancel()


if __name__ == "__main__":
    asyncio.run(main())
