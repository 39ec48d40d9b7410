// Rooms (PROTOCOL.md §7, §14.3, §14.4): one sender-key ciphertext per message, this device's key
// handed to every admitted member device over the pairwise sessions before the message that needs
// it; rotation after anyone leaves; the admission roster kept per device.
import { canonicalJSON, segment } from './api.js';
import { SecureChatClient, ClientError, ClientSettings, sessionName, hasPendingChange } from './client.js';
import { archivedTypes, encodeEnvelope, newMessageId } from './content.js';
import { roomConversation } from './messaging.js';
import { fromBase64, toBase64 } from '../protocol/byte-coding.js';
import { Session } from '../protocol/session/session.js';
import { SenderKeyDistributionMessage } from '../protocol/sender-keys/sender-key-messages.js';
import { SenderKeyState, standardRotationPolicy } from '../protocol/sender-keys/sender-key-state.js';
import { SenderKeyStore } from '../protocol/sender-keys/sender-key-store.js';

const nowSeconds = () => Math.floor(Date.now() / 1000);
const isRoomCode = (code) => typeof code === 'string' && /^[a-z0-9]{1,64}$/.test(code);
const emptyRoomState = () => ({ chainId: null, distributedTo: [], rotateBeforeNextSend: false, admitted: null, unconfirmed: [], autoAdmit: false });
const roleRank = { member: 0, admin: 1, owner: 2 };

Object.assign(SecureChatClient.prototype, {
  // ---- management

  async listRooms() {
    return (await this.api.get('/v1/rooms')).rooms;
  },

  async roomPreview(code) {
    return this.api.get(`/v1/rooms/${segment(code.toLowerCase())}`);
  },

  createRoom({ name, password, retentionSeconds, autoAdmit = false }) {
    return this.serial(async () => {
      const room = await this.api.post('/v1/rooms', { name, password: password || undefined, retentionSeconds });
      const state = { ...emptyRoomState(), admitted: [this.userId], autoAdmit };
      await this.commit({ records: new Map([[`room/${room.code}`, state]]) });
      this.rooms.set(room.code, state);
      return room;
    });
  },

  joinRoom(code, password) {
    return this.serial(async () => {
      const normalized = code.trim().toLowerCase();
      const room = await this.api.post(`/v1/rooms/${segment(normalized)}/join`, password ? { password } : {});
      const members = await this.fetchMembers(room.code);
      const state = { ...emptyRoomState(), admitted: members.map((member) => member.userId) };
      await this.commit({ records: new Map([[`room/${room.code}`, state]]) });
      this.rooms.set(room.code, state);
      return room;
    });
  },

  leaveRoom(code) {
    return this.serial(async () => {
      await this.api.post(`/v1/rooms/${segment(code)}/leave`);
      await this.forgetRoom(code);
    });
  },

  async fetchMembers(code) {
    const { members } = await this.api.get(`/v1/rooms/${segment(code)}/members`);
    this.memberCache.set(code, { at: Date.now(), members });
    return members;
  },

  async members(code) {
    const cached = this.memberCache.get(code);
    if (cached && Date.now() - cached.at < ClientSettings.memberListLifetime) return cached.members;
    return this.fetchMembers(code);
  },

  unconfirmedMembers(code) {
    const state = this.rooms.get(code);
    const cached = this.memberCache.get(code);
    if (!state?.admitted || !cached) return [];
    return cached.members.map((member) => member.userId).filter((userId) => !state.admitted.includes(userId));
  },

  async removeMember(code, userId) {
    await this.api.delete(`/v1/rooms/${segment(code)}/members/${segment(userId)}`);
    await this.serial(() => this.markForRotation(code, userId));
  },

  async banMember(code, userId) {
    await this.api.post(`/v1/rooms/${segment(code)}/bans`, { userId });
    await this.serial(() => this.markForRotation(code, userId));
  },

  unbanMember(code, userId) {
    return this.api.delete(`/v1/rooms/${segment(code)}/bans/${segment(userId)}`);
  },

  bans(code) {
    return this.api.get(`/v1/rooms/${segment(code)}/bans`);
  },

  setRoomPassword(code, password) {
    return this.api.put(`/v1/rooms/${segment(code)}/password`, password ? { password } : {});
  },

  setRole(code, userId, role) {
    this.memberCache.delete(code);
    return this.api.put(`/v1/rooms/${segment(code)}/members/${segment(userId)}/role`, { role });
  },

  deleteRoom(code) {
    return this.api.delete(`/v1/rooms/${segment(code)}`);
  },

  /** Lets a member read the room: a signed admission to every member, then this device's key to them. */
  admit(code, userId) {
    return this.serial(() => this.admitNow(code, userId));
  },

  async admitNow(code, userId) {
    const members = await this.fetchMembers(code);
    const me = members.find((member) => member.userId === this.userId);
    if (!me || roleRank[me.role] < roleRank.admin) throw new ClientError('notAdmin', 'only owners and admins admit members');
    if (!members.some((member) => member.userId === userId)) throw new ClientError('notAMember', 'that user is not in the room');
    const previous = this.rooms.get(code) ?? emptyRoomState();
    const listed = members.map((member) => member.userId);
    const admitted = new Set(previous.admitted ?? listed.filter((id) => id !== userId));
    admitted.add(userId);
    const state = { ...previous, admitted: [...admitted], unconfirmed: previous.unconfirmed.filter((id) => id !== userId) };
    await this.commit({ records: new Map([[`room/${code}`, state]]) });
    this.rooms.set(code, state);
    await this.sendRoomNow(code, { type: 'admission', userIds: [userId] });
    this.emit('memberAdmitted', { room: code, userId, by: this.userId });
  },

  /** Trusts a member on this device only (no message). */
  trustMember(code, userId) {
    return this.serial(async () => {
      const previous = this.rooms.get(code) ?? emptyRoomState();
      const state = { ...previous, admitted: [...new Set([...(previous.admitted ?? []), userId])], unconfirmed: previous.unconfirmed.filter((id) => id !== userId) };
      await this.commit({ records: new Map([[`room/${code}`, state]]) });
      this.rooms.set(code, state);
      this.emit('memberAdmitted', { room: code, userId, by: this.userId });
    });
  },

  // ---- sending

  sendRoom(code, content) {
    return this.serial(() => this.sendRoomNow(code, content));
  },

  async sendRoomNow(code, content) {
    const members = await this.members(code);
    for (const member of members) {
      const known = this.contacts.get(member.userId);
      const knownIds = known ? Object.keys(known.devices).map(Number).sort().join() : null;
      if (!known || hasPendingChange(known) || knownIds !== [...member.deviceIds].sort().join()) await this.currentDevices(member.userId);
    }
    let plan = await this.planRoomSend(code, members);
    for (;;) {
      const missing = plan.needing.filter((device) => !this.sessions.has(sessionName(device.userId, device.deviceId)));
      if (missing.length === 0) break;
      await this.ensureSessions(missing);
      plan = await this.planRoomSend(code, members);
    }
    const { senderKey, state, needing } = plan;
    const records = new Map();
    const outboxAdd = [];
    const updatedSessions = [];
    if (needing.length > 0) {
      const envelope = encodeEnvelope({ id: newMessageId(), type: 'senderKey', room: code, distribution: toBase64(senderKey.distributionMessage.encode()) });
      for (let start = 0; start < needing.length; start += 100) {
        const entries = [];
        for (const device of needing.slice(start, start + 100)) {
          const name = sessionName(device.userId, device.deviceId);
          const session = Session.fromStorable(this.sessions.get(name).toStorable());
          entries.push({ userId: device.userId, deviceId: device.deviceId, ciphertext: toBase64(await session.encrypt(envelope)) });
          records.set(`session/${name}`, session.toStorable());
          updatedSessions.push([name, session]);
          state.distributedTo.push(name);
        }
        const frameId = newMessageId();
        outboxAdd.push({ id: frameId, text: canonicalJSON({ type: 'send', id: frameId, recipients: entries }) });
      }
    }
    const id = newMessageId();
    const ciphertext = await senderKey.encrypt(encodeEnvelope({ ...content, id }));
    records.set(`senderKey/${code}`, senderKey.toStorable());
    records.set(`room/${code}`, state);
    outboxAdd.push({ id, text: canonicalJSON({ type: 'send', id, room: code, ciphertext: toBase64(ciphertext) }) });
    const message = {
      conversation: roomConversation(code), sender: { userId: this.userId, deviceId: this.deviceId },
      envelope: { ...content, id }, sentAt: Date.now(), outgoing: true,
    };
    const archive = archivedTypes.has(content.type);
    if (archive) records.set(`status/${id}`, 'pending');
    await this.commit({ records, outboxAdd, archive: archive ? [message] : [] });
    if (archive) this.statuses.set(id, 'pending');
    for (const [name, session] of updatedSessions) this.sessions.set(name, session);
    this.senderKeys.set(code, senderKey);
    this.rooms.set(code, state);
    if (content.type !== 'admission') this.emit('message', { message, stored: archive });
    await this.sendOutbox();
    // Member devices that just got our room key get our picture's key too (one room message).
    if (needing.length > 0 && content.type !== 'profile' && this.avatars.has(this.userId)) {
      await this.sendRoomNow(code, { type: 'profile', avatar: this.avatars.get(this.userId) }).catch(() => {});
    }
    return message;
  },

  /** Who gets this device's key and message now; returns copies, committed only with the send. */
  async planRoomSend(code, members) {
    const previous = this.rooms.get(code) ?? emptyRoomState();
    const state = { ...previous, distributedTo: [...previous.distributedTo], unconfirmed: [...previous.unconfirmed] };
    const listed = members.map((member) => member.userId);
    state.admitted = state.admitted ?? listed.filter((userId) => !state.unconfirmed.includes(userId));
    state.unconfirmed = state.unconfirmed.filter((userId) => listed.includes(userId));
    for (const userId of listed) {
      if (!state.admitted.includes(userId) && !state.unconfirmed.includes(userId)) {
        state.unconfirmed.push(userId);
        this.emit('unconfirmedMember', { room: code, userId });
      }
    }
    const recipients = [];
    for (const member of members) {
      if (!state.admitted.includes(member.userId)) continue;
      for (const deviceId of member.deviceIds) {
        if (this.contacts.get(member.userId)?.devices[deviceId] === undefined) continue;
        if (member.userId === this.userId && deviceId === this.deviceId) continue;
        recipients.push({ userId: member.userId, deviceId });
      }
    }
    const now = nowSeconds();
    const existing = this.senderKeys.get(code);
    let senderKey = existing ? SenderKeyState.fromStorable(existing.toStorable()) : await SenderKeyState.create({ createdAt: now });
    if (state.rotateBeforeNextSend || senderKey.needsRotation(standardRotationPolicy, now)) {
      senderKey = await senderKey.rotated(now);
      state.rotateBeforeNextSend = false;
    }
    if (state.chainId !== senderKey.chainId) {
      state.chainId = senderKey.chainId;
      state.distributedTo = [];
    }
    const needing = recipients.filter((device) => !state.distributedTo.includes(sessionName(device.userId, device.deviceId)));
    return { senderKey, state, needing };
  },

  // ---- receiving

  async decryptRoomMessage(room, sender, ciphertext, change, apply) {
    const existing = this.senderKeyStores.get(room);
    if (!existing) throw new ClientError('noRoomKey', 'no key for this room from that member yet');
    const store = new SenderKeyStore(existing.members.map((owner) => existing.recordOf(owner).clone()));
    const { plaintext, sender: owner } = await store.decrypt(ciphertext);
    // The server names the sender; the key names whom it belongs to. They must agree.
    if (owner.name !== sender.userId || owner.deviceId !== sender.deviceId) throw new ClientError('wrongSender', 'a room message signed by another member');
    const record = store.recordOf(owner);
    change.records.set(`senderKeyRecord/${room}/${sessionName(owner.name, owner.deviceId)}`, record.toStorable());
    apply.push(() => this.senderKeyStores.set(room, store));
    return plaintext;
  },

  /** A member's room key, from a pairwise delivery only (PROTOCOL.md §7.2). */
  async processDistribution(envelope, sender, change, apply) {
    const room = envelope.room;
    if (!isRoomCode(room)) throw new ClientError('badRequest', 'not a room code');
    if (!this.rooms.has(room) && !this.senderKeyStores.has(room)) {
      try {
        await this.fetchMembers(room);
      } catch {
        throw new ClientError('notAMember', 'a key for a room this account is not in');
      }
    }
    const distribution = SenderKeyDistributionMessage.decode(fromBase64(envelope.distribution));
    const existing = this.senderKeyStores.get(room);
    const store = new SenderKeyStore(existing ? existing.members.map((owner) => existing.recordOf(owner).clone()) : []);
    const owner = { name: sender.userId, deviceId: sender.deviceId };
    store.process(distribution, owner);
    change.records.set(`senderKeyRecord/${room}/${sessionName(sender.userId, sender.deviceId)}`, store.recordOf(owner).toStorable());
    apply.push(() => this.senderKeyStores.set(room, store));
  },

  /** An admission from an admitted owner or admin adds members to this device's roster. */
  async processAdmission(userIds, room, sender, change, apply) {
    const members = await this.fetchMembers(room);
    const state = this.rooms.get(room);
    const role = members.find((member) => member.userId === sender.userId)?.role;
    if (!state?.admitted || !state.admitted.includes(sender.userId) || (role !== 'owner' && role !== 'admin')) {
      this.emit('undecryptable', { sender, room, reason: 'an admission from someone who may not admit was ignored' });
      return;
    }
    const listed = members.map((member) => member.userId);
    const newcomers = userIds.filter((id) => typeof id === 'string' && listed.includes(id) && !state.admitted.includes(id)).sort();
    if (newcomers.length === 0) return;
    const updated = { ...state, admitted: [...state.admitted, ...newcomers], unconfirmed: state.unconfirmed.filter((id) => !newcomers.includes(id)) };
    change.records.set(`room/${room}`, updated);
    apply.push(() => {
      this.rooms.set(room, updated);
      for (const userId of newcomers) this.emit('memberAdmitted', { room, userId, by: sender.userId });
    });
  },

  async receiveRoomEvent(event) {
    if (event.seq <= this.cursor) {
      this.acknowledge(event.seq);
      return;
    }
    this.memberCache.delete(event.room);
    const change = { records: new Map([['cursor', event.seq]]) };
    const apply = [];
    let joined = null;
    const self = event.userId === this.userId;
    if (['left', 'kicked', 'banned'].includes(event.change)) {
      if (self) await this.forgetRoom(event.room, change, apply);
      else this.rotationChange(event.room, event.userId, change, apply);
    } else if (event.change === 'deleted') {
      await this.forgetRoom(event.room, change, apply);
    } else if (event.change === 'joined' && !self) {
      // A room this browser has no state for yet (joined from another device) still records the
      // joiner as unconfirmed: otherwise the next send would treat them as admitted.
      const state = this.rooms.get(event.room) ?? emptyRoomState();
      if (!(state.admitted ?? []).includes(event.userId)) {
        const updated = { ...state, unconfirmed: [...new Set([...state.unconfirmed, event.userId])] };
        change.records.set(`room/${event.room}`, updated);
        apply.push(() => this.rooms.set(event.room, updated));
        joined = event.userId;
      }
    }
    await this.finishDelivery(event, change, apply);
    // Whoever is out of the room is out of its call at once (group-calls.js).
    if (['left', 'kicked', 'banned'].includes(event.change)) this.leftRoomCalls(event.room, self ? null : event.userId);
    if (event.change === 'deleted') this.leftRoomCalls(event.room, null);
    this.emit('roomEvent', { event });
    if (joined) {
      if (this.rooms.get(event.room)?.autoAdmit) {
        try {
          await this.admitNow(event.room, joined);
        } catch {
          this.emit('unconfirmedMember', { room: event.room, userId: joined });
        }
      } else {
        this.emit('unconfirmedMember', { room: event.room, userId: joined });
      }
    }
  },

  /** Someone left: drop their keys, rotate ours before the next message, take them off the roster. */
  rotationChange(room, userId, change, apply) {
    const existing = this.senderKeyStores.get(room);
    let store = null;
    if (existing) {
      store = new SenderKeyStore(existing.members.map((owner) => existing.recordOf(owner).clone()));
      for (const owner of store.members.filter((m) => m.name === userId)) {
        store.remove(owner);
        change.records.set(`senderKeyRecord/${room}/${sessionName(owner.name, owner.deviceId)}`, null);
      }
    }
    const previous = this.rooms.get(room) ?? emptyRoomState();
    const state = {
      ...previous, rotateBeforeNextSend: true,
      admitted: previous.admitted ? previous.admitted.filter((id) => id !== userId) : null,
      unconfirmed: previous.unconfirmed.filter((id) => id !== userId),
    };
    change.records.set(`room/${room}`, state);
    apply.push(() => {
      if (store) this.senderKeyStores.set(room, store);
      this.rooms.set(room, state);
    });
  },

  async markForRotation(room, userId) {
    const change = { records: new Map() };
    const apply = [];
    this.rotationChange(room, userId, change, apply);
    this.memberCache.delete(room);
    await this.commit(change);
    for (const step of apply) step();
  },

  async forgetRoom(room, change = null, apply = null) {
    const own = change ?? { records: new Map() };
    const steps = apply ?? [];
    for (const [name] of await this.store.entries(`senderKeyRecord/${room}/`)) own.records.set(name, null);
    own.records.set(`senderKey/${room}`, null);
    own.records.set(`room/${room}`, null);
    steps.push(() => {
      this.senderKeyStores.delete(room);
      this.senderKeys.delete(room);
      this.rooms.delete(room);
      this.memberCache.delete(room);
    });
    if (change === null) {
      await this.commit(own);
      for (const step of steps) step();
    }
  },
});

