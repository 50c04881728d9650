/**
 * FC 43 / MEI 14 Read Device Identification (Modbus Application Protocol v1.1b3 §6.21): both sides.
 *
 *   request:  0x2B | 0x0E | Read Device ID code (1 basic, 2 regular, 3 extended stream, 4 one object) | Object Id
 *   response: 0x2B | 0x0E | code | conformity level | more follows (0x00/0xFF) | next object id
 *             | number of objects | { object id | length | value } …
 *
 * Objects (§6.21 table): 0x00 VendorName, 0x01 ProductCode, 0x02 MajorMinorRevision (basic, mandatory);
 * 0x03 VendorUrl, 0x04 ProductName, 0x05 ModelName, 0x06 UserApplicationName (regular, optional);
 * 0x80–0xFF private (extended). A stream that does not fit one PDU sets "more follows" and names the
 * next object; the client asks again from there. A stream request whose object id is unknown is
 * answered from the first object of the stream (§6.21: "restart at the beginning"); an unknown
 * object in individual access is exception 02, a bad code exception 03.
 *
 * The client side reads what a device sends as hostile input: every length is checked, the
 * continuation is bounded (MAX_ROUNDS requests, the next object id must move forward), and the
 * values are ASCII (§6.21) read as latin1 with control characters escaped, so a device string can
 * neither throw nor forge a log line. No Node-RED, no transport: the caller supplies the exchange.
 */
import { ModbusException, ModbusExceptionCode } from './data-model';
import { EXCEPTION_FLAG, MAX_PDU_LENGTH } from './pdu';

/** Function code 43 (0x2B) Encapsulated Interface Transport, MEI type 14 (0x0E). */
export const ENCAPSULATED_INTERFACE = 0x2b;
export const MEI_READ_DEVICE_ID = 0x0e;

export type ReadDeviceIdCode = 1 | 2 | 3 | 4;

/** Object ids of §6.21. */
export const DEVICE_ID_OBJECTS = {
  vendorName: 0x00,
  productCode: 0x01,
  revision: 0x02,
  vendorUrl: 0x03,
  productName: 0x04,
  modelName: 0x05,
  userApplicationName: 0x06,
} as const;

export type DeviceIdField = keyof typeof DEVICE_ID_OBJECTS;

/** What a device says about itself: the basic objects are mandatory, the regular ones optional. */
export interface DeviceIdentity {
  vendorName: string;
  productCode: string;
  revision: string;
  vendorUrl?: string;
  productName?: string;
  modelName?: string;
  userApplicationName?: string;
}

/** A Modbus data model that also identifies its units (lib/modbus/server.ts answers FC 43/14 for it). */
export interface DeviceIdentitySource {
  /** The identity of `unitId`; throws ModbusException (e.g. 0A for a unit behind a gateway that is absent). */
  deviceIdentity(unitId: number): DeviceIdentity;
}

export function isDeviceIdentitySource(model: object): model is DeviceIdentitySource {
  return typeof (model as Partial<DeviceIdentitySource>).deviceIdentity === 'function';
}

const HEADER_LENGTH = 7; // fc, mei, code, conformity, more follows, next id, count
const MORE_FOLLOWS = 0xff;
/** Requests a client makes for one stream before it stops (a device that loops "more follows"). */
export const MAX_ROUNDS = 8;
const FIELD_BY_ID = new Map<number, DeviceIdField>(Object.entries(DEVICE_ID_OBJECTS).map(([name, id]) => [id, name as DeviceIdField]));

// ------------------------------------------------------------------------------------ server side

/** The object ids of an identity with their values, in id order. */
function objectsOf(identity: DeviceIdentity): Array<[number, Buffer]> {
  return (Object.entries(DEVICE_ID_OBJECTS) as Array<[DeviceIdField, number]>)
    .filter(([name]) => typeof identity[name] === 'string')
    .map(([name, id]) => [id, Buffer.from((identity[name] as string).slice(0, 200), 'latin1')]);
}

/**
 * The response PDU to an FC 43/14 request `pdu` for a unit with this identity. Throws
 * ModbusException 03 for a malformed request or code, 02 for an unknown object in individual access.
 */
export function encodeReadDeviceIdResponse(pdu: Buffer, identity: DeviceIdentity): Buffer {
  if (pdu.length !== 4 || pdu[0] !== ENCAPSULATED_INTERFACE || pdu[1] !== MEI_READ_DEVICE_ID) {
    throw new ModbusException(ModbusExceptionCode.IllegalDataValue, 'Read Device Identification request must be 4 bytes: 2B 0E code object');
  }
  const code = pdu[2];
  const objectId = pdu[3];
  if (code < 1 || code > 4) throw new ModbusException(ModbusExceptionCode.IllegalDataValue, `Read Device ID code ${code}, expected 1..4`);
  const objects = objectsOf(identity);
  const conformity = objects.some(([id]) => id > DEVICE_ID_OBJECTS.revision) ? 0x82 : 0x81;
  let selected: Array<[number, Buffer]>;
  if (code === 4) {
    selected = objects.filter(([id]) => id === objectId);
    if (selected.length === 0) throw new ModbusException(ModbusExceptionCode.IllegalDataAddress, `no object ${objectId}`);
  } else {
    const stream = objects.filter(([id]) => (code === 1 ? id <= 0x02 : code === 2 ? id <= 0x06 : id >= 0x80));
    const start = stream.findIndex(([id]) => id === objectId);
    selected = stream.slice(start < 0 ? 0 : start);
  }
  const fitting: Array<[number, Buffer]> = [];
  let length = HEADER_LENGTH;
  for (const object of selected) {
    if (length + 2 + object[1].length > MAX_PDU_LENGTH) break;
    fitting.push(object);
    length += 2 + object[1].length;
  }
  const next = selected[fitting.length];
  const out = Buffer.alloc(length);
  out.set([ENCAPSULATED_INTERFACE, MEI_READ_DEVICE_ID, code, conformity, next ? MORE_FOLLOWS : 0, next ? next[0] : 0, fitting.length]);
  let offset = HEADER_LENGTH;
  for (const [id, value] of fitting) {
    out[offset] = id;
    out[offset + 1] = value.length;
    value.copy(out, offset + 2);
    offset += 2 + value.length;
  }
  return out;
}

/**
 * The response PDU when `pdu` is an FC 43/14 request and `model` identifies its units; undefined
 * otherwise (the server then answers as before: 01 illegal function).
 */
export function answerReadDeviceId(model: object, unitId: number, pdu: Buffer): Buffer | undefined {
  if (pdu[0] !== ENCAPSULATED_INTERFACE || pdu[1] !== MEI_READ_DEVICE_ID || !isDeviceIdentitySource(model)) return undefined;
  return encodeReadDeviceIdResponse(pdu, model.deviceIdentity(unitId));
}

// ------------------------------------------------------------------------------------ client side

/** The answer does not follow §6.21: the device answered, but not sensibly. */
export class DeviceIdFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceIdFormatError';
    Object.setPrototypeOf(this, DeviceIdFormatError.prototype);
  }
}

export function encodeReadDeviceIdRequest(code: ReadDeviceIdCode, objectId: number): Buffer {
  return Buffer.from([ENCAPSULATED_INTERFACE, MEI_READ_DEVICE_ID, code, objectId & 0xff]);
}

export interface DeviceIdPage {
  conformityLevel: number;
  moreFollows: boolean;
  nextObjectId: number;
  objects: Array<{ id: number; value: string }>;
}

/** Device text made safe to keep: latin1, control characters (newlines, ANSI escapes) as \xNN. */
export function printable(bytes: Buffer): string {
  return bytes.toString('latin1').replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Decode one response PDU; throws ModbusException for an exception response, DeviceIdFormatError for anything malformed. */
export function decodeReadDeviceIdResponse(pdu: Buffer): DeviceIdPage {
  if (pdu.length === 2 && pdu[0] === (ENCAPSULATED_INTERFACE | EXCEPTION_FLAG)) throw new ModbusException(pdu[1]);
  if (pdu.length < HEADER_LENGTH) throw new DeviceIdFormatError(`answer of ${pdu.length} bytes, at least ${HEADER_LENGTH} expected`);
  if (pdu[0] !== ENCAPSULATED_INTERFACE || pdu[1] !== MEI_READ_DEVICE_ID) {
    throw new DeviceIdFormatError(`answer starts ${pdu.subarray(0, 2).toString('hex')}, expected 2b0e`);
  }
  const count = pdu[6];
  const objects: DeviceIdPage['objects'] = [];
  let offset = HEADER_LENGTH;
  for (let i = 0; i < count; i++) {
    if (offset + 2 > pdu.length) throw new DeviceIdFormatError(`object ${i + 1} of ${count} is missing`);
    const length = pdu[offset + 1];
    if (offset + 2 + length > pdu.length) throw new DeviceIdFormatError(`object ${pdu[offset]} claims ${length} bytes, ${pdu.length - offset - 2} left`);
    objects.push({ id: pdu[offset], value: printable(pdu.subarray(offset + 2, offset + 2 + length)) });
    offset += 2 + length;
  }
  if (offset !== pdu.length) throw new DeviceIdFormatError(`${pdu.length - offset} bytes after the last object`);
  return { conformityLevel: pdu[3], moreFollows: pdu[4] === MORE_FOLLOWS, nextObjectId: pdu[5], objects };
}

/** Sends one request PDU to a unit and resolves with its response PDU (the caller's transport). */
export type PduExchange = (unitId: number, pdu: Buffer) => Promise<Buffer>;

export interface DeviceIdentification {
  identity: Partial<DeviceIdentity>;
  /** Every object read, by id (private 0x80–0xFF ones too, when the extended stream was asked). */
  objects: Record<number, string>;
  conformityLevel: number;
  /** Requests it took. */
  rounds: number;
}

/**
 * Read a unit's identification stream (`code` 2 regular by default, which includes the basic
 * objects), following "more follows" for at most MAX_ROUNDS requests.
 */
export async function readDeviceIdentification(exchange: PduExchange, unitId: number, code: 1 | 2 | 3 = 2): Promise<DeviceIdentification> {
  const objects: Record<number, string> = {};
  let objectId = code === 3 ? 0x80 : 0;
  let conformityLevel = 0;
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    const page = decodeReadDeviceIdResponse(await exchange(unitId, encodeReadDeviceIdRequest(code, objectId)));
    conformityLevel = page.conformityLevel;
    for (const { id, value } of page.objects) objects[id] ??= value;
    if (!page.moreFollows) return { identity: identityOf(objects), objects, conformityLevel, rounds: round };
    if (page.nextObjectId <= objectId) throw new DeviceIdFormatError(`"more follows" names object ${page.nextObjectId}, not after ${objectId}`);
    objectId = page.nextObjectId;
  }
  throw new DeviceIdFormatError(`still "more follows" after ${MAX_ROUNDS} requests`);
}

function identityOf(objects: Record<number, string>): Partial<DeviceIdentity> {
  const identity: Partial<DeviceIdentity> = {};
  for (const [id, value] of Object.entries(objects)) {
    const field = FIELD_BY_ID.get(Number(id));
    if (field) identity[field] = value;
  }
  return identity;
}
