// Voice and video calls (WebRTC). Offers, answers, hang-ups and refusals travel as `call`
// content (PROTOCOL.md §14.2) inside the Double Ratchet, so the session descriptions — and the
// DTLS fingerprints in them, which pin the media encryption — reach the peer authenticated by the
// identity keys of the conversation: the server relays ciphertext and cannot sit in the middle.
//
// Candidates are gathered before the description is sent (no trickle): one message each way, and
// nothing half-negotiated waits in a queue. A signal older than `ringTimeout` rings nobody.
// This module holds what 1:1 and group calls share (PeerLink, CallBase) and the 1:1 call;
// group-calls.js builds room calls from the same parts.
import { SecureChatClient, ClientError } from './client.js';
import { directConversation } from './messaging.js';
import { newMessageId } from './content.js';
import { toBase64URL } from '../protocol/byte-coding.js';
import { randomBytes } from '../protocol/secret-bytes.js';

export const CallSettings = Object.freeze({
  ringTimeout: 60_000,
  gatheringTimeout: 4_000,
  /** Participants of a group call, this device included: in a mesh each one sends everyone else its own copy. */
  groupLimit: 4,
  /** A group call's link that has not connected by then is dropped (its offer or answer was lost). */
  linkTimeout: 30_000,
  /** A group call participant announces again that it is there this often… */
  presenceInterval: 10 * 60_000,
  /** …and counts as gone (its browser closed without a word) after this long without one. */
  presenceTimeout: 25 * 60_000,
});

export const deviceKey = ({ userId, deviceId }) => `${userId}/${deviceId}`;

/** Call ids (and link and join ids) are 16 random bytes in base64url: anything else is refused. */
export const isCallId = (value) => typeof value === 'string' && /^[A-Za-z0-9_-]{22}$/.test(value);
export const newCallId = () => toBase64URL(randomBytes(16));

const emptyTraffic = () => ({ audio: { sent: 0, received: 0 }, video: { sent: 0, received: 0 }, route: null });

/** One RTCPeerConnection with one device of a peer. Events: 'track' (detail.stream), 'connected', 'failed'. */
export class PeerLink extends EventTarget {
  constructor(connection, peer) {
    super();
    this.connection = connection;
    this.peer = peer;
    this.remoteStream = new MediaStream();
    this.connected = false;
    connection.ontrack = (event) => {
      this.remoteStream.addTrack(event.track);
      this.dispatchEvent(new CustomEvent('track', { detail: { stream: this.remoteStream } }));
    };
    connection.onconnectionstatechange = () => {
      if (connection.connectionState === 'connected' && !this.connected) {
        this.connected = true;
        this.dispatchEvent(new Event('connected'));
      }
      if (connection.connectionState === 'failed') this.dispatchEvent(new Event('failed'));
    };
  }

  /** A connection sending the call's tracks (the shared screen in place of the camera while sharing). */
  static async open(call, peer) {
    const { iceServers, iceTransportPolicy } = await call.client.iceConfiguration();
    call.stopIfEnded();
    const connection = new RTCPeerConnection({ iceServers, iceTransportPolicy, bundlePolicy: 'max-bundle' });
    for (const track of call.localStream.getTracks()) {
      connection.addTrack(track.kind === 'video' && call.screenTrack ? call.screenTrack : track, call.localStream);
    }
    return new PeerLink(connection, peer);
  }

  async offer() {
    await this.connection.setLocalDescription(await this.connection.createOffer());
    return this.gathered();
  }

  async answer(offer) {
    await this.connection.setRemoteDescription({ type: 'offer', sdp: offer });
    await this.connection.setLocalDescription(await this.connection.createAnswer());
    return this.gathered();
  }

  accept(answer) {
    return this.connection.setRemoteDescription({ type: 'answer', sdp: answer });
  }

  /** The local description once every candidate is in it (or the time is up). */
  async gathered() {
    const connection = this.connection;
    if (connection.iceGatheringState !== 'complete') {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, CallSettings.gatheringTimeout);
        connection.addEventListener('icegatheringstatechange', () => {
          if (connection.iceGatheringState === 'complete') {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    }
    return connection.localDescription.sdp;
  }

  videoSender() {
    return this.connection.getSenders().find((sender) => sender.track?.kind === 'video');
  }

  /**
   * Bytes received and sent per media kind, and the route of the selected candidate pair
   * ('direct', or 'relay' through the TURN server), from the connection's statistics.
   */
  async traffic() {
    const totals = emptyTraffic();
    const reports = await this.connection.getStats();
    for (const report of reports.values()) {
      const kind = report.kind ?? report.mediaType;
      if (report.type === 'transport' && report.selectedCandidatePairId) {
        const pair = reports.get(report.selectedCandidatePairId);
        const local = pair && reports.get(pair.localCandidateId);
        const remote = pair && reports.get(pair.remoteCandidateId);
        if (local && remote) totals.route = local.candidateType === 'relay' || remote.candidateType === 'relay' ? 'relay' : 'direct';
      }
      if (!totals[kind]) continue;
      if (report.type === 'outbound-rtp') totals[kind].sent += report.bytesSent ?? 0;
      if (report.type === 'inbound-rtp') totals[kind].received += report.bytesReceived ?? 0;
    }
    return totals;
  }

  close() {
    this.connection.close();
  }
}

/**
 * What every call has: its state, the local camera and microphone, and the controls that act on
 * every link at once (mute, camera, screen sharing). Events: 'state' (detail.state), 'ended'
 * (detail.reason, detail.duration).
 */
export class CallBase extends EventTarget {
  constructor(client, { callId, video, direction }) {
    super();
    this.client = client;
    this.callId = callId;
    this.video = video;
    this.direction = direction;
    this.state = direction === 'outgoing' ? 'calling' : 'ringing';
    this.connectedAt = null;
    this.localStream = null;
    this.muted = false;
    this.cameraOff = false;
    this.screenTrack = null;
  }

  /** The links media flows over (one for a 1:1 call). */
  links() {
    return [];
  }

  /** Thrown into a set-up step that resumes after the call already ended. */
  stopIfEnded() {
    if (this.state === 'ended') throw new ClientError('callEnded', 'the call ended');
  }

  setState(state) {
    if (this.state === state || this.state === 'ended') return;
    this.state = state;
    if (state === 'connected' && this.connectedAt === null) this.connectedAt = Date.now();
    this.dispatchEvent(new CustomEvent('state', { detail: { state } }));
  }

  async media() {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: this.video });
    if (this.state === 'ended') {
      // Hung up while the browser was asking for the camera: nothing may stay on.
      for (const track of stream.getTracks()) track.stop();
      this.stopIfEnded();
    }
    this.localStream = stream;
    return stream;
  }

  setMuted(muted) {
    this.muted = muted;
    for (const track of this.localStream?.getAudioTracks() ?? []) track.enabled = !muted;
  }

  setCameraOff(off) {
    this.cameraOff = off;
    for (const track of this.localStream?.getVideoTracks() ?? []) track.enabled = !off;
  }

  /** Sends the screen instead of the camera, on every link, until the user stops sharing. */
  async shareScreen() {
    const screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
    const [track] = screen.getVideoTracks();
    if (!this.video || !this.localStream || this.state === 'ended') {
      track.stop();
      throw new ClientError('noVideo', 'screen sharing needs a video call in progress');
    }
    const camera = this.localStream.getVideoTracks()[0];
    // One capture at a time: a new share replaces (and stops) the previous one.
    this.screenTrack?.stop();
    this.screenTrack = track;
    await Promise.all(this.links().map((link) => link.videoSender()?.replaceTrack(track)));
    track.addEventListener('ended', () => {
      if (this.screenTrack !== track) return;
      this.screenTrack = null;
      if (this.state === 'ended') return;
      for (const link of this.links()) link.videoSender()?.replaceTrack(camera).catch(() => {});
    });
    return track;
  }

  /** Everything this device captures stops, every link closes. */
  stopMedia() {
    for (const link of this.links()) link.close();
    for (const track of this.localStream?.getTracks() ?? []) track.stop();
    this.screenTrack?.stop();
  }

  /** The traffic of the first link (a 1:1 call's only one). */
  async traffic() {
    const [link] = this.links();
    return link ? link.traffic() : emptyTraffic();
  }
}

/** One call with one peer. Events: those of CallBase, and 'remoteStream' (detail.stream). */
export class Call extends CallBase {
  constructor(client, { callId, peer, video, direction, offer = null }) {
    super(client, { callId, video, direction });
    this.peer = peer;
    this.offer = offer;
    this.link = null;
    this.remoteStream = new MediaStream();
    /** The peer's device this call is with: the caller's, or the callee device that answered. */
    this.peerDevice = null;
    this.offered = direction === 'incoming';
  }

  links() {
    return this.link ? [this.link] : [];
  }

  async openLink() {
    const link = await PeerLink.open(this, { userId: this.peer, deviceId: this.peerDevice });
    if (this.state === 'ended') {
      link.close();
      this.stopIfEnded();
    }
    link.addEventListener('track', ({ detail }) => {
      this.remoteStream = detail.stream;
      this.dispatchEvent(new CustomEvent('remoteStream', { detail }));
    });
    link.addEventListener('connected', () => this.setState('connected'));
    link.addEventListener('failed', () => this.end('the connection failed', { notify: true }));
    this.link = link;
    return link;
  }

  signal(kind, fields = {}) {
    return this.client.sendDirect(this.peer, { type: 'call', call: { callId: this.callId, kind, ...fields } });
  }

  async accept() {
    if (this.state !== 'ringing') return;
    this.setState('connecting');
    try {
      await this.media();
      const link = await this.openLink();
      const sdp = await link.answer(this.offer);
      this.stopIfEnded();
      await this.signal('answer', { sdp });
    } catch (error) {
      if (this.state === 'ended') return;
      this.end(`the call could not start: ${error.message}`, { notify: true });
      throw error;
    }
  }

  decline() {
    if (this.state !== 'ringing') return;
    this.finish('declined');
    this.signal('reject').catch(() => {});
  }

  hangUp() {
    this.end('you hung up', { notify: true });
  }

  /** Stops everything at once; the peer is told afterwards (the media must not wait for the chat server). */
  end(reason, { notify = false, outcome, replaced = false } = {}) {
    if (this.state === 'ended') return;
    this.finish(reason, { outcome, replaced });
    if (notify && this.offered) this.signal('hangup').catch(() => {});
  }

  /**
   * `outcome` names the entry for the conversation: by default 'ended' after a connection,
   * 'declined' or 'unanswered' before; null records nothing. `replaced`: the peer's call takes its place.
   */
  finish(reason, { outcome, replaced = false } = {}) {
    if (this.state === 'ended') return;
    const wasConnected = this.connectedAt !== null;
    const duration = wasConnected ? Date.now() - this.connectedAt : 0;
    this.state = 'ended';
    this.stopMedia();
    this.client.calls.delete(this.callId);
    this.dispatchEvent(new CustomEvent('ended', { detail: { reason, duration, replaced } }));
    this.client.emit('callEnded', { call: this, reason, duration });
    // A call that never left this device is not a call to record.
    const logged = outcome !== undefined ? outcome : wasConnected ? 'ended' : reason === 'declined' ? 'declined' : 'unanswered';
    if (reason !== 'missed' && this.offered && logged) {
      const caller = this.direction === 'outgoing' ? this.client.userId : this.peer;
      this.client.logCall({ conversation: directConversation(this.peer), video: this.video, outcome: logged, duration, caller }).catch(() => {});
    }
  }
}

Object.assign(SecureChatClient.prototype, {
  /**
   * A call's entry in the conversation (this device only; never sent): missed, declined, busy, or
   * how long it lasted.
   */
  logCall({ conversation, video, outcome, duration = 0, caller }) {
    return this.serial(async () => {
      const entry = {
        conversation, sender: { userId: caller, deviceId: caller === this.userId ? this.deviceId : 0 },
        envelope: { id: newMessageId(), type: 'callLog', video, outcome, duration }, sentAt: Date.now(), outgoing: caller === this.userId,
      };
      await this.commit({ archive: [entry] });
      this.emit('message', { message: entry, stored: true });
    });
  },

  /**
   * The STUN and TURN servers the operator configured (GET /v1/turn), kept until a minute before
   * the TURN credentials expire. Without them (an older server, an error) calls still work where
   * the peers can reach each other directly.
   */
  async iceConfiguration() {
    const cached = this.iceCache;
    if (cached && (cached.expiresAt === null || cached.expiresAt - Date.now() > 60_000)) return cached;
    try {
      const answer = await this.api.get('/v1/turn');
      this.iceCache = {
        iceServers: Array.isArray(answer.iceServers) ? answer.iceServers : [],
        iceTransportPolicy: answer.iceTransportPolicy === 'relay' ? 'relay' : 'all',
        expiresAt: Number.isFinite(answer.expiresAt) ? answer.expiresAt : null,
      };
    } catch (error) {
      // Relay-only hides addresses from peers: never fall back to direct connections then.
      if (cached?.iceTransportPolicy === 'relay') throw new ClientError('noRelay', `the call relay is unavailable: ${error.message}`);
      return { iceServers: cached?.iceServers ?? [], iceTransportPolicy: 'all', expiresAt: null };
    }
    return this.iceCache;
  },

  /** A call that rang nobody here (too old, or this device was busy): a notice and an entry. */
  missedCall({ peer, video, at, busy = false, conversation = directConversation(peer) }) {
    this.emit('missedCall', { peer, video, at, busy, conversation });
    this.logCall({ conversation, video, outcome: 'missed', caller: peer }).catch(() => {});
  },

  /** Refuses new calls while one is going on, and calls that could only ring much later. */
  checkCanCall() {
    this.calls ??= new Map();
    if (this.calls.size > 0) throw new ClientError('busy', 'end the current call first');
    // An offer queued while offline would ring much later: calls need the connection.
    if (!this.welcomed) throw new ClientError('offline', 'you are offline: calls need a connection to the server');
  },

  /**
   * Starts a call to a user. Returns the call at once (so the page can show it while the browser
   * asks for the camera); `call.started` settles once the offer is on its way.
   */
  startCall(userId, { video = false } = {}) {
    this.checkCanCall();
    const call = new Call(this, { callId: newCallId(), peer: userId, video, direction: 'outgoing' });
    this.calls.set(call.callId, call);
    call.started = (async () => {
      try {
        await call.media();
        const link = await call.openLink();
        const sdp = await link.offer();
        call.stopIfEnded();
        call.offered = true;
        await call.signal('offer', { sdp, video, createdAt: this.serverNow() });
      } catch (error) {
        if (call.state !== 'ended') call.finish(`the call could not start: ${error.message}`);
        throw error;
      }
    })();
    // Nobody answered in time: the caller gives up (and says so, so the peer stops ringing).
    setTimeout(() => {
      if (call.state === 'calling') call.end('no answer', { notify: true });
    }, CallSettings.ringTimeout);
    call.started.catch(() => {});
    return call;
  },

  /** The server's clock as this device estimates it (from its own sends' acceptance times). */
  serverNow() {
    return Date.now() + (this.clockOffset ?? 0);
  },

  /** When a signal was made, on the server's clock: when the caller says, but never after it was stored. */
  signalMadeAt(signal, message) {
    return Number.isFinite(signal.createdAt) ? Math.min(signal.createdAt, message.sentAt) : message.sentAt;
  },

  /**
   * A `call` message from the conversation (delivered through receive()). Signals count only from
   * the peer of a call this device knows, or (an offer) from a contact.
   */
  handleCallSignal(message) {
    this.calls ??= new Map();
    const signal = message.envelope.call;
    if (!signal || !isCallId(signal.callId) || typeof signal.kind !== 'string') return;
    // A leg of a group call (group-calls.js).
    if (signal.room !== undefined) return this.handleLegSignal(message, signal);
    const fromSelf = message.sender.userId === this.userId;
    const existing = this.calls.get(signal.callId);
    if (existing && !(existing instanceof Call)) return;
    if (fromSelf) {
      // Another device of ours answered or refused: stop ringing here.
      if (existing && existing.direction === 'incoming' && existing.state === 'ringing' && ['answer', 'reject'].includes(signal.kind)) {
        if (signal.kind === 'answer') existing.finish('answered on another device');
        else if (signal.reason === 'busy') existing.finish('you are in a call on another device', { outcome: 'busy' });
        else existing.finish('declined on another device');
      }
      return;
    }
    if (existing && existing.peer !== message.sender.userId) return;
    // Once a call is bound to one device of the peer, only that device may end it.
    if (existing?.peerDevice !== null && existing?.peerDevice !== undefined && existing.peerDevice !== message.sender.deviceId) return;
    switch (signal.kind) {
      case 'offer':
        if (!existing && typeof signal.sdp === 'string') this.receiveOffer(message, signal);
        return;
      case 'answer':
        if (!existing || existing.direction !== 'outgoing' || existing.state !== 'calling' || typeof signal.sdp !== 'string') return;
        existing.peerDevice = message.sender.deviceId;
        existing.setState('connecting');
        existing.link.accept(signal.sdp).catch((error) => existing.end(`the answer was unusable: ${error.message}`, { notify: true }));
        return;
      case 'reject':
        if (existing?.direction !== 'outgoing' || existing.state !== 'calling') return;
        if (signal.reason === 'busy') existing.finish(`${this.displayName(existing.peer)} is in another call`, { outcome: 'busy' });
        else existing.finish('declined');
        return;
      case 'hangup':
        if (!existing) return;
        if (existing.state === 'ringing') {
          existing.finish('missed');
          this.missedCall({ peer: existing.peer, video: existing.video, at: message.sentAt });
        } else {
          existing.finish(`${this.displayName(existing.peer)} hung up`);
        }
        return;
      default:
        // Trickled candidates are not used: descriptions carry every candidate.
    }
  },

  receiveOffer(message, signal) {
    const peer = message.sender.userId;
    const made = this.signalMadeAt(signal, message);
    if (this.serverNow() - made > CallSettings.ringTimeout) {
      this.missedCall({ peer, video: signal.video === true, at: message.sentAt });
      return;
    }
    // Both called each other at once: the call with the smaller id goes on, on both sides, without
    // a ring. The camera goes on only if this side asked for a video call too.
    const crossing = [...this.calls.values()].find((call) => call instanceof Call && call.direction === 'outgoing' && call.peer === peer && call.state === 'calling');
    if (crossing && crossing.callId < signal.callId) return;
    if (crossing) {
      crossing.end('they called you at the same moment', { notify: true, outcome: null, replaced: true });
    } else if (this.calls.size > 0) {
      this.missedCall({ peer, video: signal.video === true, at: message.sentAt, busy: true });
      // One busy reply per caller a minute: an offer cannot be turned into a stream of replies.
      this.busyReplies ??= new Map();
      if (Date.now() - (this.busyReplies.get(peer) ?? -Infinity) >= 60_000) {
        this.busyReplies.set(peer, Date.now());
        this.sendDirect(peer, { type: 'call', call: { callId: signal.callId, kind: 'reject', reason: 'busy' } }).catch(() => {});
      }
      return;
    }
    const video = signal.video === true && (crossing ? crossing.video : true);
    const call = new Call(this, { callId: signal.callId, peer, video, direction: 'incoming', offer: signal.sdp });
    call.peerDevice = message.sender.deviceId;
    this.calls.set(call.callId, call);
    this.emit('incomingCall', { call });
    // Both wanted this call: no second ring.
    if (crossing) {
      call.accept().catch(() => {});
      return;
    }
    setTimeout(() => {
      if (call.state === 'ringing') {
        call.finish('missed');
        this.missedCall({ peer, video: call.video, at: message.sentAt });
      }
    }, Math.max(0, CallSettings.ringTimeout - (this.serverNow() - made)));
  },
});
