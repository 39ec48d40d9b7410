// 1:1 voice and video calls (WebRTC). Offers, answers, hang-ups and refusals travel as `call`
// content (PROTOCOL.md §14.2) inside the Double Ratchet, so the session descriptions — and the
// DTLS fingerprints in them, which pin the media encryption — reach the peer authenticated by the
// identity keys of the conversation: the server relays ciphertext and cannot sit in the middle.
//
// Candidates are gathered before the description is sent (no trickle): one message each way, and
// nothing half-negotiated waits in a queue. A signal older than `ringTimeout` rings nobody.
import { SecureChatClient, ClientError } from './client.js';
import { directConversation } from './messaging.js';
import { newMessageId } from './content.js';
import { toBase64URL } from '../protocol/byte-coding.js';
import { randomBytes } from '../protocol/secret-bytes.js';

export const CallSettings = Object.freeze({
  ringTimeout: 60_000,
  gatheringTimeout: 4_000,
});

/** One call with one peer. Events: 'state' (detail.state), 'remoteStream', 'ended' (detail.reason). */
export class Call extends EventTarget {
  constructor(client, { callId, peer, video, direction, offer = null }) {
    super();
    this.client = client;
    this.callId = callId;
    this.peer = peer;
    this.video = video;
    this.direction = direction;
    this.offer = offer;
    this.state = direction === 'outgoing' ? 'calling' : 'ringing';
    this.connectedAt = null;
    this.localStream = null;
    this.remoteStream = new MediaStream();
    this.muted = false;
    this.cameraOff = false;
    this.connection = null;
    this.screenTrack = null;
    /** The peer's device this call is with: the caller's, or the callee device that answered. */
    this.peerDevice = null;
    this.offered = direction === 'incoming';
  }

  /** Thrown into a set-up step that resumes after the call already ended. */
  stopIfEnded() {
    if (this.state === 'ended') throw new ClientError('callEnded', 'the call ended');
  }

  setState(state) {
    if (this.state === state || this.state === 'ended') return;
    this.state = state;
    if (state === 'connected') this.connectedAt = Date.now();
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

  async prepareConnection() {
    const { iceServers, iceTransportPolicy } = await this.client.iceConfiguration();
    this.stopIfEnded();
    const connection = new RTCPeerConnection({ iceServers, iceTransportPolicy, bundlePolicy: 'max-bundle' });
    for (const track of this.localStream.getTracks()) connection.addTrack(track, this.localStream);
    connection.ontrack = (event) => {
      this.remoteStream.addTrack(event.track);
      this.dispatchEvent(new CustomEvent('remoteStream', { detail: { stream: this.remoteStream } }));
    };
    connection.onconnectionstatechange = () => {
      if (connection.connectionState === 'connected') this.setState('connected');
      if (connection.connectionState === 'failed') this.end('the connection failed', { notify: true });
    };
    this.connection = connection;
    return connection;
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

  signal(kind, fields = {}) {
    return this.client.sendDirect(this.peer, { type: 'call', call: { callId: this.callId, kind, ...fields } });
  }

  async accept() {
    if (this.state !== 'ringing') return;
    this.setState('connecting');
    try {
      await this.media();
      const connection = await this.prepareConnection();
      await connection.setRemoteDescription({ type: 'offer', sdp: this.offer });
      await connection.setLocalDescription(await connection.createAnswer());
      const sdp = await this.gathered();
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
  end(reason, { notify = false } = {}) {
    if (this.state === 'ended') return;
    this.finish(reason);
    if (notify && this.offered) this.signal('hangup').catch(() => {});
  }

  finish(reason) {
    if (this.state === 'ended') return;
    const wasConnected = this.connectedAt !== null;
    const duration = wasConnected ? Date.now() - this.connectedAt : 0;
    this.state = 'ended';
    this.connection?.close();
    for (const track of this.localStream?.getTracks() ?? []) track.stop();
    this.screenTrack?.stop();
    this.client.calls.delete(this.callId);
    this.dispatchEvent(new CustomEvent('ended', { detail: { reason, duration } }));
    this.client.emit('callEnded', { call: this, reason, duration });
    // A call that never left this device is not a call to record.
    if (reason !== 'missed' && this.offered) {
      const outcome = wasConnected ? 'ended' : reason === 'declined' ? 'declined' : 'unanswered';
      this.client.logCall({ peer: this.peer, video: this.video, outcome, duration, caller: this.direction === 'outgoing' ? this.client.userId : this.peer }).catch(() => {});
    }
  }

  setMuted(muted) {
    this.muted = muted;
    for (const track of this.localStream?.getAudioTracks() ?? []) track.enabled = !muted;
  }

  setCameraOff(off) {
    this.cameraOff = off;
    for (const track of this.localStream?.getVideoTracks() ?? []) track.enabled = !off;
  }

  /** Sends the screen instead of the camera until the user stops sharing. */
  async shareScreen() {
    const screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
    const [track] = screen.getVideoTracks();
    const sender = this.connection?.getSenders().find((candidate) => candidate.track?.kind === 'video');
    if (!sender || this.state === 'ended') {
      track.stop();
      throw new ClientError('noVideo', 'screen sharing needs a video call in progress');
    }
    const camera = this.localStream.getVideoTracks()[0];
    // One capture at a time: a new share replaces (and stops) the previous one.
    this.screenTrack?.stop();
    this.screenTrack = track;
    await sender.replaceTrack(track);
    track.addEventListener('ended', () => {
      if (this.screenTrack === track) this.screenTrack = null;
      if (this.state !== 'ended') sender.replaceTrack(camera).catch(() => {});
    });
    return track;
  }

  /**
   * Bytes received and sent per media kind, and the route of the selected candidate pair
   * ('direct', or 'relay' through the TURN server), from the connection's statistics.
   */
  async traffic() {
    const totals = { audio: { sent: 0, received: 0 }, video: { sent: 0, received: 0 }, route: null };
    if (!this.connection) return totals;
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
}

Object.assign(SecureChatClient.prototype, {
  /**
   * A call's entry in the conversation (this device only; never sent): missed, declined, or how
   * long it lasted.
   */
  logCall({ peer, video, outcome, duration = 0, caller }) {
    return this.serial(async () => {
      const entry = {
        conversation: directConversation(peer), sender: { userId: caller, deviceId: caller === this.userId ? this.deviceId : 0 },
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

  missedCall({ peer, video, at, busy = false }) {
    this.emit('missedCall', { peer, video, at, busy });
    this.logCall({ peer, video, outcome: 'missed', caller: peer }).catch(() => {});
  },

  /** Starts a call to a user: media first, then the offer, encrypted like any direct message. */
  /**
   * Starts a call to a user. Returns the call at once (so the page can show it while the browser
   * asks for the camera); `call.started` settles once the offer is on its way.
   */
  startCall(userId, { video = false } = {}) {
    this.calls ??= new Map();
    if (this.calls.size > 0) throw new ClientError('busy', 'end the current call first');
    // An offer queued while offline would ring much later: calls need the connection.
    if (!this.welcomed) throw new ClientError('offline', 'you are offline: calls need a connection to the server');
    const call = new Call(this, { callId: toBase64URL(randomBytes(16)), peer: userId, video, direction: 'outgoing' });
    this.calls.set(call.callId, call);
    call.started = (async () => {
      try {
        await call.media();
        const connection = await call.prepareConnection();
        await connection.setLocalDescription(await connection.createOffer());
        const sdp = await call.gathered();
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

  /**
   * A `call` message from the conversation (delivered through receive()). Signals count only from
   * the peer of a call this device knows, or (an offer) from a contact while no call is going on.
   */
  handleCallSignal(message) {
    this.calls ??= new Map();
    const signal = message.envelope.call;
    if (!signal || typeof signal.callId !== 'string' || typeof signal.kind !== 'string') return;
    const fromSelf = message.sender.userId === this.userId;
    const existing = this.calls.get(signal.callId);
    if (fromSelf) {
      // Another device of ours answered or refused: stop ringing here.
      if (existing && existing.direction === 'incoming' && existing.state === 'ringing' && ['answer', 'reject'].includes(signal.kind)) {
        existing.finish(signal.kind === 'answer' ? 'answered on another device' : 'declined on another device');
      }
      return;
    }
    if (existing && existing.peer !== message.sender.userId) return;
    // Once a call is bound to one device of the peer, only that device may end it.
    if (existing?.peerDevice !== null && existing?.peerDevice !== undefined && existing.peerDevice !== message.sender.deviceId) return;
    switch (signal.kind) {
      case 'offer': {
        if (existing || typeof signal.sdp !== 'string') return;
        // Judged on the server's clock: when the caller made it if it says so, else when it was stored.
        const made = Number.isFinite(signal.createdAt) ? Math.min(signal.createdAt, message.sentAt) : message.sentAt;
        const stale = this.serverNow() - made > CallSettings.ringTimeout;
        if (stale || this.calls.size > 0) {
          this.missedCall({ peer: message.sender.userId, video: signal.video === true, at: message.sentAt, busy: !stale });
          return;
        }
        const call = new Call(this, { callId: signal.callId, peer: message.sender.userId, video: signal.video === true, direction: 'incoming', offer: signal.sdp });
        call.peerDevice = message.sender.deviceId;
        this.calls.set(call.callId, call);
        this.emit('incomingCall', { call });
        setTimeout(() => {
          if (call.state === 'ringing') {
            call.finish('missed');
            this.missedCall({ peer: call.peer, video: call.video, at: message.sentAt });
          }
        }, Math.max(0, CallSettings.ringTimeout - (this.serverNow() - made)));
        return;
      }
      case 'answer':
        if (!existing || existing.direction !== 'outgoing' || existing.state !== 'calling' || typeof signal.sdp !== 'string') return;
        existing.peerDevice = message.sender.deviceId;
        existing.setState('connecting');
        existing.connection.setRemoteDescription({ type: 'answer', sdp: signal.sdp }).catch((error) => existing.end(`the answer was unusable: ${error.message}`, { notify: true }));
        return;
      case 'reject':
        if (existing?.direction === 'outgoing' && existing.state === 'calling') existing.finish('declined');
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
});

