/**
 * MQTT.js writes packets with mqtt-packet, which by default builds, on the first packet written, one
 * 2-byte Buffer for each of the 65,536 16-bit numbers (topic lengths, packet ids) and writes those
 * instead of allocating: 65,536 Buffer objects, 6.6 MB of heap and 8.5 MB of RSS in an idle gateway
 * (docs/benchmarks.md § "Gateway footprint"). Without it a PUBLISH allocates one or two 2-byte
 * Buffers (docs/gateway.md § "What a headless gateway does not load" gives the measured cost). The
 * switch is process-wide in mqtt-packet: MQTT.js's `writeCache: false` client option flips the same one.
 */
import { dirname } from 'node:path';

interface MqttPacketModule { writeToStream: { cacheNumbers: boolean } }

/** The mqtt-packet that the installed MQTT.js uses. */
function mqttPacket(): MqttPacketModule {
  const mqttDir = dirname(require.resolve('mqtt/package.json'));
  return require(require.resolve('mqtt-packet', { paths: [mqttDir] })) as MqttPacketModule;
}

/** Whether MQTT.js writes 16-bit numbers from the pre-built cache. */
export function mqttNumberCacheOn(): boolean {
  return mqttPacket().writeToStream.cacheNumbers;
}

/** Stop MQTT.js from building (or using) the number cache in this process. */
export function disableMqttNumberCache(): void {
  mqttPacket().writeToStream.cacheNumbers = false;
}
