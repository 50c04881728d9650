/**
 * Drives through drive profiles (docs/drive-profiles.md): the profile format and loader, status
 * and fault decoding, command plans, the command guard, the audit trail and the commander that
 * ties them to a Modbus register access; telemetry, message requests, the profile catalog and the
 * controller the uns-vfd node adapts. No Node-RED here; nodes/drive adapts it.
 */
export * from './profile';
export * from './values';
export * from './status';
export * from './commands';
export * from './guard';
export * from './audit';
export * from './commander';
export * from './access';
export * from './telemetry';
export * from './requests';
export * from './catalog';
export * from './controller';
export * from './node-settings';
