/**
 * A Modbus RTU bus for flows/legacy-rtu-4-20ma.json in the template tests: a socat pty pair with a
 * pymodbus RTU server on one end, seeded as the template expects it (unit 1 a running drive, unit 2
 * an analog input module with three loop currents in range); the template's link opens `port`
 * (UNS_EDGE_RTU_PORT). start() rejects with the reason when socat or pymodbus cannot be run here, so
 * a test can skip the RTU template visibly.
 */
import { PymodbusRtuServer, startPymodbusRtuServer } from './pymodbus';
import { PtyPair } from './socat';

export class RtuBus {
  private constructor(private readonly pty: PtyPair, readonly server: PymodbusRtuServer) {}

  /** The serial device the gateway opens. */
  get port(): string {
    return this.pty.a;
  }

  static async start(): Promise<RtuBus> {
    const pty = await PtyPair.start();
    try {
      const server = await startPymodbusRtuServer({ units: [1, 2], size: 20, path: pty.b });
      // Drive: 1480 rpm, 49.35 Hz, 12.5 A, no fault. Module: 12, 8 and 20 mA in µA.
      await server.command({ cmd: 'set', unit: 1, table: 'holding', address: 0, values: [1480, 4935, 125, 0] });
      await server.command({ cmd: 'set', unit: 2, table: 'input', address: 0, values: [12_000, 8_000, 20_000] });
      return new RtuBus(pty, server);
    } catch (error) {
      await pty.stop();
      throw error;
    }
  }

  async stop(): Promise<void> {
    await this.server.close();
    await this.pty.stop();
  }
}
