// A pairwise session with one remote device (PROTOCOL.md §6.7, §6.8): the ratchet, both
// identities and — on the initiator until the responder first answers — the X3DH initiation that
// every message repeats. Every operation either succeeds or leaves the session and the prekey store
// as they were.
import { ProtocolError, ErrorCode } from '../errors.js';
import { IdentityKey } from '../identity-key.js';
import { generateX25519KeyPair, systemKeySource } from '../key-source.js';
import { RatchetState } from '../ratchet/ratchet-state.js';
import { X3DH, X3DHInitiation } from '../x3dh.js';
import { PreKeyMessage, RatchetMessage } from './session-messages.js';

export class Session {
  constructor({ ratchet, localIdentity, remoteIdentity, pendingInitiation = null, acceptedInitiation = null }) {
    this.ratchet = ratchet;
    this.localIdentity = localIdentity;
    this.remoteIdentity = remoteIdentity;
    this.pendingInitiation = pendingInitiation;
    this.acceptedInitiation = acceptedInitiation;
  }

  /** The initiator's side, from a verified bundle. */
  static async initiate(identity, bundle, { ephemeralKey = null, keySource = systemKeySource } = {}) {
    const ephemeral = ephemeralKey ?? (await generateX25519KeyPair());
    const { agreement, initiation } = await X3DH.initiate(identity, bundle, ephemeral);
    const ratchet = await RatchetState.initiator({
      sharedSecret: agreement.sharedSecret, associatedData: agreement.associatedData,
      responderRatchetKey: bundle.signedPreKey.publicKey, keySource,
    });
    const session = new Session({ ratchet, localIdentity: identity.publicKey, remoteIdentity: bundle.identityKey, pendingInitiation: initiation });
    return { session, agreement };
  }

  /**
   * The responder's side of a prekey message: X3DH, decrypt, and only then consume the one-time
   * prekey and record the initiation. Returns { session, plaintext }.
   */
  static async accept(message, identity, store, { keySource = systemKeySource } = {}) {
    const initiation = message.initiation;
    if (store.hasAcceptedInitiation(initiation.ephemeralKey, initiation.signedPreKeyId)) {
      throw new ProtocolError(ErrorCode.initiationReplayed, 'this initiation was already accepted');
    }
    const signedPreKey = store.signedPreKey(initiation.signedPreKeyId);
    if (signedPreKey === null) throw new ProtocolError(ErrorCode.unknownKey, `unknown signed prekey ${initiation.signedPreKeyId}`);
    let oneTimePreKey = null;
    if (initiation.oneTimePreKeyId !== null) {
      oneTimePreKey = store.oneTimePreKey(initiation.oneTimePreKeyId);
      if (oneTimePreKey === null) throw new ProtocolError(ErrorCode.unknownKey, `unknown or consumed one-time prekey ${initiation.oneTimePreKeyId}`);
    }
    const agreement = await X3DH.respond(identity, signedPreKey, oneTimePreKey, initiation);
    const ratchet = RatchetState.responder({
      sharedSecret: agreement.sharedSecret, associatedData: agreement.associatedData,
      ratchetKeyPair: { privateKey: signedPreKey.privateKey, publicKey: signedPreKey.publicKey }, keySource,
    });
    const plaintext = await ratchet.decrypt(message.message.header, message.message.ciphertext);
    if (initiation.oneTimePreKeyId !== null) store.removeOneTimePreKey(initiation.oneTimePreKeyId);
    store.recordAcceptedInitiation(initiation.ephemeralKey, initiation.signedPreKeyId);
    const session = new Session({ ratchet, localIdentity: identity.publicKey, remoteIdentity: initiation.initiatorIdentityKey, acceptedInitiation: initiation });
    return { session, plaintext, agreement };
  }

  /** A prekey message while the responder has not answered, a ratchet message after; encoded. */
  async encrypt(plaintext) {
    const { header, ciphertext } = await this.ratchet.encrypt(plaintext);
    const message = new RatchetMessage({ header, ciphertext });
    if (this.pendingInitiation !== null) return new PreKeyMessage({ initiation: this.pendingInitiation, message }).encode();
    return message.encode();
  }

  /**
   * Decrypts `{kind, message}` from decodeSessionMessage. A prekey message is taken only if it
   * repeats the initiation that created this session.
   */
  async decrypt({ kind, message }) {
    let ratchetMessage = message;
    if (kind === 'preKey') {
      if (!message.initiation.equals(this.acceptedInitiation)) {
        throw new ProtocolError(ErrorCode.initiationMismatch, 'a prekey message of another initiation');
      }
      ratchetMessage = message.message;
    }
    const plaintext = await this.ratchet.decrypt(ratchetMessage.header, ratchetMessage.ciphertext);
    // Any authenticated message from the responder proves it has the session.
    this.pendingInitiation = null;
    return plaintext;
  }

  toStorable() {
    const initiation = (i) => i && { ...i, initiatorIdentityKey: i.initiatorIdentityKey.bytes };
    return {
      ratchet: this.ratchet.toStorable(), localIdentity: this.localIdentity.bytes, remoteIdentity: this.remoteIdentity.bytes,
      pendingInitiation: initiation(this.pendingInitiation), acceptedInitiation: initiation(this.acceptedInitiation),
    };
  }

  static fromStorable(stored) {
    const initiation = (i) => i && new X3DHInitiation({ ...i, initiatorIdentityKey: new IdentityKey(i.initiatorIdentityKey) });
    return new Session({
      ratchet: RatchetState.fromStorable(stored.ratchet), localIdentity: new IdentityKey(stored.localIdentity),
      remoteIdentity: new IdentityKey(stored.remoteIdentity), pendingInitiation: initiation(stored.pendingInitiation),
      acceptedInitiation: initiation(stored.acceptedInitiation),
    });
  }
}
