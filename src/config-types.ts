// The typed configuration every module reads. src/config.ts builds it from the sources of
// SPEC section 8; everything else only consumes it.

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export type PoolOrder = 'fair' | 'fifo';

export interface Config {
  server: {
    port: number;
    address: string;
    /** null = any Origin is allowed. */
    allowedOrigins: string[] | null;
  };
  logging: {
    level: LogLevel;
    /** Folder that holds aggregator.log. */
    path: string;
    maxSizeBytes: number;
    maxHistory: number;
  };
  script: {
    suppliers: string;
    items: string;
    echo: string;
    suppliersInput: 'request' | 'params';
    runner: 'warm' | 'spawn';
  };
  cache: {
    /** 0 = off. */
    ttlMs: number;
    sizeBytes: number;
    redis: string | null;
  };
  timeout: {
    scriptMs: number;
    sessionMs: number;
    /** 0 = off. */
    queueMs: number;
    requestMs: number;
    killMs: number;
  };
  pool: {
    executor: number;
    order: PoolOrder;
  };
  fields: {
    request: string[];
    items: string;
    suppliers: string;
    info: string;
    faulty: string[];
  };
  limit: {
    sessions: number;
    tasks: number;
    requestSizeBytes: number;
    outputSizeBytes: number;
    sendBufferBytes: number;
  };
  metrics: {
    node: string;
    suppliers: number;
  };
  debug: boolean;
  demo: boolean;
}
