// A throw-away TLS certificate for github.com, made at test time with openssl
// (no key or certificate is kept in the repository), and the Chromium flag that
// trusts exactly that certificate and nothing else.
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cleanup, scratch } from './lib.mjs';

/**
 * A self-signed certificate for `hosts` (an EC P-256 key, valid for a day).
 * Returns the PEM key and certificate for node's https server and `spki`, the
 * base64 SHA-256 of its public key, for `--ignore-certificate-errors-spki-list`.
 */
export function makeCertificate(hosts = ['github.com']) {
  const dir = scratch('cert');
  try {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${hosts[0]}`,
      '-addext', `subjectAltName=${hosts.map((h) => `DNS:${h}`).join(',')}`], { stdio: 'pipe' });
    const pem = { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
    const der = new X509Certificate(pem.cert).publicKey.export({ type: 'spki', format: 'der' });
    return { ...pem, spki: createHash('sha256').update(der).digest('base64') };
  } finally {
    cleanup(dir);
  }
}
