/** Editor palette order: the "UNS Edge" category first, then Node-RED's core categories in their usual order. */
export const PALETTE_CATEGORIES: readonly string[] = ['UNS Edge', 'subflows', 'common', 'function', 'network', 'sequence', 'parser', 'storage'];

export const PALETTE_CATEGORY_DESCRIPTIONS: Readonly<Record<string, string>> = {
  'UNS Edge': 'Plant sources and the Unified Namespace: Modbus, MQTT UNS, Sparkplug B, OPC UA',
};
