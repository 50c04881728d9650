/**
 * RegisterAccess (commander.ts) over a shared ModbusClient, for one unit id: reads with FC3 Read
 * Holding Registers / FC4 Read Input Registers (Modbus Application Protocol v1.1b3 §6.3, §6.4),
 * one register written with FC6 Write Single Register (§6.6), several with FC16 Write Multiple
 * Registers (§6.12). Requests go through the client's queue, timeouts and per-unit breaker like
 * every other request on the link.
 */
import { ModbusClient } from '../modbus/client';
import { MAX_WRITE_REGISTERS, valuesOf } from '../modbus/pdu';
import { RegisterAccess } from './commander';

export function modbusRegisterAccess(client: Pick<ModbusClient, 'request'>, unitId: number): RegisterAccess {
  return {
    async read(table, address, count) {
      const response = await client.request(unitId, { fc: table === 'holding' ? 3 : 4, address, quantity: count });
      if (!('data' in response)) throw new Error(`unit ${unitId}: unexpected response to a read of ${table} ${address}`);
      return valuesOf(response);
    },
    async write(address, words) {
      if (words.length === 0 || words.length > MAX_WRITE_REGISTERS) throw new RangeError(`a write carries 1..${MAX_WRITE_REGISTERS} registers, got ${words.length}`);
      await client.request(unitId, words.length === 1 ? { fc: 6, address, value: words[0] } : { fc: 16, address, values: words });
    },
  };
}
