// Receipts, typing indicators and profiles (PROTOCOL.md §14.2): receipts are direct messages to
// the sender alone; typing travels in ephemeral frames, never stored.
import { canonicalJSON, segment } from './api.js';
import { SecureChatClient, ClientSettings, sessionName } from './client.js';
import { decodeEnvelope, encodeEnvelope, newMessageId } from './content.js';
import { directConversation, roomConversation } from './messaging.js';
import { fromBase64, toBase64 } from '../protocol/byte-coding.js';
import { Session } from '../protocol/session/session.js';
import { decodeSessionMessage } from '../protocol/session/session-messages.js';
import { SenderKeyState } from '../protocol/sender-keys/sender-key-state.js';

Object.assign(SecureChatClient.prototype, {
  /** Delivery receipts gathered while catching up go out together, 500 ids per message. */
  flushReceipts() {
    const pending = [...this.pendingReceipts];
    this.pendingReceipts.clear();
    for (const [userId, ids] of pending) {
      for (let start = 0; start < ids.length; start += ClientSettings.receiptBatch) {
        const batch = ids.slice(start, start + ClientSettings.receiptBatch);
        this.sendDirect(userId, { type: 'receipt', receipt: 'delivered', ids: batch }).catch(() => {
          // A contact with a pending identity change gets no receipt; nothing else to do.
        });
      }
    }
  },

  /** Read receipts to each sender of these (incoming) messages, rooms included, pairwise. */
  async markRead(messages) {
    const bySender = new Map();
    for (const message of messages) {
      if (message.outgoing) continue;
      if (!bySender.has(message.sender.userId)) bySender.set(message.sender.userId, []);
      bySender.get(message.sender.userId).push(message.id);
    }
    for (const [userId, ids] of bySender) {
      await this.sendDirect(userId, { type: 'receipt', receipt: 'read', ids: ids.slice(0, ClientSettings.receiptBatch) });
    }
  },

  /** A typing indicator for a direct conversation (to the other user's devices) or a room. */
  sendTyping(conversation, started) {
    if (!this.welcomed) return Promise.resolve();
    return this.serial(async () => {
      const payload = encodeEnvelope({ id: newMessageId(), type: 'typing', started });
      if (conversation.startsWith('room:')) {
        const code = conversation.slice(5);
        const existing = this.senderKeys.get(code);
        if (!existing) return;
        const senderKey = SenderKeyState.fromStorable(existing.toStorable());
        const ciphertext = await senderKey.encrypt(payload);
        await this.commit({ records: new Map([[`senderKey/${code}`, senderKey.toStorable()]]) });
        this.senderKeys.set(code, senderKey);
        this.socket?.send(canonicalJSON({ type: 'ephemeral', room: code, payload: toBase64(ciphertext) }));
        return;
      }
      const userId = conversation.slice(7);
      const devices = await this.devices(userId);
      const recipients = devices.map((deviceId) => ({ userId, deviceId }));
      await this.ensureSessions(recipients);
      const records = new Map();
      const entries = [];
      const updated = [];
      for (const { deviceId } of recipients) {
        const name = sessionName(userId, deviceId);
        const session = Session.fromStorable(this.sessions.get(name).toStorable());
        entries.push({ userId, deviceId, ciphertext: toBase64(await session.encrypt(payload)) });
        records.set(`session/${name}`, session.toStorable());
        updated.push([name, session]);
      }
      if (entries.length === 0) return;
      await this.commit({ records });
      for (const [name, session] of updated) this.sessions.set(name, session);
      this.socket?.send(canonicalJSON({ type: 'ephemeral', recipients: entries }));
    });
  },

  /** A relayed ephemeral payload: only typing is used; anything unreadable is dropped silently. */
  async receiveEphemeral(frame) {
    const sender = frame.sender;
    const change = { records: new Map() };
    const apply = [];
    let plaintext;
    try {
      const ciphertext = fromBase64(frame.payload);
      if (frame.room) {
        plaintext = await this.decryptRoomMessage(frame.room, sender, ciphertext, change, apply);
      } else {
        const name = sessionName(sender.userId, sender.deviceId);
        if (!this.sessions.has(name) || !this.contacts.has(sender.userId)) return;
        const decoded = decodeSessionMessage(ciphertext);
        const existing = this.sessions.get(name);
        if (decoded.kind === 'preKey' && !decoded.message.initiation.equals(existing.acceptedInitiation)) return;
        const session = Session.fromStorable(existing.toStorable());
        plaintext = await session.decrypt(decoded);
        change.records.set(`session/${name}`, session.toStorable());
        apply.push(() => this.sessions.set(name, session));
      }
      const envelope = decodeEnvelope(plaintext);
      await this.commit(change);
      for (const step of apply) step();
      if (envelope.type === 'typing') {
        const conversation = frame.room ? roomConversation(frame.room) : directConversation(sender.userId);
        this.emit('typing', { conversation, sender, started: envelope.started });
      }
    } catch {
      // Ephemeral frames are best effort: a stale or forged one changes nothing.
    }
  },

  // ---- profiles

  profile() {
    return this.api.get('/v1/profile');
  },

  /** Display name and status; the avatar stays as it is (setAvatar changes it). */
  async updateProfile({ displayName, statusText }) {
    return this.api.put('/v1/profile', { displayName, statusText, avatarAttachmentId: this.avatars.get(this.userId)?.attachmentId });
  },

  /**
   * Sets (a File) or removes (null) this account's picture: encrypted and uploaded like any file,
   * named in the server's profile, and its key sent in a `profile` message to every direct
   * contact and room, so that they can decrypt it (PROTOCOL.md §14.2).
   */
  async setAvatar(file) {
    const profile = await this.profile();
    let avatar = null;
    if (file) {
      const contacts = [...this.contacts.values()].filter((c) => c.hasConversation && c.userId !== this.userId).map((c) => c.userId).slice(0, 100);
      avatar = await this.uploadAttachment(file, { recipients: contacts });
    }
    await this.api.put('/v1/profile', { displayName: profile.displayName, statusText: profile.statusText, avatarAttachmentId: avatar?.attachmentId });
    await this.serial(async () => {
      await this.commit({ records: new Map([[`avatar/${this.userId}`, avatar]]) });
      if (avatar) this.avatars.set(this.userId, avatar);
      else this.avatars.delete(this.userId);
    });
    this.emit('avatarChanged', { userId: this.userId });
    const content = { type: 'profile', avatar: avatar ?? undefined };
    let failed = 0;
    for (const contact of this.contacts.values()) {
      if (!contact.hasConversation || contact.userId === this.userId) continue;
      await this.sendDirect(contact.userId, content).catch(() => failed++);
    }
    for (const room of await this.listRooms().catch(() => [])) await this.sendRoom(room.code, content).catch(() => failed++);
    return { failed };
  },

  userProfile(userId) {
    return this.api.get(`/v1/users/${segment(userId)}/profile`);
  },

  ownDevices() {
    return this.api.get('/v1/devices');
  },
});
