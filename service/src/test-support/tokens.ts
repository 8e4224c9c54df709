import { createPrivateKey, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Client } from './cluster.js';

/**
 * An access token as the API would sign it, with claims a test chooses (a short expiry, a session
 * id), signed with the stack's key (`JWT_PRIVATE_KEY`) unless another is given.
 */
export async function forgeAccessToken(
  api: Client,
  env: Record<string, string>,
  claims: { sub: string; sid: string; exp: number },
  key: KeyObject = createPrivateKey(env.JWT_PRIVATE_KEY!),
): Promise<string> {
  const jwks = (await api('GET', '/.well-known/jwks.json')).body as { keys: { kid: string }[] };
  return new SignJWT({ sid: claims.sid })
    .setProtectedHeader({ alg: 'EdDSA', kid: jwks.keys[0]!.kid, typ: 'at+jwt' })
    .setSubject(claims.sub)
    .setIssuer('parley')
    .setAudience('parley-api')
    .setIssuedAt()
    .setExpirationTime(claims.exp)
    .sign(key);
}
