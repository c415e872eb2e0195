/**
 * Certificates for the TLS tests, made with openssl in a directory the caller removes: a CA,
 * certificates it signs (P-256 keys, for 127.0.0.1 and localhost, usable as server and client
 * certificates), and a second CA that nobody trusts.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
}

export class TestCa {
  readonly dir: string;
  readonly name: string;
  readonly cert: string;
  private readonly key: string;
  private serial = 1;

  constructor(dir: string, name: string) {
    this.dir = dir;
    this.name = name;
    this.cert = join(dir, `${name}.crt`);
    this.key = join(dir, `${name}.key`);
    openssl(dir, [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      this.key,
      '-out',
      this.cert,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
    ]);
  }

  /** A certificate with common name `cn`, written to `<file>.crt` and `<file>.key`. */
  issue(file: string, cn: string): CertFiles {
    const cert = join(this.dir, `${file}.crt`);
    const key = join(this.dir, `${file}.key`);
    const csr = join(this.dir, `${file}.csr`);
    const ext = join(this.dir, `${file}.ext`);
    writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
    openssl(this.dir, [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      csr,
      '-subj',
      `/CN=${cn}`,
    ]);
    this.serial += 1;
    openssl(this.dir, [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      this.cert,
      '-CAkey',
      this.key,
      '-set_serial',
      String(this.serial * 1000 + Math.floor(Math.random() * 1000)),
      '-out',
      cert,
      '-days',
      '2',
      '-extfile',
      ext,
    ]);
    return { cert, key };
  }
}

function openssl(cwd: string, args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe', timeout: 10_000 });
}
