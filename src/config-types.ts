// The typed configuration every module reads. Its shape is inferred from the key table in
// src/config.ts (each key declared once there); this module keeps the old import path.
export type { Config, LogLevel, PoolOrder, ScriptRunner, SuppliersInput } from './config.js';
