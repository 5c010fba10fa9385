/**
 * A real FortiGate speaks HTTPS, so the bench's emulators do too: one throw-away private CA and a server
 * certificate for 127.0.0.1 per bench run (made with the openssl CLI by test/support/pki.ts, the tests' one
 * home for it), trusted by the product's FortiOS client through the target's caFile (FORTIGATE_CA_FILE)
 * and by the seed's client the same way. Removed at the end of the run.
 */
import { readFileSync } from 'node:fs';
import { makePki, type Pki } from '../../test/support/pki';

let pki: Pki | undefined;

export interface BenchTls {
  /** PEM file of the CA (FORTIGATE_CA_FILE). */
  caFile: string;
  /** The emulator's certificate and key (EmulatorOptions.tls). */
  cert: string;
  key: string;
}

export function benchTls(): BenchTls {
  pki ??= makePki();
  return { caFile: pki.caCert, cert: readFileSync(pki.serverCert, 'utf8'), key: readFileSync(pki.serverKey, 'utf8') };
}

export function removeBenchTls(): void {
  pki?.remove();
  pki = undefined;
}
