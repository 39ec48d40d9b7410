// A device's private prekeys (PROTOCOL.md §4, §6.8), in memory. Key pairs are
// { id, privateKey: CryptoKey, publicKey: Uint8Array } (signed ones add createdAt and signature).
// It also remembers, per signed prekey, the ephemeral keys of the initiations it accepted, so that a
// replayed first message cannot start a second session; they are forgotten with the signed prekey.
import { toHex } from '../byte-coding.js';

export class InMemoryPreKeyStore {
  constructor({ signedPreKeys = [], oneTimePreKeys = [], acceptedInitiations = [] } = {}) {
    this.signedPreKeys = new Map(signedPreKeys.map((key) => [key.id, key]));
    this.oneTimePreKeys = new Map(oneTimePreKeys.map((key) => [key.id, key]));
    this.acceptedInitiations = new Map(acceptedInitiations.map(([id, keys]) => [id, new Set(keys)]));
  }

  addSignedPreKey(key) {
    this.signedPreKeys.set(key.id, key);
  }

  addOneTimePreKey(key) {
    this.oneTimePreKeys.set(key.id, key);
  }

  removeSignedPreKey(id) {
    this.signedPreKeys.delete(id);
    this.acceptedInitiations.delete(id);
  }

  signedPreKey(id) {
    return this.signedPreKeys.get(id) ?? null;
  }

  oneTimePreKey(id) {
    return this.oneTimePreKeys.get(id) ?? null;
  }

  removeOneTimePreKey(id) {
    this.oneTimePreKeys.delete(id);
  }

  hasAcceptedInitiation(ephemeralKey, signedPreKeyId) {
    return this.acceptedInitiations.get(signedPreKeyId)?.has(toHex(ephemeralKey)) ?? false;
  }

  recordAcceptedInitiation(ephemeralKey, signedPreKeyId) {
    if (!this.acceptedInitiations.has(signedPreKeyId)) this.acceptedInitiations.set(signedPreKeyId, new Set());
    this.acceptedInitiations.get(signedPreKeyId).add(toHex(ephemeralKey));
  }

  toStorable() {
    return {
      signedPreKeys: [...this.signedPreKeys.values()],
      oneTimePreKeys: [...this.oneTimePreKeys.values()],
      acceptedInitiations: [...this.acceptedInitiations].map(([id, keys]) => [id, [...keys]]),
    };
  }
}
