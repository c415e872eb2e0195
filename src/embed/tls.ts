/**
 * TLS from etcd's flags (`--cert-file --key-file --trusted-ca-file --client-cert-auth
 * --client-crl-file`, their `--peer-` twins, `--tls-min-version --tls-max-version
 * --cipher-suites`), with the certificate files watched: like etcd, which reads them at each
 * handshake, a certificate replaced on disk is in use from the next connection on, with no
 * restart. A listener checks the files (a stat each) when a connection arrives and swaps its
 * secure context when they changed; the peer dialer reads them at each dial. Files that do not
 * load (a certificate written before its key) leave the previous ones in use until they do.
 */
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext, type TlsOptions } from 'node:tls';
import { ConfigError, type ServerConfig } from '../server/config.ts';
import { opensslCipherSuite } from '../server/config-values.ts';
import type { PeerTlsOptions } from '../transport/index.ts';

export type TlsSide = 'client' | 'peer';

interface FileNames {
  cert: string;
  key: string;
  /** '' when not given. */
  ca: string;
  crl: string;
}

interface FileContents {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | undefined;
  crl: Buffer | undefined;
}

/** The certificate files of one side, read again when one of them changes. */
export class CertificateFiles {
  readonly side: TlsSide;
  private readonly names: FileNames;
  private readonly onReloadError: (err: Error) => void;
  private stamp: string;
  private contents: FileContents;
  /** Bumped each time new contents are taken. */
  private version = 1;

  constructor(side: TlsSide, names: FileNames, onReloadError: (err: Error) => void = () => {}) {
    this.side = side;
    this.names = names;
    this.onReloadError = onReloadError;
    const flag = side === 'client' ? '' : 'peer-';
    this.stamp = this.currentStamp();
    this.contents = {
      cert: readFlag(names.cert, `${flag}cert-file`),
      key: readFlag(names.key, `${flag}key-file`),
      ca: names.ca === '' ? undefined : readFlag(names.ca, `${flag}trusted-ca-file`),
      crl: names.crl === '' ? undefined : readFlag(names.crl, side === 'client' ? 'client-crl-file' : 'peer-crl-file'),
    };
  }

  /** Size, times and inode of every file: a change in any means a rewrite. */
  private currentStamp(): string {
    let out = '';
    for (const name of [this.names.cert, this.names.key, this.names.ca, this.names.crl]) {
      if (name === '') continue;
      try {
        const st = statSync(name);
        out += `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs};`;
      } catch {
        out += 'missing;';
      }
    }
    return out;
  }

  /** The files as they are now, re-read (and checked to form a valid context) when they changed. */
  current(): { version: number; contents: FileContents } {
    const stamp = this.currentStamp();
    if (stamp !== this.stamp) {
      try {
        const next: FileContents = {
          cert: readFileSync(this.names.cert),
          key: readFileSync(this.names.key),
          ca: this.names.ca === '' ? undefined : readFileSync(this.names.ca),
          crl: this.names.crl === '' ? undefined : readFileSync(this.names.crl),
        };
        // A pair that does not load (certificate and key from different rotations) is not taken.
        createSecureContext({ cert: next.cert, key: next.key, ca: next.ca, crl: next.crl });
        this.contents = next;
        this.stamp = stamp;
        this.version += 1;
      } catch (err) {
        this.onReloadError(err as Error);
      }
    }
    return { version: this.version, contents: this.contents };
  }
}

function readFlag(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`cannot read --${flag} ${path}: ${(err as Error).message}`, flag, { cause: err });
  }
}

/** A listener's TLS: the options it starts with, and the current ones when the files change. */
export interface ServerTls {
  readonly options: TlsOptions;
  /** The options as of now, and a version that changes when they do. */
  current(): { version: number; options: TlsOptions };
}

/** The certificate files of `side`, or null when no certificate is configured. */
export function certificateFiles(
  config: ServerConfig,
  side: TlsSide,
  onReloadError?: (err: Error) => void,
): CertificateFiles | null {
  const c =
    side === 'client'
      ? { cert: config.certFile, key: config.keyFile, ca: config.trustedCaFile, crl: config.clientCrlFile }
      : { cert: config.peerCertFile, key: config.peerKeyFile, ca: config.peerTrustedCaFile, crl: config.peerCrlFile };
  if (c.cert === '' || c.key === '') return null;
  return new CertificateFiles(side, c, onReloadError);
}

function versionOptions(config: ServerConfig): Pick<TlsOptions, 'minVersion' | 'maxVersion' | 'ciphers'> {
  const out: Pick<TlsOptions, 'minVersion' | 'maxVersion' | 'ciphers'> = {
    minVersion: config.tlsMinVersion === 'TLS1.3' ? 'TLSv1.3' : 'TLSv1.2',
  };
  if (config.tlsMaxVersion !== '') out.maxVersion = config.tlsMaxVersion === 'TLS1.3' ? 'TLSv1.3' : 'TLSv1.2';
  if (config.cipherSuites.length > 0) out.ciphers = config.cipherSuites.map(opensslCipherSuite).join(':');
  return out;
}

/** A listener's TLS from `files`: client certificates required and verified with --(peer-)client-cert-auth. */
export function serverTls(config: ServerConfig, files: CertificateFiles): ServerTls {
  const certAuth = files.side === 'client' ? config.clientCertAuth : config.peerClientCertAuth;
  const make = (contents: FileContents): TlsOptions => {
    const options: TlsOptions = {
      cert: contents.cert,
      key: contents.key,
      ...versionOptions(config),
      requestCert: certAuth,
      rejectUnauthorized: certAuth,
    };
    if (contents.ca !== undefined) options.ca = contents.ca;
    if (contents.crl !== undefined) options.crl = contents.crl;
    return options;
  };
  let made = files.current();
  let options = make(made.contents);
  return {
    options,
    current() {
      const now = files.current();
      if (now.version !== made.version) {
        made = now;
        options = make(now.contents);
      }
      return { version: made.version, options };
    },
  };
}

/**
 * What the peer transport dials `https://` peers with: the peer certificate as the client
 * certificate, the peer CA to verify them. Read at each dial, so a rotated certificate is
 * presented from the next connection on.
 */
export function peerDialTls(config: ServerConfig, files: CertificateFiles): PeerTlsOptions {
  const fixed = versionOptions(config);
  return {
    get cert() {
      return files.current().contents.cert;
    },
    get key() {
      return files.current().contents.key;
    },
    get ca() {
      return files.current().contents.ca;
    },
    get crl() {
      return files.current().contents.crl;
    },
    ...fixed,
    rejectUnauthorized: true,
  };
}
