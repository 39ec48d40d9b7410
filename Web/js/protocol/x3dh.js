// X3DH (PROTOCOL.md §5): Signal's key agreement with curve X25519, hash SHA-256 and info
// "SecureChat X3DH v1". The initiator's identity, ephemeral key and the prekey ids it used travel
// in every prekey message (§6.7) as an X3DHInitiation.
import { concat, toHex } from './byte-coding.js';
import { KDFLabels } from './kdf-labels.js';
import { hkdf } from './hmac-sha256.js';
import { dh } from './key-source.js';
import { wipe } from './secret-bytes.js';

export class X3DHInitiation {
  constructor({ initiatorIdentityKey, ephemeralKey, signedPreKeyId, oneTimePreKeyId = null }) {
    this.initiatorIdentityKey = initiatorIdentityKey;
    this.ephemeralKey = ephemeralKey;
    this.signedPreKeyId = signedPreKeyId;
    this.oneTimePreKeyId = oneTimePreKeyId;
  }

  /** Identity key, ephemeral key and both ids equal: the same initiation repeated (§6.8). */
  equals(other) {
    return other instanceof X3DHInitiation && this.key === other.key;
  }

  get key() {
    return `${toHex(this.initiatorIdentityKey.bytes)}:${toHex(this.ephemeralKey)}:${this.signedPreKeyId}:${this.oneTimePreKeyId ?? '-'}`;
  }
}

async function finish(outputs, initiatorIdentity, responderIdentity) {
  const ikm = concat(KDFLabels.x3dhPrefix, ...outputs);
  const sharedSecret = await hkdf(ikm, { info: KDFLabels.x3dh, length: 32 });
  wipe(ikm);
  return { sharedSecret, associatedData: concat(initiatorIdentity.bytes, responderIdentity.bytes), outputs };
}

export const X3DH = Object.freeze({
  /**
   * The initiator's side against a verified bundle. `ephemeral` is an X25519 key pair.
   * Returns { agreement: {sharedSecret, associatedData, outputs}, initiation }.
   */
  async initiate(identity, bundle, ephemeral) {
    const outputs = [
      await dh(identity.agreementKey, bundle.signedPreKey.publicKey),
      await dh(ephemeral.privateKey, bundle.identityKey.x25519),
      await dh(ephemeral.privateKey, bundle.signedPreKey.publicKey),
    ];
    if (bundle.oneTimePreKey !== null) outputs.push(await dh(ephemeral.privateKey, bundle.oneTimePreKey.publicKey));
    const agreement = await finish(outputs, identity.publicKey, bundle.identityKey);
    const initiation = new X3DHInitiation({
      initiatorIdentityKey: identity.publicKey,
      ephemeralKey: ephemeral.publicKey,
      signedPreKeyId: bundle.signedPreKey.id,
      oneTimePreKeyId: bundle.oneTimePreKey?.id ?? null,
    });
    return { agreement, initiation };
  },

  /** The responder's side: the same outputs with the private keys swapped. */
  async respond(identity, signedPreKey, oneTimePreKey, initiation) {
    const initiator = initiation.initiatorIdentityKey;
    const outputs = [
      await dh(signedPreKey.privateKey, initiator.x25519),
      await dh(identity.agreementKey, initiation.ephemeralKey),
      await dh(signedPreKey.privateKey, initiation.ephemeralKey),
    ];
    if (oneTimePreKey) outputs.push(await dh(oneTimePreKey.privateKey, initiation.ephemeralKey));
    return finish(outputs, initiator, identity.publicKey);
  },
});
