/**
 * Generated secrets (the webhook secret, API tokens, the production database password): 32 characters of the
 * URL-safe base64 alphabet that never start with "-", so that a secret pasted after an option
 * (`--secret <value>` in the forwarder's or Flowmon's custom-script parameters) is never taken for an option
 * itself — one first start in 64 produced such a secret before.
 */
import { randomBytes } from 'node:crypto';

export function newSecret(): string {
  for (;;) {
    const value = randomBytes(24).toString('base64url');
    if (!value.startsWith('-')) return value;
  }
}
