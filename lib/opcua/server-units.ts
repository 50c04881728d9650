/**
 * Engineering units of uns-opcua-server: EUInformation (OPC 10000-8 §5.6.3) from the unit text of
 * a tag batch. displayName is the text exactly as the batch gave it (what clients show and tests
 * read back); unitId is the UNECE Recommendation 20 common code where the text is a unit we know,
 * else −1 ("no unitId available", §5.6.3).
 */
import type { EUInformation } from 'node-opcua';
import { opcua } from './load';

/** Unit texts used in uns-edge's profiles and templates → UNECE Rec. 20 common code and full name. */
const UNECE: Readonly<Record<string, { code: string; name: string }>> = {
  rpm: { code: 'RPM', name: 'revolutions per minute' },
  'r/min': { code: 'RPM', name: 'revolutions per minute' },
  Hz: { code: 'HTZ', name: 'hertz' },
  A: { code: 'AMP', name: 'ampere' },
  mA: { code: '4K', name: 'milliampere' },
  V: { code: 'VLT', name: 'volt' },
  W: { code: 'WTT', name: 'watt' },
  kW: { code: 'KWT', name: 'kilowatt' },
  kWh: { code: 'KWH', name: 'kilowatt hour' },
  Wh: { code: 'WHR', name: 'watt hour' },
  degC: { code: 'CEL', name: 'degree Celsius' },
  '°C': { code: 'CEL', name: 'degree Celsius' },
  'mm/s': { code: 'C16', name: 'millimetre per second' },
  'm/s': { code: 'MTS', name: 'metre per second' },
  h: { code: 'HUR', name: 'hour' },
  s: { code: 'SEC', name: 'second' },
  ms: { code: 'C26', name: 'millisecond' },
  '%': { code: 'P1', name: 'percent' },
  bar: { code: 'BAR', name: 'bar' },
  Pa: { code: 'PAL', name: 'pascal' },
  kPa: { code: 'KPA', name: 'kilopascal' },
  Nm: { code: 'NU', name: 'newton metre' },
  m: { code: 'MTR', name: 'metre' },
  mm: { code: 'MMT', name: 'millimetre' },
  kg: { code: 'KGM', name: 'kilogram' },
  'l/min': { code: 'L2', name: 'litre per minute' },
  'm3/h': { code: 'MQH', name: 'cubic metre per hour' },
};

/** node-opcua's makeEUInformation packs the UNECE code into unitId (Part 8 §5.6.3); −1 without one. */
export function euInformationOf(unit: string): EUInformation {
  const known = Object.hasOwn(UNECE, unit) ? UNECE[unit] : undefined;
  const eu = opcua().makeEUInformation(known?.code ?? '', unit, known?.name ?? unit);
  if (!known) eu.unitId = -1;
  return eu;
}
