// Group calls in rooms: a mesh of 1:1 links, at most CallSettings.groupLimit devices
// (PROTOCOL.md §14.7).
//
// Who is in a call is announced to the room (`call` content as a room message: `invite`, `join`,
// `leave`, signed with the sender's room key). The media links are negotiated pairwise, as in a
// 1:1 call: `offer` and `answer` carrying `room`, the receiving device (`to`) and the link's id,
// inside the Double Ratchet. A participant offers a link to each device that joins after it, and
// accepts offers only from current members who announced themselves in the call, so every DTLS
// fingerprint comes from an identity the room vouches for. When two devices offer each other at
// once, the offer of the smaller device key goes on.
import { SecureChatClient, ClientError } from './client.js';
import { CallBase, CallSettings, PeerLink, deviceKey, isCallId, newCallId } from './calls.js';
import { roomConversation } from './messaging.js';

const roomCallKey = (room, callId) => `${room}/${callId}`;

/**
 * This device's part in a room's call. States: ringing, connecting (getting the camera), waiting
 * (in the call, nobody connected), connected. Events: those of CallBase and 'legs' when a link is
 * added, connects, gets media or goes.
 */
export class GroupCall extends CallBase {
  constructor(client, { callId, room, video, direction, inviter }) {
    super(client, { callId, video, direction });
    this.room = room;
    this.inviter = inviter;
    this.state = direction === 'outgoing' ? 'connecting' : 'ringing';
    /** deviceKey → {peer, link, ours, linkId, timer}: `ours` when this device made the offer. */
    this.legs = new Map();
    this.joined = false;
    /** Tells this joining apart from the same device's earlier one (a reloaded page joins again). */
    this.joinId = newCallId();
    this.presence = null;
    this.aloneTimer = null;
  }

  get self() {
    return { userId: this.client.userId, deviceId: this.client.deviceId };
  }

  links() {
    return [...this.legs.values()].map((leg) => leg.link).filter((link) => link !== null);
  }

  announce(kind) {
    return this.client.sendRoom(this.room, {
      type: 'call', call: { callId: this.callId, kind, video: this.video, joinId: this.joinId, createdAt: this.client.serverNow() },
    });
  }

  signal(peer, kind, fields) {
    return this.client.sendDirect(peer.userId, { type: 'call', call: { callId: this.callId, kind, room: this.room, to: peer.deviceId, ...fields } });
  }

  /** Camera and microphone, then the announcement: the participants already there offer us links. */
  async join(kind) {
    this.setState('connecting');
    try {
      await this.media();
      this.stopIfEnded();
      this.joined = true;
      this.setState('waiting');
      // Set before the announcement is awaited: a call ended meanwhile clears it.
      this.presence = setInterval(() => this.announce('join').catch(() => {}), CallSettings.presenceInterval);
      this.watchAlone();
      await this.announce(kind);
    } catch (error) {
      if (this.state === 'ended') return;
      this.end(`the call could not start: ${error.message}`);
      throw error;
    }
  }

  accept() {
    if (this.state !== 'ringing') return Promise.resolve();
    const present = this.client.roomCallsIn(this.room).find((call) => call.callId === this.callId)?.participants.length ?? 0;
    if (present >= CallSettings.groupLimit) {
      this.finish('the call is full');
      return Promise.reject(new ClientError('callFull', `the call is full (${CallSettings.groupLimit} people at most)`));
    }
    return this.join('join');
  }

  decline() {
    if (this.state === 'ringing') this.finish('declined');
  }

  hangUp() {
    this.end('you left the call');
  }

  /** Leaves at once; the room hears about it afterwards. */
  end(reason) {
    if (this.state === 'ended') return;
    const joined = this.joined;
    this.finish(reason);
    if (joined) this.announce('leave').catch(() => {});
  }

  finish(reason) {
    if (this.state === 'ended') return;
    const wasConnected = this.connectedAt !== null;
    const duration = wasConnected ? Date.now() - this.connectedAt : 0;
    this.state = 'ended';
    clearInterval(this.presence);
    clearTimeout(this.aloneTimer);
    for (const leg of this.legs.values()) clearTimeout(leg.timer);
    this.stopMedia();
    this.legs.clear();
    this.client.calls.delete(this.callId);
    this.dispatchEvent(new CustomEvent('ended', { detail: { reason, duration } }));
    this.client.emit('callEnded', { call: this, reason, duration });
    if (reason === 'missed' || reason === 'joined on another device') return;
    const outcome = wasConnected ? 'ended' : reason === 'declined' ? 'declined' : 'unanswered';
    const caller = this.direction === 'outgoing' ? this.client.userId : this.inviter.userId;
    this.client.logCall({ conversation: roomConversation(this.room), video: this.video, outcome, duration, caller }).catch(() => {});
  }

  /** Nobody linked for a ringing time: the call is over for this device (camera off, presence gone). */
  watchAlone() {
    if (!this.joined || this.state === 'ended') return;
    if (this.legs.size > 0) {
      clearTimeout(this.aloneTimer);
      this.aloneTimer = null;
    } else if (this.aloneTimer === null) {
      this.aloneTimer = setTimeout(() => {
        this.aloneTimer = null;
        if (this.legs.size === 0) this.end(this.connectedAt === null ? 'nobody joined' : 'everyone else left');
      }, CallSettings.ringTimeout);
    }
  }

  changed() {
    this.watchAlone();
    this.dispatchEvent(new Event('legs'));
  }

  /** A leg's link; dropped if it has not connected within linkTimeout (an offer or answer was lost). */
  async openLeg(leg) {
    const link = await PeerLink.open(this, leg.peer);
    const key = deviceKey(leg.peer);
    if (this.legs.get(key) !== leg) {
      link.close();
      throw new ClientError('callEnded', 'the link was replaced');
    }
    leg.link = link;
    leg.timer = setTimeout(() => {
      if (!link.connected) this.dropLeg(key, leg);
    }, CallSettings.linkTimeout);
    link.addEventListener('track', () => this.changed());
    link.addEventListener('connected', () => {
      this.setState('connected');
      this.changed();
    });
    link.addEventListener('failed', () => this.dropLeg(key, leg));
    this.changed();
    return link;
  }

  dropLeg(key, leg = this.legs.get(key)) {
    if (!leg || this.legs.get(key) !== leg) return;
    this.legs.delete(key);
    clearTimeout(leg.timer);
    leg.link?.close();
    if (this.state === 'connected' && ![...this.legs.values()].some((other) => other.link?.connected)) this.setState('waiting');
    this.changed();
  }

  hasRoom() {
    return this.legs.size < CallSettings.groupLimit - 1;
  }

  /** A device joined after us: we offer it a link (or tell it the call is full). */
  async connectTo(peer) {
    const key = deviceKey(peer);
    if (!this.joined || this.state === 'ended' || this.legs.has(key)) return;
    if (!this.hasRoom()) {
      this.signal(peer, 'reject', { reason: 'full' }).catch(() => {});
      return;
    }
    const leg = { peer, link: null, ours: true, linkId: newCallId(), timer: null };
    this.legs.set(key, leg);
    try {
      const link = await this.openLeg(leg);
      const sdp = await link.offer();
      if (this.legs.get(key) === leg) await this.signal(peer, 'offer', { sdp, linkId: leg.linkId });
    } catch {
      this.dropLeg(key, leg);
    }
  }

  /** An offer from a participant: answered, unless our own offer to it wins. */
  async answerTo(peer, offer, linkId) {
    const key = deviceKey(peer);
    const existing = this.legs.get(key);
    if (existing) {
      // Offers crossed: the smaller device key's offer goes on. A connected link is kept: a device
      // that lost it joins again, and that replaces the link (handleRoomCallSignal).
      if (existing.link?.connected) return;
      if (existing.ours && deviceKey(this.self) < key) return;
      this.dropLeg(key, existing);
    }
    if (!this.hasRoom()) {
      this.signal(peer, 'reject', { reason: 'full' }).catch(() => {});
      return;
    }
    const leg = { peer, link: null, ours: false, linkId, timer: null };
    this.legs.set(key, leg);
    try {
      const link = await this.openLeg(leg);
      const sdp = await link.answer(offer);
      if (this.legs.get(key) === leg) await this.signal(peer, 'answer', { sdp, linkId });
    } catch {
      this.dropLeg(key, leg);
    }
  }

  /** The answer to our offer — to this offer, not an earlier one to the same device. */
  accepted(peer, answer, linkId) {
    const key = deviceKey(peer);
    const leg = this.legs.get(key);
    if (!leg?.ours || !leg.link || leg.answered || leg.linkId !== linkId) return;
    leg.answered = true;
    leg.link.accept(answer).catch(() => this.dropLeg(key, leg));
  }

  /** The peer has no room for us: without any link, this device cannot be in the call. */
  refused(peer) {
    this.dropLeg(deviceKey(peer));
    if (this.legs.size === 0 && this.connectedAt === null) this.end('the call is full');
  }
}

Object.assign(SecureChatClient.prototype, {
  /**
   * The calls going on in a room as this device heard them announced: [{callId, video,
   * participants: [{userId, deviceId}]}], without participants silent for too long.
   */
  roomCallsIn(room) {
    this.roomCalls ??= new Map();
    const calls = [];
    for (const [key, info] of this.roomCalls) {
      this.forgetSilent(info);
      if (info.participants.size === 0) this.roomCalls.delete(key);
      else if (info.room === room) calls.push({ callId: info.callId, video: info.video, participants: [...info.participants.values()].map((entry) => entry.peer) });
    }
    return calls;
  },

  forgetSilent(info) {
    const now = this.serverNow();
    for (const [key, participant] of info.participants) {
      if (now - participant.seenAt > CallSettings.presenceTimeout) info.participants.delete(key);
    }
  },

  /** Starts a call in a room; returns it at once, `call.started` settles once the room was told. */
  startRoomCall(room, { video = false } = {}) {
    this.checkCanCall();
    const call = new GroupCall(this, { callId: newCallId(), room, video, direction: 'outgoing', inviter: null });
    this.calls.set(call.callId, call);
    call.started = call.join('invite');
    call.started.catch(() => {});
    return call;
  },

  /** Joins a call already going on in a room (from the room's banner, without a ring). */
  joinRoomCall(room, callId) {
    this.checkCanCall();
    const info = this.roomCallsIn(room).find((candidate) => candidate.callId === callId);
    if (!info) throw new ClientError('callEnded', 'that call has ended');
    const call = new GroupCall(this, { callId, room, video: info.video, direction: 'incoming', inviter: info.participants[0] });
    this.calls.set(callId, call);
    call.started = call.accept();
    call.started.catch(() => {});
    return call;
  },

  /** Someone left a room (null: this device's account left, or the room is gone): out of its calls. */
  leftRoomCalls(room, userId) {
    this.roomCalls ??= new Map();
    for (const [key, info] of this.roomCalls) {
      if (info.room !== room) continue;
      if (userId === null) {
        this.roomCalls.delete(key);
        continue;
      }
      for (const [participant, entry] of info.participants) if (entry.peer.userId === userId) info.participants.delete(participant);
    }
    for (const call of [...(this.calls?.values() ?? [])]) {
      if (!(call instanceof GroupCall) || call.room !== room) continue;
      if (userId === null) call.end('you are no longer in the room');
      else for (const [key, leg] of [...call.legs]) if (leg.peer.userId === userId) call.dropLeg(key, leg);
    }
    this.emit('roomCall', { room });
  },

  /** A `call` room message from a member this device trusts: who is in which call. */
  handleRoomCallSignal(message, room) {
    this.roomCalls ??= new Map();
    this.calls ??= new Map();
    const signal = message.envelope.call;
    if (!signal || !isCallId(signal.callId) || !['invite', 'join', 'leave'].includes(signal.kind)) return;
    const sender = message.sender;
    const key = deviceKey(sender);
    const made = this.signalMadeAt(signal, message);
    // From the room's history, long over.
    if (this.serverNow() - made > CallSettings.presenceTimeout) return;
    const callKey = roomCallKey(room, signal.callId);
    let info = this.roomCalls.get(callKey);
    const call = this.calls.get(signal.callId);
    const ours = call instanceof GroupCall && call.room === room ? call : null;
    if (signal.kind === 'leave') {
      info?.participants.delete(key);
      ours?.dropLeg(key);
      if (ours?.state === 'ringing' && info?.participants.size === 0) {
        ours.finish('missed');
        this.missedCall({ peer: ours.inviter.userId, video: ours.video, at: message.sentAt, conversation: roomConversation(room) });
      }
      this.emit('roomCall', { room });
      return;
    }
    if (!info) {
      info = { room, callId: signal.callId, video: signal.video === true, participants: new Map() };
      this.roomCalls.set(callKey, info);
    }
    const joinId = isCallId(signal.joinId) ? signal.joinId : null;
    const previous = info.participants.get(key);
    info.participants.set(key, { peer: { userId: sender.userId, deviceId: sender.deviceId }, seenAt: made, joinId });
    this.emit('roomCall', { room });
    if (sender.userId === this.userId) {
      // One device per person in a call: another of ours went in, this one stops ringing.
      if (ours?.state === 'ringing') ours.finish('joined on another device');
      return;
    }
    if (ours?.joined) {
      // The same device joining again (its page was reloaded): its old link is dead, offer a new one.
      if (previous && previous.joinId !== joinId) ours.dropLeg(key);
      ours.connectTo(sender);
      return;
    }
    if (signal.kind !== 'invite' || ours || this.serverNow() - made > CallSettings.ringTimeout) return;
    if (this.calls.size > 0) {
      this.missedCall({ peer: sender.userId, video: info.video, at: message.sentAt, busy: true, conversation: roomConversation(room) });
      return;
    }
    const ringing = new GroupCall(this, { callId: signal.callId, room, video: info.video, direction: 'incoming', inviter: sender });
    this.calls.set(signal.callId, ringing);
    this.emit('incomingCall', { call: ringing });
    setTimeout(() => {
      if (ringing.state === 'ringing') {
        ringing.finish('missed');
        this.missedCall({ peer: sender.userId, video: ringing.video, at: message.sentAt, conversation: roomConversation(room) });
      }
    }, Math.max(0, CallSettings.ringTimeout - (this.serverNow() - made)));
  },

  /**
   * A pairwise signal for a link of a group call: only for a call this device is in, addressed to
   * this device, from a participant who announced itself in that room's call and has not gone quiet.
   */
  handleLegSignal(message, signal) {
    const call = this.calls.get(signal.callId);
    if (!(call instanceof GroupCall) || call.room !== signal.room || !call.joined || signal.to !== this.deviceId) return;
    const sender = message.sender;
    if (sender.userId === this.userId) return;
    const info = this.roomCalls?.get(roomCallKey(call.room, call.callId));
    if (!info) return;
    this.forgetSilent(info);
    if (!info.participants.has(deviceKey(sender))) return;
    const peer = { userId: sender.userId, deviceId: sender.deviceId };
    if (signal.kind === 'offer' && typeof signal.sdp === 'string' && isCallId(signal.linkId)) call.answerTo(peer, signal.sdp, signal.linkId);
    else if (signal.kind === 'answer' && typeof signal.sdp === 'string') call.accepted(peer, signal.sdp, signal.linkId);
    else if (signal.kind === 'reject' && signal.reason === 'full') call.refused(peer);
  },
});
