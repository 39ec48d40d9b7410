// The WebSocket connection (docs/API.md §5): hello with the stored cursor, frames handled strictly
// one after another, the durable outbox written after welcome, reconnection with backoff.
import { ApiError, canonicalJSON } from './api.js';
import { SecureChatClient, ClientError } from './client.js';

const backoff = (attempt) => Math.min(30, 0.5 * 2 ** Math.min(attempt, 10)) * (0.75 + Math.random() / 2) * 1000;

Object.assign(SecureChatClient.prototype, {
  setConnectionState(state) {
    if (this.connectionState === state) return;
    this.connectionState = state;
    this.emit('connection', { state });
  },

  /** Connects and stays connected (with backoff) until close(), logout or the session ends. */
  start() {
    if (this.running) return;
    this.running = true;
    this.closed = false;
    const loop = async () => {
      let attempt = 0;
      while (!this.closed) {
        this.setConnectionState('connecting');
        let welcomed = false;
        try {
          welcomed = await this.connectOnce();
        } catch (error) {
          if (error instanceof ApiError && error.status === 401) this.endSession(error.message);
          this.emit('connectionError', { message: error.message });
        }
        if (this.closed) break;
        this.setConnectionState('offline');
        attempt = welcomed ? 0 : attempt + 1;
        await new Promise((resolve) => {
          this.wakeReconnect = resolve;
          setTimeout(resolve, backoff(attempt));
        });
      }
      this.running = false;
    };
    loop();
  },

  /** Skips the backoff wait (the page became visible, the network came back). */
  reconnectNow() {
    this.wakeReconnect?.();
  },

  /** One socket's life; resolves to whether it got as far as welcome. */
  async connectOnce() {
    const token = await this.validToken();
    const url = new URL('/v1/ws', this.baseURL);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url);
    this.socket = socket;
    let welcomed = false;
    let frames = Promise.resolve();
    await new Promise((resolve) => {
      socket.onopen = () => {
        socket.send(canonicalJSON({ type: 'hello', token, deviceId: this.deviceId, resumeAfter: this.cursor }));
      };
      socket.onmessage = (event) => {
        // Strictly in order: each frame's handling finishes before the next one starts. After a
        // handler fails, the rest of this socket's frames are dropped and the socket closed: an
        // ack for a later delivery would delete the one that failed (acks are cumulative), so
        // the server must send it again on the next connection.
        frames = frames.then(() => this.serial(async () => {
          if (this.socket !== socket || socket.failed) return;
          let frame;
          try {
            frame = JSON.parse(event.data);
          } catch {
            return;
          }
          if (!isValidServerFrame(frame)) return;
          try {
            if (frame.type === 'welcome') welcomed = true;
            await this.handleFrame(frame, socket, welcomed);
          } catch (error) {
            socket.failed = true;
            socket.close(4000, 'client error');
            this.emit('connectionError', { message: error.message });
          }
        }));
      };
      socket.onclose = () => resolve();
      socket.onerror = () => {};
    });
    await frames;
    if (this.socket === socket) {
      this.socket = null;
      this.welcomed = false;
      this.caughtUp = false;
      this.inFlight.clear();
    }
    return welcomed;
  },

  async handleFrame(frame, socket, welcomed) {
    switch (frame.type) {
      case 'welcome':
        this.welcomed = true;
        if (frame.lastSeq < this.cursor) {
          // The server's numbering restarted (a restore): start over from 0, as it does.
          await this.commit({ records: new Map([['cursor', 0]]) });
          this.cursor = 0;
        }
        try {
          await this.maintainSignedPreKey();
        } finally {
          // Queued messages go out even when the prekey upkeep failed (the socket then closes
          // and the upkeep is tried again on the next connection).
          await this.sendOutbox();
        }
        return;
      case 'caughtUp':
        this.caughtUp = true;
        this.setConnectionState('online');
        this.flushReceipts();
        return;
      case 'message':
        return this.receive(frame);
      case 'roomEvent':
        return this.receiveRoomEvent(frame);
      case 'ephemeral':
        return this.receiveEphemeral(frame);
      case 'accepted':
        return this.accepted(frame);
      case 'preKeysLow':
        return this.replenishOneTimePreKeys(frame.count);
      case 'error':
        if (!welcomed) {
          if (frame.code === 'unauthorized' || frame.code === 'unknown_device') this.endSession(frame.message);
          else if (frame.code === 'token_expired') this.accessTokenExpiresAt = 0;
          else if (frame.code === 'duplicate_connection') this.endSession('this device is connected elsewhere');
          return;
        }
        if (frame.code === 'unauthorized' || frame.code === 'unknown_device' || frame.code === 'duplicate_connection') {
          this.endSession(frame.message);
          return;
        }
        return this.refused(frame);
      default:
        // Frames this client does not know are ignored (API.md §5.3).
    }
  },

  acknowledge(seq) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(canonicalJSON({ type: 'ack', seq }));
  },

  /**
   * Writes every queued frame not already in flight, oldest first (pipelined). Never throws: a
   * frame that cannot be written now stays queued for the next connection.
   */
  async sendOutbox() {
    const socket = this.socket;
    if (!this.welcomed || socket?.readyState !== WebSocket.OPEN) return;
    let entries;
    try {
      entries = await this.store.outbox();
    } catch {
      return;
    }
    for (const entry of entries) {
      // The socket may have closed while the outbox was read; the next one writes it all again.
      if (this.socket !== socket || socket.readyState !== WebSocket.OPEN) return;
      if (this.inFlight.has(entry.id)) continue;
      this.inFlight.set(entry.id, entry.row);
      socket.send(entry.text);
    }
  },

  async accepted(frame) {
    const row = this.inFlight.get(frame.id);
    if (row === undefined) return;
    // A fresh acceptance carries the server's clock of a moment ago: enough to judge call offers.
    if (!frame.duplicate && Number.isFinite(frame.sentAt)) this.clockOffset = frame.sentAt - Date.now();
    this.inFlight.delete(frame.id);
    const records = new Map();
    const ours = this.statuses.get(frame.id) === 'pending';
    if (ours) records.set(`status/${frame.id}`, 'sent');
    await this.commit({ outboxDelete: [row], records });
    if (ours) this.statuses.set(frame.id, 'sent');
    this.emit('accepted', { id: frame.id, messageId: frame.messageId });
  },

  /** A refused send: dropped from the outbox and remembered as failed. */
  async sendFailed(row, id, message) {
    const records = new Map();
    if (this.statuses.has(id)) records.set(`status/${id}`, 'failed');
    await this.commit({ outboxDelete: [row], records });
    if (this.statuses.has(id)) this.statuses.set(id, 'failed');
    this.emit('sendFailed', { id, message });
  },

  async refused(frame) {
    const row = this.inFlight.get(frame.id);
    if (frame.id === undefined || row === undefined) {
      this.emit('serverError', { code: frame.code, message: frame.message });
      return;
    }
    this.inFlight.delete(frame.id);
    if (frame.code === 'unavailable' || frame.code === 'rate_limited') return;
    if (frame.code === 'unknown_device') {
      await this.resendWithoutDeletedDevices(row, frame.id);
      return;
    }
    await this.sendFailed(row, frame.id, frame.message);
  },

  /** A recipient device was deleted: the same ciphertexts go again without it, under the same id. */
  async resendWithoutDeletedDevices(row, id) {
    const entry = (await this.store.outbox()).find((candidate) => candidate.row === row);
    if (!entry) return;
    const frame = JSON.parse(entry.text);
    if (!frame.recipients) return;
    const existing = new Set();
    for (const userId of new Set(frame.recipients.map((r) => r.userId))) {
      this.deviceListCache.delete(userId);
      const listing = await this.api.get(`/v1/users/${userId}/devices`);
      for (const device of listing.devices) existing.add(`${userId}.${device.deviceId}`);
    }
    frame.recipients = frame.recipients.filter((r) => existing.has(`${r.userId}.${r.deviceId}`));
    if (frame.recipients.length === 0) {
      await this.sendFailed(row, id, "none of its recipients' devices exist any more");
      return;
    }
    await this.commit({ outboxReplace: [{ row, id, text: canonicalJSON(frame) }] });
    await this.sendOutbox();
  },
});

const isCount = (value) => Number.isSafeInteger(value) && value >= 0;
const isTime = (value) => Number.isFinite(value) && Math.abs(value) < 1e15;
const isRoomCode = (value) => typeof value === 'string' && /^[a-z0-9]{1,64}$/.test(value);
const isDevice = (value) => value !== null && typeof value === 'object' && typeof value.userId === 'string' && /^[a-z0-9]{1,64}$/.test(value.userId) && isCount(value.deviceId);

/** The shape of each server frame this client uses (API.md §5.3); anything else is ignored, as the Swift SDK does. */
export function isValidServerFrame(frame) {
  if (frame === null || typeof frame !== 'object') return false;
  switch (frame.type) {
    case 'welcome':
      return isCount(frame.lastSeq) && isCount(frame.deviceId);
    case 'caughtUp':
      return isCount(frame.seq);
    case 'message':
      return isCount(frame.seq) && isDevice(frame.sender) && typeof frame.ciphertext === 'string' && isTime(frame.sentAt)
        && (frame.room === undefined || isRoomCode(frame.room));
    case 'roomEvent':
      return isCount(frame.seq) && isRoomCode(frame.room) && typeof frame.userId === 'string' && typeof frame.change === 'string' && isTime(frame.at);
    case 'ephemeral':
      return isDevice(frame.sender) && typeof frame.payload === 'string' && (frame.room === undefined || isRoomCode(frame.room));
    case 'accepted':
      return typeof frame.id === 'string';
    case 'preKeysLow':
      return isCount(frame.count);
    case 'error':
      return typeof frame.code === 'string' && typeof frame.message === 'string' && (frame.id === undefined || typeof frame.id === 'string');
    default:
      return false;
  }
}
