// One room's received sender keys (PROTOCOL.md §7.2): records by distribution id, each bound to
// the device whose pairwise session carried it.
import { toHex } from '../byte-coding.js';
import { ProtocolError, ErrorCode } from '../errors.js';
import { SenderKeyMessage } from './sender-key-messages.js';
import { SenderKeyRecord, sameAddress } from './sender-key-record.js';

const addressKey = (address) => `${address.name}.${address.deviceId}`;

export class SenderKeyStore {
  constructor(records = []) {
    this.records = new Map();
    this.distributionByOwner = new Map();
    for (const record of records) {
      const id = toHex(record.distributionId);
      if (this.records.has(id)) throw new ProtocolError(ErrorCode.unknownKey, 'a distribution id held twice');
      if (this.distributionByOwner.has(addressKey(record.owner))) throw new ProtocolError(ErrorCode.unknownKey, 'two records for one device');
      this.records.set(id, record);
      this.distributionByOwner.set(addressKey(record.owner), id);
    }
  }

  /** Takes a decoded distribution that `sender` ({name, deviceId}) sent over its pairwise session. */
  process(distribution, sender) {
    const id = toHex(distribution.distributionId);
    const existing = this.records.get(id);
    if (existing) {
      if (!sameAddress(existing.owner, sender)) throw new ProtocolError(ErrorCode.unknownKey, 'distribution id bound to another member');
      const updated = existing.clone();
      updated.add(distribution, sender);
      this.records.set(id, updated);
      return;
    }
    // A new distribution id from a device that had another: it reinstalled, the new one replaces it.
    const previous = this.distributionByOwner.get(addressKey(sender));
    if (previous !== undefined) this.records.delete(previous);
    this.records.set(id, SenderKeyRecord.fromDistribution(distribution, sender));
    this.distributionByOwner.set(addressKey(sender), id);
  }

  /** Returns { plaintext, sender }; unchanged on any refusal. */
  async decrypt(bytes) {
    const message = SenderKeyMessage.decode(bytes);
    const record = this.records.get(toHex(message.distributionId));
    if (!record) throw new ProtocolError(ErrorCode.unknownKey, 'no sender key for this distribution id');
    const plaintext = await record.decrypt(message);
    return { plaintext, sender: record.owner };
  }

  remove(member) {
    const id = this.distributionByOwner.get(addressKey(member));
    if (id !== undefined) {
      this.records.delete(id);
      this.distributionByOwner.delete(addressKey(member));
    }
  }

  recordOf(member) {
    const id = this.distributionByOwner.get(addressKey(member));
    return id === undefined ? null : this.records.get(id);
  }

  get members() {
    return [...this.records.values()].map((record) => record.owner);
  }
}
