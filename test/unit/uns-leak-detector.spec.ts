import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { LeakDetector } from '../helpers/leaks';

/** The detector itself must be able to fail: resources created from this file count as "code under test". */
describe('leak detector (test/helpers/leaks.ts)', () => {
  const thisFile = /uns-leak-detector\.spec\./;

  it('reports a pending timeout and interval, and forgets them once cleared', async () => {
    const detector = new LeakDetector(thisFile);
    detector.start();
    const timeout = setTimeout(() => undefined, 60000);
    const interval = setInterval(() => undefined, 60000);
    const leaks = await detector.stop(20);
    assert.deepEqual(leaks.map((leak) => leak.type).sort(), ['Timeout', 'Timeout']);
    assert.match(leaks[0].stack, /uns-leak-detector\.spec\./);
    clearTimeout(timeout);
    clearInterval(interval);

    detector.start();
    const again = setTimeout(() => undefined, 60000);
    clearTimeout(again);
    await detector.assertNoLeaks(20);
  });

  it('reports an open socket, and not a closed one', async () => {
    const server: Server = createServer((s) => s.on('error', () => undefined));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as { port: number }).port;
    const detector = new LeakDetector(thisFile);
    detector.start();
    const socket: Socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    await assert.rejects(detector.assertNoLeaks(20), /1 timer\(s\)\/socket\(s\) left behind[\s\S]*TCPWRAP/);
    detector.start();
    const closed = connect(port, '127.0.0.1');
    await new Promise((resolve) => closed.once('connect', resolve));
    closed.destroy();
    await detector.assertNoLeaks(200);
    socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('ignores resources created by code that is not under test', async () => {
    const detector = new LeakDetector(/no-such-file-here/);
    detector.start();
    const timeout = setTimeout(() => undefined, 60000);
    await detector.assertNoLeaks(20);
    clearTimeout(timeout);
  });
});
