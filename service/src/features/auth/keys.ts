import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public half as published at /.well-known/jwks.json. */
  jwk: JWK;
}

/**
 * The Ed25519 signing key from config. Its kid is the RFC 7638 thumbprint of the public key, so a
 * rotated key gets a new kid by itself, and verifiers pick the right key from the JWKS.
 */
export async function loadSigningKey(pem: string): Promise<SigningKey> {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new Error(`JWT_PRIVATE_KEY must be an Ed25519 key, not ${privateKey.asymmetricKeyType}`);
  }
  const publicKey = createPublicKey(privateKey);
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, privateKey, publicKey, jwk: { ...jwk, kid, alg: 'EdDSA', use: 'sig' } };
}
