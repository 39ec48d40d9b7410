// Direct messages (PROTOCOL.md §14.3) and the handling of every stored delivery (API.md §5.4):
// decrypt, commit the new state with the archive entry and the cursor in one transaction, then
// acknowledge. A delivery that cannot be read is acknowledged too, and reported.
import { canonicalJSON } from './api.js';
import { SecureChatClient, ClientError, sessionName, hasPendingChange } from './client.js';
import { archivedTypes, decodeEnvelope, encodeEnvelope, newMessageId } from './content.js';
import { fromBase64, toBase64, toHex } from '../protocol/byte-coding.js';
import { Session } from '../protocol/session/session.js';
import { decodeSessionMessage } from '../protocol/session/session-messages.js';

export const directConversation = (userId) => `direct:${userId}`;
export const roomConversation = (code) => `room:${code}`;

Object.assign(SecureChatClient.prototype, {
  /** Sends content ({type, …}) to a user: every accepted device of theirs and every other device of ours. */
  sendDirect(userId, content) {
    return this.serial(() => this.sendDirectNow(userId, content));
  },

  async sendDirectNow(userId, content, { archive = archivedTypes.has(content.type) } = {}) {
    if (userId === this.userId) throw new ClientError('badRequest', 'write to someone else: notes to yourself are not supported');
    const theirs = await this.devices(userId);
    if (theirs.length === 0) throw new ClientError('noDevices', `${this.displayName(userId)} has no devices`);
    const mine = (await this.devices(this.userId)).filter((deviceId) => deviceId !== this.deviceId);
    const recipients = [...theirs.map((deviceId) => ({ userId, deviceId })), ...mine.map((deviceId) => ({ userId: this.userId, deviceId }))];
    const hadSession = theirs.some((deviceId) => this.sessions.has(sessionName(userId, deviceId)));
    await this.ensureSessions(recipients);
    const id = newMessageId();
    const forThem = encodeEnvelope({ ...content, id });
    const forMe = encodeEnvelope({ ...content, id, conversation: userId });
    const records = new Map();
    const entries = [];
    const updated = [];
    for (const recipient of recipients) {
      const name = sessionName(recipient.userId, recipient.deviceId);
      const session = Session.fromStorable(this.sessions.get(name).toStorable());
      const ciphertext = await session.encrypt(recipient.userId === userId ? forThem : forMe);
      entries.push({ userId: recipient.userId, deviceId: recipient.deviceId, ciphertext: toBase64(ciphertext) });
      records.set(`session/${name}`, session.toStorable());
      updated.push([name, session]);
    }
    const frame = canonicalJSON({ type: 'send', id, recipients: entries });
    const message = {
      conversation: directConversation(userId), sender: { userId: this.userId, deviceId: this.deviceId },
      envelope: { ...content, id }, sentAt: Date.now(), outgoing: true,
    };
    // Archived messages get a status this device follows: pending, sent, delivered, read, failed.
    if (archive) records.set(`status/${id}`, 'pending');
    await this.commit({ records, outboxAdd: [{ id, text: frame }], archive: archive ? [message] : [] });
    for (const [name, session] of updated) this.sessions.set(name, session);
    if (archive) this.statuses.set(id, 'pending');
    this.emit('message', { message, stored: archive });
    await this.sendOutbox();
    // Someone this device never wrote to before gets our picture's key along.
    if (!hadSession && content.type !== 'profile' && content.type !== 'typing' && this.avatars.has(this.userId)) {
      await this.sendDirectNow(userId, { type: 'profile', avatar: this.avatars.get(this.userId) }).catch(() => {});
    }
    return message;
  },

  /** A stored `message` frame. */
  async receive(delivery) {
    if (delivery.seq <= this.cursor) {
      this.acknowledge(delivery.seq);
      return;
    }
    const sender = delivery.sender;
    if (!this.contacts.has(sender.userId)) {
      try {
        await this.currentDevices(sender.userId);
      } catch {
        // Learning the sender's devices is best effort; the message decides.
      }
    }
    const change = { records: new Map([['cursor', delivery.seq]]), archive: [] };
    const apply = [];
    let plaintext;
    try {
      const ciphertext = fromBase64(delivery.ciphertext);
      plaintext = delivery.room
        ? await this.decryptRoomMessage(delivery.room, sender, ciphertext, change, apply)
        : await this.decryptPairwise(sender, ciphertext, change, apply);
    } catch (error) {
      return this.undecryptable(delivery, error);
    }
    let envelope;
    try {
      envelope = decodeEnvelope(plaintext);
    } catch (error) {
      return this.undecryptable(delivery, error, { change, apply });
    }
    let conversation;
    if (delivery.room) conversation = roomConversation(delivery.room);
    else if (sender.userId === this.userId) conversation = directConversation(envelope.conversation ?? this.userId);
    else conversation = directConversation(sender.userId);

    if (envelope.type === 'senderKey') {
      if (delivery.room) return this.undecryptable(delivery, new Error('a room key inside a room message'), { change, apply });
      try {
        await this.processDistribution(envelope, sender, change, apply);
      } catch (error) {
        return this.undecryptable(delivery, new Error(`a room key was refused: ${error.message}`), { change, apply });
      }
      return this.finishDelivery(delivery, change, apply);
    }
    if (envelope.type === 'admission') {
      if (!delivery.room) return this.undecryptable(delivery, new Error('an admission outside a room'), { change, apply });
      try {
        await this.processAdmission(envelope.userIds, delivery.room, sender, change, apply);
      } catch (error) {
        // As in the Swift SDK: reported, and the delivery is done with (the admitter can admit again).
        this.emit('undecryptable', { sender, room: delivery.room, reason: `an admission could not be checked: ${error.message}` });
      }
      return this.finishDelivery(delivery, change, apply);
    }
    if (envelope.type === 'profile' && !this.isUnconfirmed(sender, delivery.room) && !(envelope.avatar?.size > 1024 * 1024)) {
      // Only the sender's own picture: nobody can set someone else's.
      const avatar = envelope.avatar ?? null;
      change.records.set(`avatar/${sender.userId}`, avatar);
      apply.push(() => {
        if (avatar) this.avatars.set(sender.userId, avatar);
        else this.avatars.delete(sender.userId);
        this.emit('avatarChanged', { userId: sender.userId });
      });
    }
    if (envelope.type === 'receipt') {
      const level = envelope.receipt === 'read' ? 'read' : 'delivered';
      for (const id of envelope.ids.slice(0, 500)) {
        // Only this device's own messages have a status; a read never goes back to delivered.
        if (typeof id !== 'string' || !this.statuses.has(id) || this.statuses.get(id) === 'read') continue;
        change.records.set(`status/${id}`, level);
        apply.push(() => this.statuses.set(id, level));
      }
    }
    const message = {
      conversation, sender, envelope, sentAt: delivery.sentAt, outgoing: sender.userId === this.userId,
      unconfirmedSender: this.isUnconfirmed(sender, delivery.room) || undefined,
    };
    const stored = archivedTypes.has(envelope.type);
    if (stored) change.archive.push(message);
    await this.finishDelivery(delivery, change, apply);
    this.emit('message', { message, stored });
    // Calls ring only from a device this one trusts.
    if (envelope.type === 'call' && !message.unconfirmedSender) {
      if (delivery.room) this.handleRoomCallSignal(message, delivery.room);
      else this.handleCallSignal(message);
    }
    if (stored && !message.outgoing && !delivery.room && this.sendsDeliveryReceipts) {
      if (!this.pendingReceipts.has(sender.userId)) this.pendingReceipts.set(sender.userId, []);
      this.pendingReceipts.get(sender.userId).push(envelope.id);
      if (this.caughtUp) this.flushReceipts();
    }
  },

  /** Commits the delivery's changes with the cursor, applies them in memory, then acks. */
  async finishDelivery(delivery, change, apply) {
    await this.commit(change);
    for (const step of apply) step();
    this.cursor = delivery.seq;
    this.acknowledge(delivery.seq);
  },

  async undecryptable(delivery, error, partial = null) {
    const change = partial?.change ?? { records: new Map([['cursor', delivery.seq]]) };
    change.archive = [];
    await this.finishDelivery(delivery, change, partial?.apply ?? []);
    this.emit('undecryptable', { sender: delivery.sender, room: delivery.room, reason: error.message, code: error.code, at: delivery.sentAt });
  },

  isUnconfirmed(sender, room) {
    const contact = this.contacts.get(sender.userId);
    if (!contact || contact.devices[sender.deviceId] === undefined) return true;
    if (room) {
      const state = this.rooms.get(room);
      if (state?.admitted && !state.admitted.includes(sender.userId)) return true;
    }
    return false;
  },

  /**
   * Pairwise decryption: the sender's session for a ratchet message or a repeat of the initiation
   * that created it; otherwise a prekey message starts (and replaces) the session.
   */
  async decryptPairwise(sender, ciphertext, change, apply) {
    const name = sessionName(sender.userId, sender.deviceId);
    const decoded = decodeSessionMessage(ciphertext);
    const existing = this.sessions.get(name);
    if (existing && (decoded.kind === 'ratchet' || decoded.message.initiation.equals(existing.acceptedInitiation))) {
      const session = Session.fromStorable(existing.toStorable());
      const plaintext = await session.decrypt(decoded);
      change.records.set(`session/${name}`, session.toStorable());
      apply.push(() => this.sessions.set(name, session));
      return plaintext;
    }
    if (decoded.kind === 'ratchet') throw new ClientError('noSession', 'no session with the sender');
    await this.checkSenderIdentity(sender, decoded.message.initiation.initiatorIdentityKey, change, apply);
    // Session.accept changes the prekey store only on success; a copy keeps memory untouched until the commit.
    const preKeys = this.preKeys;
    const view = {
      signedPreKey: (id) => preKeys.signedPreKey(id),
      oneTimePreKey: (id) => preKeys.oneTimePreKey(id),
      hasAcceptedInitiation: (key, id) => preKeys.hasAcceptedInitiation(key, id),
      removeOneTimePreKey: (id) => {
        change.records.set(`oneTimePreKey/${id}`, null);
        apply.push(() => preKeys.removeOneTimePreKey(id));
      },
      recordAcceptedInitiation: (key, id) => {
        change.records.set(`acceptedInitiation/${id}:${toHex(key)}`, true);
        apply.push(() => preKeys.recordAcceptedInitiation(key, id));
      },
    };
    const { session, plaintext } = await Session.accept(decoded.message, this.identity, view);
    change.records.set(`session/${name}`, session.toStorable());
    apply.push(() => this.sessions.set(name, session));
    return plaintext;
  },

  /** A prekey message names the sender's identity key: check it against what this device trusts. */
  async checkSenderIdentity(sender, identityKey, change, apply) {
    const key = toBase64(identityKey.bytes);
    const contact = this.contacts.get(sender.userId);
    if (!contact) {
      const created = { userId: sender.userId, username: sender.userId, devices: { [sender.deviceId]: key }, verified: false };
      change.records.set(`contact/${sender.userId}`, created);
      apply.push(() => this.contacts.set(sender.userId, created));
      return;
    }
    const known = contact.devices[sender.deviceId];
    if (known === key) return;
    if (known !== undefined) throw new ClientError('identityChanged', 'a known device presented another identity key');
    const updated = { ...contact, changedDevices: { ...(contact.changedDevices ?? {}), [sender.deviceId]: key } };
    change.records.set(`contact/${sender.userId}`, updated);
    apply.push(() => {
      this.contacts.set(sender.userId, updated);
      this.emit('identityChanged', { contact: updated });
    });
  },

  /** The archived messages of a conversation, oldest first, with edits, deletions and reactions applied. */
  async timeline(conversation) {
    const entries = await this.store.archive(conversation);
    const items = [];
    const byKey = new Map();
    for (const entry of entries) {
      const { envelope } = entry;
      if (envelope.type === 'callLog') {
        items.push({ id: envelope.id, sender: entry.sender, outgoing: entry.outgoing, sentAt: entry.sentAt, type: 'callLog', call: envelope, reactions: new Map(), deleted: false });
      } else if (envelope.type === 'text' || envelope.type === 'attachment') {
        const item = {
          id: envelope.id, sender: entry.sender, outgoing: entry.outgoing, sentAt: entry.sentAt, type: envelope.type,
          text: envelope.type === 'text' ? envelope.text : envelope.caption ?? null, attachment: envelope.attachment ?? null,
          replyTo: envelope.replyTo ?? null, edited: false, deleted: false, reactions: new Map(), unconfirmedSender: entry.unconfirmedSender === true,
        };
        items.push(item);
        byKey.set(`${entry.sender.userId}/${envelope.id}`, item);
      } else if (envelope.type === 'edit' || envelope.type === 'delete') {
        const target = byKey.get(`${entry.sender.userId}/${envelope.target}`);
        if (!target || target.deleted) continue;
        if (envelope.type === 'edit') {
          target.text = envelope.text;
          target.edited = true;
        } else {
          target.deleted = true;
          target.text = null;
          target.attachment = null;
          target.reactions.clear();
        }
      } else if (envelope.type === 'reaction') {
        const target = items.findLast((item) => item.id === envelope.target);
        if (!target || target.deleted) continue;
        const reactors = target.reactions.get(envelope.emoji) ?? new Set();
        if (envelope.remove) reactors.delete(entry.sender.userId);
        else reactors.add(entry.sender.userId);
        if (reactors.size === 0) target.reactions.delete(envelope.emoji);
        else target.reactions.set(envelope.emoji, reactors);
      }
    }
    return items;
  },

  /** Direct conversations this device has history for, with the last activity. */
  async conversations() {
    const contacts = [...this.contacts.values()].filter((contact) => contact.userId !== this.userId);
    return contacts.map((contact) => ({ userId: contact.userId, username: contact.username, pendingChange: hasPendingChange(contact), verified: contact.verified }));
  },
});
