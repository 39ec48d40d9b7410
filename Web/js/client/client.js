// One browser device of a SecureChat account: its keys, sessions, rooms and connection, as the
// Swift SDK (Sources/SecureChatClient) does it, so that both read each other's messages. All
// state changes run one at a time (`serial`), compute first and then commit in one IndexedDB
// transaction; on a failed commit the state is reloaded from the database.
import { ApiClient, ApiError, canonicalJSON } from './api.js';
import { LocalStore } from './local-store.js';
import { fromBase64, toBase64 } from '../protocol/byte-coding.js';
import { IdentityKeyPair } from '../protocol/identity-key-pair.js';
import { IdentityKey } from '../protocol/identity-key.js';
import { generateX25519KeyPair } from '../protocol/key-source.js';
import { OneTimePreKey, PreKeyBundle, SignedPreKey, signedPreKeySignatureInput } from '../protocol/pre-key-bundle.js';
import { InMemoryPreKeyStore } from '../protocol/session/pre-key-store.js';
import { Session } from '../protocol/session/session.js';
import { SenderKeyRecord } from '../protocol/sender-keys/sender-key-record.js';
import { SenderKeyState } from '../protocol/sender-keys/sender-key-state.js';
import { SenderKeyStore } from '../protocol/sender-keys/sender-key-store.js';

export const ClientSettings = Object.freeze({
  oneTimePreKeyTarget: 100,
  signedPreKeyLifetime: 7 * 24 * 3600,
  signedPreKeyGrace: 14 * 24 * 3600,
  deviceListLifetime: 10_000,
  memberListLifetime: 30_000,
  receiptBatch: 500,
  refreshMargin: 60_000,
});

export class ClientError extends Error {
  constructor(code, message, detail) {
    super(message);
    this.name = 'ClientError';
    this.code = code;
    this.detail = detail;
  }
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
export const sessionName = (userId, deviceId) => `${userId}.${deviceId}`;

export class SecureChatClient extends EventTarget {
  constructor(store, baseURL) {
    super();
    this.store = store;
    this.baseURL = baseURL;
    this.api = new ApiClient(baseURL, () => this.validToken());
    this.publicAPI = new ApiClient(baseURL, () => Promise.reject(new Error('no token for public routes')));
    this.queue = Promise.resolve();
    this.accessToken = null;
    this.accessTokenExpiresAt = 0;
    this.refreshing = null;
    this.deviceListCache = new Map();
    this.memberCache = new Map();
    this.pendingReceipts = new Map();
    this.inFlight = new Map();
    this.connectionState = 'offline';
    this.socket = null;
    this.closed = false;
    this.sendsDeliveryReceipts = true;
  }

  /** Opens this browser's device, or returns null when none is registered here yet. */
  static async open(baseURL = globalThis.location?.origin) {
    const store = await LocalStore.open();
    const client = new SecureChatClient(store, baseURL);
    if (!(await client.load())) return { client: null, store };
    return { client, store };
  }

  // ---- events

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Runs `operation` after every earlier one: the only way state changes. */
  serial(operation) {
    const result = this.queue.then(operation);
    this.queue = result.catch(() => {});
    return result;
  }

  // ---- loading and committing

  async load() {
    const account = await this.store.get('account');
    if (!account) return false;
    this.account = account;
    // The refresh token has its own record: only refresh() writes it, so no other step's
    // read-modify-write of the account can put back a token that was already used.
    this.tokens = this.tokens ?? (await this.store.get('tokens'));
    this.identity = IdentityKeyPair.fromStorable(await this.store.get('identity'));
    this.cursor = (await this.store.get('cursor')) ?? 0;
    this.preKeys = new InMemoryPreKeyStore();
    for (const [, key] of await this.store.entries('signedPreKey/')) this.preKeys.addSignedPreKey(key);
    for (const [, key] of await this.store.entries('oneTimePreKey/')) this.preKeys.addOneTimePreKey(key);
    for (const [name] of await this.store.entries('acceptedInitiation/')) {
      const [id, ephemeral] = name.slice('acceptedInitiation/'.length).split(':');
      this.preKeys.recordAcceptedInitiation(Uint8Array.from(ephemeral.match(/../g).map((h) => parseInt(h, 16))), Number(id));
    }
    this.sessions = new Map();
    for (const [name, value] of await this.store.entries('session/')) this.sessions.set(name.slice(8), Session.fromStorable(value));
    this.contacts = new Map((await this.store.entries('contact/')).map(([name, value]) => [name.slice(8), value]));
    this.rooms = new Map((await this.store.entries('room/')).map(([name, value]) => [name.slice(5), value]));
    this.senderKeys = new Map();
    for (const [name, value] of await this.store.entries('senderKey/')) this.senderKeys.set(name.slice(10), SenderKeyState.fromStorable(value));
    this.senderKeyStores = new Map();
    const recordsByRoom = new Map();
    for (const [name, value] of await this.store.entries('senderKeyRecord/')) {
      const room = name.slice(16).split('/')[0];
      if (!recordsByRoom.has(room)) recordsByRoom.set(room, []);
      recordsByRoom.get(room).push(SenderKeyRecord.fromStorable(value));
    }
    for (const [room, records] of recordsByRoom) this.senderKeyStores.set(room, new SenderKeyStore(records));
    this.statuses = new Map((await this.store.entries('status/')).map(([name, value]) => [name.slice(7), value]));
    this.avatars = new Map((await this.store.entries('avatar/')).map(([name, value]) => [name.slice(7), value]));
    return true;
  }

  /** Commits a change; on failure, memory is reloaded from the database so both agree again. */
  async commit(change) {
    try {
      return await this.store.commit(change);
    } catch (error) {
      await this.load();
      throw new ClientError('storage', `the browser could not store the change: ${error.message}`);
    }
  }

  get userId() {
    return this.account.userId;
  }

  get deviceId() {
    return this.account.deviceId;
  }

  get username() {
    return this.account.username;
  }

  // ---- registration and login

  /** Registers a new account and this browser as its first device. */
  static async register(baseURL, { username, password, deviceName }) {
    const api = new ApiClient(baseURL, () => Promise.reject(new Error('no token yet')));
    await api.post('/v1/accounts', { username, password }, { auth: false });
    return SecureChatClient.login(baseURL, { username, password, deviceName });
  }

  /** Logs in and registers this browser as a new device of the account (a device has its own keys). */
  static async login(baseURL, { username, password, deviceName }) {
    const api = new ApiClient(baseURL, () => Promise.reject(new Error('no token yet')));
    const tokens = await api.post('/v1/sessions', { username, password }, { auth: false });
    await LocalStore.destroy();
    const store = await LocalStore.open();
    const client = new SecureChatClient(store, baseURL);
    client.accessToken = tokens.accessToken;
    client.accessTokenExpiresAt = tokens.accessTokenExpiresAt;
    try {
      const identity = await IdentityKeyPair.generate();
      const now = nowSeconds();
      const signed = await client.makeSignedPreKey(identity, 1, now);
      const oneTime = await client.makeOneTimePreKeys(1, ClientSettings.oneTimePreKeyTarget);
      const records = new Map([['identity', identity.toStorable()], [`signedPreKey/1`, signed]]);
      for (const key of oneTime) records.set(`oneTimePreKey/${key.id}`, key);
      // The private keys are stored before the public ones leave the browser.
      await store.commit({ records });
      const device = await client.api.post('/v1/devices', {
        name: deviceName,
        identityKey: toBase64(identity.publicKey.bytes),
        signedPreKey: toBase64(client.encodeSignedPreKey(signed)),
        oneTimePreKeys: oneTime.map((key) => toBase64(new OneTimePreKey(key).encode())),
      });
      const account = {
        userId: tokens.userId, username: tokens.username, deviceId: device.deviceId, deviceName,
        nextOneTimePreKeyId: ClientSettings.oneTimePreKeyTarget + 1, nextSignedPreKeyId: 2, currentSignedPreKeyId: 1,
      };
      const refresh = { refreshToken: tokens.refreshToken, refreshTokenExpiresAt: tokens.refreshTokenExpiresAt };
      await store.commit({ records: new Map([['account', account], ['tokens', refresh], ['cursor', 0]]) });
      await client.load();
      return client;
    } catch (error) {
      store.close();
      await LocalStore.destroy();
      throw error;
    }
  }

  async makeSignedPreKey(identity, id, createdAt) {
    const pair = await generateX25519KeyPair();
    const signature = await identity.sign(signedPreKeySignatureInput(id, pair.publicKey, createdAt));
    return { id, privateKey: pair.privateKey, publicKey: pair.publicKey, createdAt, signature };
  }

  encodeSignedPreKey(key) {
    return new SignedPreKey({ id: key.id, publicKey: key.publicKey, createdAt: key.createdAt, signature: key.signature }).encode();
  }

  async makeOneTimePreKeys(firstId, count) {
    const keys = [];
    for (let id = firstId; id < firstId + count; id++) {
      const pair = await generateX25519KeyPair();
      keys.push({ id, privateKey: pair.privateKey, publicKey: pair.publicKey });
    }
    return keys;
  }

  /** Tops the server's one-time prekeys up to 100; ids are never reused. */
  async replenishOneTimePreKeys(serverCount) {
    const missing = ClientSettings.oneTimePreKeyTarget - Math.max(0, serverCount);
    if (missing <= 0) return;
    const keys = await this.makeOneTimePreKeys(this.account.nextOneTimePreKeyId, missing);
    const account = { ...this.account, nextOneTimePreKeyId: this.account.nextOneTimePreKeyId + missing };
    const records = new Map([['account', account]]);
    for (const key of keys) records.set(`oneTimePreKey/${key.id}`, key);
    await this.commit({ records });
    this.account = account;
    for (const key of keys) this.preKeys.addOneTimePreKey(key);
    await this.api.post(`/v1/devices/${this.deviceId}/one-time-prekeys`, { oneTimePreKeys: keys.map((key) => toBase64(new OneTimePreKey(key).encode())) });
  }

  /** Replaces the signed prekey after 7 days; keeps replaced ones 14 more days (checked at each welcome). */
  async maintainSignedPreKey() {
    const now = nowSeconds();
    const records = new Map();
    for (const key of [...this.preKeys.signedPreKeys.values()]) {
      if (key.id !== this.account.currentSignedPreKeyId && now - Number(key.createdAt) > ClientSettings.signedPreKeyLifetime + ClientSettings.signedPreKeyGrace) {
        records.set(`signedPreKey/${key.id}`, null);
        for (const [name] of await this.store.entries(`acceptedInitiation/${key.id}:`)) records.set(name, null);
        this.preKeys.removeSignedPreKey(key.id);
      }
    }
    const current = this.preKeys.signedPreKey(this.account.currentSignedPreKeyId);
    let replacement = null;
    if (!current || now - Number(current.createdAt) > ClientSettings.signedPreKeyLifetime) {
      replacement = await this.makeSignedPreKey(this.identity, this.account.nextSignedPreKeyId, now);
      const account = { ...this.account, nextSignedPreKeyId: replacement.id + 1, currentSignedPreKeyId: replacement.id };
      records.set(`signedPreKey/${replacement.id}`, replacement);
      records.set('account', account);
      this.account = account;
      this.preKeys.addSignedPreKey(replacement);
    }
    if (records.size > 0) await this.commit({ records });
    if (replacement) await this.api.put(`/v1/devices/${this.deviceId}/signed-prekey`, { signedPreKey: toBase64(this.encodeSignedPreKey(replacement)) });
  }

  // ---- tokens

  /** An access token valid for at least a minute; refreshes are single-flight. */
  async validToken() {
    if (this.accessToken && this.accessTokenExpiresAt - Date.now() > ClientSettings.refreshMargin) return this.accessToken;
    if (!this.refreshing) {
      this.refreshing = this.refresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async refresh() {
    let tokens;
    try {
      tokens = await this.publicAPI.post('/v1/sessions/refresh', { refreshToken: this.tokens.refreshToken }, { auth: false });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) this.endSession(error.message);
      throw error;
    }
    // The used token is dead on the server from now on: memory takes the next one at once, even
    // if storing it fails (the store is retried with the next refresh).
    this.tokens = { refreshToken: tokens.refreshToken, refreshTokenExpiresAt: tokens.refreshTokenExpiresAt };
    this.accessToken = tokens.accessToken;
    this.accessTokenExpiresAt = tokens.accessTokenExpiresAt;
    await this.store.commit({ records: new Map([['tokens', this.tokens]]) });
    return this.accessToken;
  }

  endSession(reason) {
    if (this.connectionState === 'ended') return;
    this.closed = true;
    this.socket?.close(1000);
    this.setConnectionState('ended');
    this.emit('sessionEnded', { reason });
  }

  /** Ends the server session, removes this device from the account and wipes the browser's copy. */
  async logout() {
    try {
      await this.api.delete(`/v1/devices/${this.deviceId}`);
      await this.api.delete('/v1/sessions/current');
    } catch (error) {
      // Unauthorized: the session is over anyway. Anything else (offline): keep the device, so
      // that its keys and the token that can remove it are not lost; the caller says so.
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
    }
    this.closed = true;
    this.socket?.close(1000);
    this.store.close();
    await LocalStore.destroy();
  }

  // ---- contacts and trust (PROTOCOL.md §14.5)

  async resolve(username) {
    const wanted = username.trim().toLowerCase();
    for (const contact of this.contacts.values()) if (contact.username === wanted) return contact.userId;
    try {
      return (await this.api.get(`/v1/users?username=${encodeURIComponent(wanted)}`)).userId;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) throw new ClientError('unknownUser', `there is no user ${wanted}`);
      throw error;
    }
  }

  /** The accepted devices of a user (cached 10 s); throws identityChanged while a change is pending. */
  async devices(userId) {
    const cached = this.deviceListCache.get(userId);
    const contact = this.contacts.get(userId);
    if (cached && Date.now() - cached.at < ClientSettings.deviceListLifetime && contact && !hasPendingChange(contact)) return cached.devices;
    return this.currentDevices(userId);
  }

  async currentDevices(userId) {
    const listing = await this.api.get(`/v1/users/${userId}/devices`);
    const seen = Object.fromEntries(listing.devices.map((device) => [device.deviceId, device.identityKey]));
    const previous = this.contacts.get(userId);
    const contact = previous ? { ...previous, devices: { ...previous.devices } } : { userId, username: listing.username, devices: {}, verified: false };
    contact.username = listing.username;
    if (!previous || (userId === this.userId && Object.keys(previous.devices).length === 0)) {
      contact.devices = { ...seen };
      delete contact.changedDevices;
    } else {
      contact.devices = Object.fromEntries(Object.entries(contact.devices).filter(([id, key]) => seen[id] === key));
      const changed = Object.fromEntries(Object.entries(seen).filter(([id, key]) => contact.devices[id] !== key));
      if (Object.keys(changed).length > 0) contact.changedDevices = changed;
      else delete contact.changedDevices;
    }
    if (canonicalJSON(contact) !== canonicalJSON(previous ?? null)) {
      await this.commit({ records: new Map([[`contact/${userId}`, contact]]) });
      this.contacts.set(userId, contact);
      if (hasPendingChange(contact)) this.emit('identityChanged', { contact });
    }
    if (hasPendingChange(contact)) throw new ClientError('identityChanged', `${contact.username}'s devices changed: compare safety numbers, then accept`, { userId });
    const devices = listing.devices.filter((device) => contact.devices[device.deviceId] === device.identityKey).map((device) => device.deviceId);
    this.deviceListCache.set(userId, { at: Date.now(), devices });
    return devices;
  }

  /**
   * Accepts a contact's changed devices. `reviewed` is the change the user was shown: if more
   * changed since, nothing is accepted and the user must look again.
   */
  async acceptIdentityChange(userId, reviewed) {
    return this.serial(async () => {
      const previous = this.contacts.get(userId);
      if (!previous) return;
      if (reviewed !== undefined && canonicalJSON(reviewed ?? {}) !== canonicalJSON(previous.changedDevices ?? {})) {
        throw new ClientError('identityChanged', `${previous.username}'s keys changed again while you were looking: review them anew`, { userId });
      }
      const contact = { ...previous, devices: { ...previous.devices, ...(previous.changedDevices ?? {}) }, verified: false };
      delete contact.changedDevices;
      await this.commit({ records: new Map([[`contact/${userId}`, contact]]) });
      this.contacts.set(userId, contact);
      this.deviceListCache.delete(userId);
      this.emit('contactChanged', { contact });
    });
  }

  async markVerified(userId, verified = true) {
    return this.serial(async () => {
      const previous = this.contacts.get(userId);
      if (!previous) throw new ClientError('unknownUser', 'not a contact yet');
      const contact = { ...previous, verified };
      await this.commit({ records: new Map([[`contact/${userId}`, contact]]) });
      this.contacts.set(userId, contact);
      this.emit('contactChanged', { contact });
    });
  }

  /** The identity keys to compare with a contact: one per accepted device (and pending ones, marked). */
  contactKeys(userId) {
    const contact = this.contacts.get(userId);
    if (!contact) return [];
    const keys = Object.entries(contact.devices).map(([deviceId, key]) => ({ deviceId: Number(deviceId), key: new IdentityKey(fromBase64(key)), pending: false }));
    for (const [deviceId, key] of Object.entries(contact.changedDevices ?? {})) keys.push({ deviceId: Number(deviceId), key: new IdentityKey(fromBase64(key)), pending: true });
    return keys;
  }

  displayName(userId) {
    if (userId === this.userId) return this.username;
    const contact = this.contacts.get(userId);
    if (contact && contact.username !== userId) return contact.username;
    for (const cached of this.memberCache.values()) {
      const member = cached.members.find((m) => m.userId === userId);
      if (member) return member.username;
    }
    return contact?.username ?? userId;
  }

  // ---- sessions

  /** Starts sessions (X3DH) with every listed device that has none: one bundle claim per user. */
  async ensureSessions(recipients) {
    const missing = recipients.filter(({ userId, deviceId }) => !this.sessions.has(sessionName(userId, deviceId)));
    const byUser = new Map();
    for (const recipient of missing) {
      if (!byUser.has(recipient.userId)) byUser.set(recipient.userId, []);
      byUser.get(recipient.userId).push(recipient.deviceId);
    }
    const records = new Map();
    const created = [];
    for (const [userId, deviceIds] of byUser) {
      const claim = await this.api.post(`/v1/users/${userId}/bundles`);
      const contact = this.contacts.get(userId);
      for (const deviceId of deviceIds) {
        if (this.sessions.has(sessionName(userId, deviceId))) continue;
        const bundle = claim.devices.find((device) => device.deviceId === deviceId);
        if (!bundle) throw new ClientError('noDevices', `device ${deviceId} of ${this.displayName(userId)} has no keys on the server`);
        if (contact?.devices[deviceId] !== bundle.identityKey) throw new ClientError('identityChanged', `${this.displayName(userId)}'s device ${deviceId} changed its identity key`, { userId });
        const verified = await PreKeyBundle.verified({
          identityKey: new IdentityKey(fromBase64(bundle.identityKey)),
          signedPreKey: SignedPreKey.decode(fromBase64(bundle.signedPreKey)),
          oneTimePreKey: bundle.oneTimePreKey ? OneTimePreKey.decode(fromBase64(bundle.oneTimePreKey)) : null,
        });
        const { session } = await Session.initiate(this.identity, verified);
        created.push([sessionName(userId, deviceId), session]);
        records.set(`session/${sessionName(userId, deviceId)}`, session.toStorable());
      }
    }
    if (records.size > 0) {
      await this.commit({ records });
      for (const [name, session] of created) this.sessions.set(name, session);
    }
  }

  // ---- per-device status of outgoing messages (sent, delivered, read)

  /** 'pending', 'sent', 'delivered', 'read' or 'failed' for this device's archived messages; null otherwise. */
  statusOf(id) {
    return this.statuses.get(id) ?? null;
  }

  close() {
    this.closed = true;
    this.socket?.close(1000);
  }
}

export function hasPendingChange(contact) {
  return contact.changedDevices !== undefined && Object.keys(contact.changedDevices).length > 0;
}

