/** The drive twin: wear models, remaining useful life, maintenance alerts (docs/twin.md). */
export * from './bearing';
export * from './capacitor';
export * from './inputs';
export * from './insulation';
export * from './rul';
export * from './settings';
export * from './state-file';
export * from './twin';
export * from './vibration';
