/**
 * The logging the transport needs: structured fields first, then the message, as pino's
 * methods take them (the server's pino logger fits as is). Ids are logged as etcd logs them,
 * in hex (`"remote-peer-id":"8e9e05c52164694d"`).
 */
export interface TransportLogger {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

const ignore = (): void => {};

export const SILENT_LOGGER: TransportLogger = Object.freeze({
  debug: ignore,
  info: ignore,
  warn: ignore,
  error: ignore,
});
