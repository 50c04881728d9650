/**
 * The inventory a scan produces (docs/asset-scan.md § "Inventory JSON"). Every string that came from
 * a device (identity objects, certificate subjects, build info, error texts quoting device bytes) is
 * data, never markup: the HTML report escapes it, the JSON carries it as a string.
 */
import type { DeviceIdentity } from '../modbus/device-id';

/** How a function code answered the probe. */
export type FunctionCodeAnswer = 'answers' | 'illegal-function' | 'exception' | 'no-answer' | 'garbage';

export interface FunctionCodeProbe {
  fc: number;
  answer: FunctionCodeAnswer;
  /** The exception code, for 'exception'. */
  exception?: number;
}

export interface ModbusUnit {
  unitId: number;
  identity?: Partial<DeviceIdentity>;
  /** Private objects 0x80–0xFF are not read; the regular stream's objects by id. */
  identityObjects?: Record<number, string>;
  /** Why there is no identity (FC 43/14 not supported, a malformed answer …). */
  identityProblem?: string;
  functionCodes: FunctionCodeProbe[];
}

export interface ModbusHost {
  host: string;
  port: number;
  reachable: boolean;
  /** The connection problem when not reachable, or what cut the scan of this host short. */
  problem?: string;
  units: ModbusUnit[];
  /** Unit ids that did not answer (silent) or that a gateway said are absent (0A/0B). */
  silentUnits: number[];
  absentUnits: number[];
}

export interface CertificateSummary {
  subject: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  selfSigned: boolean;
  thumbprint: string;
}

export interface OpcUaEndpoint {
  endpointUrl: string;
  securityMode: string;
  securityPolicy: string;
  userTokenTypes: string[];
  certificate?: CertificateSummary;
}

export interface OpcUaServer {
  url: string;
  host: string;
  port: number;
  reachable: boolean;
  problem?: string;
  /** FindServers (OPC 10000-4 §5.4.2): the application descriptions the server returns. */
  applications: Array<{ applicationUri: string; productUri: string; applicationName: string; applicationType: string; discoveryUrls: string[] }>;
  endpoints: OpcUaEndpoint[];
  /** Server_ServerStatus_BuildInfo when an anonymous session over None was possible, else the application description's product. */
  buildInfo?: { source: 'server-object' | 'application-description'; productName?: string; productUri?: string; manufacturerName?: string; softwareVersion?: string; buildNumber?: string; buildDate?: string };
  buildInfoProblem?: string;
}

export interface MqttListener {
  host: string;
  port: number;
  tls: boolean;
  /** Where the target came from: the list, or a uns-broker of the flows. */
  source: string;
  open: boolean;
  /** The broker answered CONNECT (MQTT 3.1.1 §3.2): it speaks MQTT. */
  mqtt: boolean;
  /** CONNACK return code to a CONNECT without user name or password: 0 = anonymous accepted. */
  anonymousReturnCode?: number;
  anonymousAccepted?: boolean;
  certificate?: CertificateSummary;
  tlsProtocol?: string;
  problem?: string;
}

export interface Inventory {
  modbus: ModbusHost[];
  opcua: OpcUaServer[];
  mqtt: MqttListener[];
}
