// The SecureChat web application: sign-in, the conversation list, the chat view and the panels
// around it. One browser profile is one device of an account; the page that holds the device's
// lock is the only one that connects (another tab shows a notice instead).
import { SecureChatClient, ApiError, ClientError, hasPendingChange, directConversation, roomConversation } from '../client/index.js';
import { LocalStore } from '../client/local-store.js';
import { h, replaceChildren } from './dom.js';
import { ChatView } from './chat-view.js';
import { openDialog, confirmDialog, identityWarning, safetyNumberDialog, membersPanel, profileDialog } from './panels.js';
import { avatar } from './avatar.js';
import { showCall } from './call-view.js';

const app = document.getElementById('app');
const baseURL = location.origin;

export const state = {
  client: null,
  conversations: [],
  selected: null,
  unread: new Map(),
  chat: null,
  warned: new Set(),
};

// ---- theme (light, dark, or the system's), remembered in this browser

function applyTheme() {
  const stored = localStorage.getItem('securechat-theme');
  document.documentElement.dataset.theme = stored ?? 'system';
}

function toggleTheme() {
  const order = ['system', 'light', 'dark'];
  const current = localStorage.getItem('securechat-theme') ?? 'system';
  const next = order[(order.indexOf(current) + 1) % order.length];
  localStorage.setItem('securechat-theme', next);
  applyTheme();
  toast(`Theme: ${next}`);
}

export function toast(text, kind = 'info') {
  const item = h('div', { class: ['toast', kind], role: kind === 'error' ? 'alert' : 'status' }, text);
  document.getElementById('toasts').append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
}

export function describeError(error) {
  if (error instanceof ApiError || error instanceof ClientError) return error.message;
  return `Something went wrong: ${error.message}`;
}

// ---- start

async function boot() {
  applyTheme();
  if (!window.isSecureContext || !crypto.subtle) {
    replaceChildren(app, h('main', { class: 'notice' }, h('h1', {}, 'SecureChat needs a secure page'), h('p', {}, 'Open SecureChat over https:// (or on localhost): browsers allow the encryption it uses only there.')));
    return;
  }
  if (!(await supportsCurves())) {
    replaceChildren(app, h('main', { class: 'notice' }, h('h1', {}, 'This browser is too old'), h('p', {}, 'SecureChat needs Ed25519 and X25519 in WebCrypto (Chrome 137, Firefox 130, Safari 17 or later).')));
    return;
  }
  // One tab drives the device: two would reuse ratchet keys.
  if (navigator.locks) {
    navigator.locks.request('securechat-device', { ifAvailable: true }, async (lock) => {
      if (!lock) {
        replaceChildren(app, h('main', { class: 'notice' }, h('h1', {}, 'SecureChat is open in another tab'), h('p', {}, 'Use that tab, or close it and reload this one.')));
        return;
      }
      try {
        await start();
      } catch (error) {
        showStartFailure(error);
        return;
      }
      // Held for the page's lifetime.
      await new Promise(() => {});
    });
  } else {
    await start();
  }
}

async function supportsCurves() {
  try {
    await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']);
    await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign']);
    return true;
  } catch {
    return false;
  }
}

async function start() {
  const { client, store } = await SecureChatClient.open(baseURL);
  if (!client) {
    store.close();
    showAuth();
    return;
  }
  await enter(client);
}

// ---- sign in and registration

function showAuth(mode = 'login') {
  const error = h('p', { class: 'form-error', role: 'alert', 'data-test': 'auth-error' });
  const username = h('input', { id: 'auth-username', name: 'username', autocomplete: 'username', required: true, minlength: 3, maxlength: 32, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { id: 'auth-password', name: 'password', type: 'password', autocomplete: mode === 'login' ? 'current-password' : 'new-password', required: true, minlength: mode === 'login' ? 1 : 10 });
  const device = h('input', { id: 'auth-device', name: 'device', value: defaultDeviceName(), maxlength: 64, required: true });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-test': 'auth-submit' }, mode === 'login' ? 'Sign in' : 'Create account');
  const form = h('form', { class: 'auth-form', novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = '';
    if (!form.checkValidity()) {
      error.textContent = mode === 'register' ? 'Choose a username of 3 to 32 characters and a password of at least 10.' : 'Enter your username and password.';
      return;
    }
    submit.disabled = true;
    submit.textContent = mode === 'login' ? 'Signing in…' : 'Creating your keys…';
    try {
      const details = { username: username.value.trim().toLowerCase(), password: password.value, deviceName: device.value.trim() };
      const client = mode === 'login' ? await SecureChatClient.login(baseURL, details) : await SecureChatClient.register(baseURL, details);
      password.value = '';
      await enter(client);
    } catch (failure) {
      error.textContent = describeError(failure);
      submit.disabled = false;
      submit.textContent = mode === 'login' ? 'Sign in' : 'Create account';
    }
  } },
  h('label', { for: 'auth-username' }, 'Username'), username,
  h('label', { for: 'auth-password' }, 'Password'), password,
  mode === 'register' ? h('p', { class: 'hint' }, 'At least 10 characters. The server stores only a bcrypt hash; your messages are encrypted with keys that never leave this browser.') : null,
  h('label', { for: 'auth-device' }, 'Name of this device'), device,
  error, submit);
  replaceChildren(app, h('main', { class: 'auth' },
    h('div', { class: 'auth-card' },
      h('h1', {}, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'SecureChat'),
      h('p', { class: 'tagline' }, 'End-to-end encrypted chat. The server relays ciphertext it cannot read.'),
      h('div', { class: 'tabs', role: 'tablist' },
        h('button', { role: 'tab', 'aria-selected': String(mode === 'login'), class: mode === 'login' ? 'active' : null, onclick: () => showAuth('login'), 'data-test': 'tab-login' }, 'Sign in'),
        h('button', { role: 'tab', 'aria-selected': String(mode === 'register'), class: mode === 'register' ? 'active' : null, onclick: () => showAuth('register'), 'data-test': 'tab-register' }, 'Create account')),
      form,
      h('button', { class: 'link theme-toggle', onclick: toggleTheme }, 'Switch theme'))));
  username.focus();
}

function defaultDeviceName() {
  const platform = navigator.userAgentData?.platform || navigator.platform || 'this computer';
  return `Browser on ${platform}`.slice(0, 64);
}

// ---- the main screen

async function enter(client) {
  state.client = client;
  client.addEventListener('message', ({ detail }) => onMessage(detail));
  client.addEventListener('connection', ({ detail }) => renderConnection(detail.state));
  client.addEventListener('identityChanged', ({ detail }) => onIdentityChanged(detail.contact));
  client.addEventListener('avatarChanged', ({ detail }) => {
    if (detail.userId === client.userId) document.querySelector('.me .avatar')?.replaceWith(avatar(client, client.userId, client.username));
    refreshConversations();
    state.chat?.render();
  });
  const roomTitle = (code) => state.conversations.find((c) => c.id === roomConversation(code))?.title ?? 'a room';
  client.addEventListener('incomingCall', ({ detail }) => showCall(client, detail.call, { roomName: detail.call.room && roomTitle(detail.call.room) }));
  client.addEventListener('missedCall', ({ detail }) => {
    const where = detail.conversation.startsWith('room:') ? ` in ${roomTitle(detail.conversation.slice(5))}` : '';
    toast(`Missed ${detail.video ? 'video ' : ''}call from ${client.displayName(detail.peer)}${where}${detail.busy ? ' (you were in another call)' : ''}`);
  });
  client.addEventListener('roomCall', () => state.chat?.refreshCallBanner());
  client.addEventListener('callEnded', () => state.chat?.refreshCallBanner());
  client.addEventListener('contactChanged', () => {
    renderConversationList();
    state.chat?.refreshHeader();
  });
  client.addEventListener('sessionEnded', ({ detail }) => onSessionEnded(detail.reason));
  client.addEventListener('roomEvent', ({ detail }) => onRoomEvent(detail.event));
  client.addEventListener('typing', ({ detail }) => state.chat?.onTyping(detail));
  client.addEventListener('accepted', () => state.chat?.refreshStatuses());
  client.addEventListener('sendFailed', ({ detail }) => {
    toast(`A message could not be sent: ${detail.message}`, 'error');
    state.chat?.refreshStatuses();
  });
  client.addEventListener('undecryptable', ({ detail }) => onUndecryptable(detail));
  client.addEventListener('unconfirmedMember', ({ detail }) => onUnconfirmedMember(detail));
  client.addEventListener('memberAdmitted', ({ detail }) => {
    if (detail.by !== client.userId) toast(`${client.displayName(detail.by)} admitted ${client.displayName(detail.userId)}`);
    state.chat?.refreshHeader();
  });
  renderShell();
  client.start();
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') {
      client.reconnectNow();
      state.chat?.markVisibleRead();
    }
  });
  window.addEventListener('online', () => client.reconnectNow());
  await refreshConversations();
  for (const contact of client.contacts.values()) if (hasPendingChange(contact)) onIdentityChanged(contact);
}

function renderShell() {
  const client = state.client;
  const status = h('span', { class: 'connection', id: 'connection', 'data-state': client.connectionState, 'data-test': 'connection' }, connectionLabel(client.connectionState));
  const sidebar = h('nav', { class: 'sidebar', 'aria-label': 'Conversations' },
    h('header', { class: 'sidebar-header' },
      h('div', { class: 'me' },
        avatar(client, client.userId, client.username),
        h('div', {}, h('strong', { 'data-test': 'me' }, client.username), status)),
      h('div', { class: 'toolbar' },
        h('button', { title: 'Your profile and devices', 'data-test': 'profile', onclick: () => profileDialog(client) }, 'Profile'),
        h('button', { title: 'Switch between system, light and dark theme', 'data-test': 'theme', onclick: toggleTheme }, 'Theme'),
        h('button', { title: 'Sign out and remove this browser from your devices', 'data-test': 'logout', onclick: logout }, 'Sign out'))),
    h('div', { class: 'actions' },
      h('button', { onclick: newDirectChat, 'data-test': 'new-chat' }, 'New chat'),
      h('button', { onclick: createRoom, 'data-test': 'create-room' }, 'New room'),
      h('button', { onclick: joinRoom, 'data-test': 'join-room' }, 'Join room')),
    h('ul', { class: 'conversation-list', id: 'conversation-list', 'data-test': 'conversation-list' }));
  const main = h('section', { class: 'chat', id: 'chat', 'aria-label': 'Conversation' },
    h('div', { class: 'empty-state' }, h('h2', {}, 'Welcome to SecureChat'), h('p', {}, 'Start a chat with someone by username, or create a room and share its code.')));
  replaceChildren(app, h('div', { class: 'layout', id: 'layout', 'data-view': 'list' }, sidebar, main));
}

function connectionLabel(connection) {
  return { online: 'Online', connecting: 'Connecting…', offline: 'Offline, retrying', ended: 'Signed out' }[connection] ?? connection;
}

function renderConnection(connection) {
  const element = document.getElementById('connection');
  if (!element) return;
  element.dataset.state = connection;
  element.textContent = connectionLabel(connection);
}


export async function refreshConversations() {
  const client = state.client;
  let rooms = [];
  try {
    rooms = await client.listRooms();
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 0) toast(describeError(error), 'error');
  }
  const direct = [...client.contacts.values()].filter((contact) => contact.userId !== client.userId && contact.hasConversation);
  state.conversations = [
    ...rooms.map((room) => ({ id: roomConversation(room.code), kind: 'room', title: room.name, room })),
    ...direct.map((contact) => ({ id: directConversation(contact.userId), kind: 'direct', title: contact.username, contact })),
  ];
  renderConversationList();
}

function renderConversationList() {
  const list = document.getElementById('conversation-list');
  if (!list) return;
  const client = state.client;
  if (state.conversations.length === 0) {
    replaceChildren(list, h('li', { class: 'hint' }, 'No conversations yet.'));
    return;
  }
  replaceChildren(list, state.conversations.map((conversation) => {
    const unread = state.unread.get(conversation.id) ?? 0;
    const pending = conversation.kind === 'direct' && hasPendingChange(client.contacts.get(conversation.contact.userId) ?? conversation.contact);
    return h('li', {},
      h('button', {
        class: ['conversation', state.selected === conversation.id ? 'selected' : null],
        'aria-current': state.selected === conversation.id ? 'true' : null,
        'data-conversation': conversation.id, 'data-test': `conversation-${conversation.title}`,
        onclick: () => selectConversation(conversation.id),
      },
      conversation.kind === 'room' ? h('span', { class: ['avatar', 'room'], 'aria-hidden': 'true' }, '#') : avatar(client, conversation.contact.userId, conversation.title),
      h('span', { class: 'title' }, conversation.title),
      pending ? h('span', { class: 'badge warning', title: 'Security key changed' }, '!') : null,
      unread > 0 ? h('span', { class: 'badge', 'aria-label': `${unread} unread` }, String(unread)) : null));
  }));
}

export async function selectConversation(id) {
  state.selected = id;
  state.unread.delete(id);
  renderConversationList();
  const conversation = state.conversations.find((c) => c.id === id);
  if (!conversation) return;
  document.getElementById('layout').dataset.view = 'chat';
  state.chat?.dispose();
  state.chat = new ChatView(state.client, conversation, {
    onBack: () => {
      document.getElementById('layout').dataset.view = 'list';
    },
    onMembers: () => membersPanel(state.client, conversation.room, { onLeft: roomLeft }),
    onSafetyNumber: () => safetyNumberDialog(state.client, conversation.contact.userId),
  });
  replaceChildren(document.getElementById('chat'), state.chat.element);
  await state.chat.load();
}

function onMessage({ message, stored }) {
  const client = state.client;
  if (message.envelope.type === 'receipt') state.chat?.refreshStatuses();
  if (!stored) return;
  const id = message.conversation;
  if (id.startsWith('direct:')) {
    const userId = id.slice(7);
    if (!client.contacts.get(userId)?.hasConversation) markConversation(userId).then(() => refreshConversations()).catch(() => {});
  } else if (!state.conversations.some((c) => c.id === id)) {
    refreshConversations();
  }
  if (state.selected === id && state.chat) {
    state.chat.onMessage(message);
  } else if (!message.outgoing) {
    state.unread.set(id, (state.unread.get(id) ?? 0) + 1);
    renderConversationList();
  }
  if (!message.outgoing && !(state.selected === id && document.visibilityState === 'visible')) {
    const where = id.startsWith('room:') ? ` in ${state.conversations.find((c) => c.id === id)?.title ?? 'a room'}` : '';
    announce(`New message from ${client.displayName(message.sender.userId)}${where}`);
  }
}

/** Screen readers hear new messages once, not the whole re-rendered list. */
function announce(text) {
  const region = document.getElementById('announcer');
  if (region) region.textContent = text;
}

/**
 * Remembers that a direct conversation exists with this user, so it is listed. Reads the contact
 * inside the queue (an older copy would undo changes made meanwhile); a peer this device has not
 * met yet (a chat started from another of our devices) is looked up first.
 */
async function markConversation(userId) {
  const client = state.client;
  await client.serial(async () => {
    if (!client.contacts.has(userId)) {
      try {
        await client.currentDevices(userId);
      } catch (error) {
        if (!(error instanceof ClientError && error.code === 'identityChanged')) throw error;
      }
    }
    const contact = client.contacts.get(userId);
    if (!contact || contact.hasConversation) return;
    const updated = { ...contact, hasConversation: true };
    await client.commit({ records: new Map([[`contact/${userId}`, updated]]) });
    client.contacts.set(userId, updated);
  });
}

function onIdentityChanged(contact) {
  renderConversationList();
  state.chat?.refreshHeader();
  if (state.warned.has(contact.userId)) return;
  state.warned.add(contact.userId);
  identityWarning(state.client, contact, {
    onDone: () => {
      state.warned.delete(contact.userId);
      renderConversationList();
      state.chat?.refreshHeader();
    },
  });
}

const keyNotices = new Map();

/**
 * A message this device cannot read. In a room, usually because the sender's device has not given
 * us its key yet (we were not admitted, or joined on another device): said once a minute per room,
 * and marked in the open conversation.
 */
function onUndecryptable({ sender, room, reason, code, at }) {
  const client = state.client;
  const who = client.displayName(sender.userId);
  if (room && state.chat?.conversation.id === roomConversation(room)) state.chat.onUnreadable({ at: at ?? Date.now(), who });
  if (room && (code === 'noRoomKey' || code === 'unknownKey')) {
    if (Date.now() - (keyNotices.get(room) ?? 0) < 60_000) return;
    keyNotices.set(room, Date.now());
    toast(`You cannot read ${who}'s new messages in this room yet: their device has not given you the room's key. An owner or admin admits new members; messages sent before that stay unreadable.`, 'error');
    return;
  }
  toast(`A message from ${who} could not be read: ${reason}`, 'error');
}

function onUnconfirmedMember({ room, userId }) {
  const client = state.client;
  toast(`${client.displayName(userId)} joined ${room}: an owner or admin has to admit them before they can read new messages.`);
  if (state.chat?.conversation.id === roomConversation(room)) state.chat.refreshHeader();
}

function onRoomEvent(event) {
  const client = state.client;
  if (event.userId === client.userId && ['left', 'kicked', 'banned', 'deleted'].includes(event.change)) {
    if (event.change !== 'left') toast(event.change === 'deleted' ? 'A room was deleted.' : `You were ${event.change === 'kicked' ? 'removed from' : 'banned from'} a room.`, 'error');
    roomLeft(event.room);
    return;
  }
  if (state.chat?.conversation.id === roomConversation(event.room)) state.chat.onRoomEvent(event);
  if (['joined', 'left', 'kicked', 'banned'].includes(event.change)) refreshConversations();
}

function roomLeft(code) {
  if (state.selected === roomConversation(code)) {
    state.selected = null;
    state.chat?.dispose();
    state.chat = null;
    replaceChildren(document.getElementById('chat'), h('div', { class: 'empty-state' }, h('h2', {}, 'You left the room')));
    document.getElementById('layout').dataset.view = 'list';
  }
  refreshConversations();
}

function onSessionEnded(reason) {
  replaceChildren(app, h('main', { class: 'notice' },
    h('h1', {}, 'You were signed out'),
    h('p', {}, reason || 'The session ended.'),
    h('button', { class: 'primary', onclick: async () => {
      // The session is over: only the local copy can still be wiped.
      state.client.close();
      state.client.store.close();
      await LocalStore.destroy();
      location.reload();
    } }, 'Sign in again')));
}

async function logout() {
  const ok = await confirmDialog({
    title: 'Sign out?',
    text: 'Signing out removes this browser as a device of your account and deletes its keys and message history here. Your other devices keep theirs.',
    confirm: 'Sign out',
  });
  if (!ok) return;
  try {
    await state.client.logout();
  } catch (error) {
    toast(`Not signed out: ${describeError(error)} The device stays until the server confirms its removal.`, 'error');
    return;
  }
  // Read markers name conversations: they go with the rest of this device's data.
  for (const key of Object.keys(localStorage)) if (key.startsWith('readUpTo/')) localStorage.removeItem(key);
  location.reload();
}

// ---- starting conversations

function newDirectChat() {
  const input = h('input', { id: 'new-chat-username', required: true, autocapitalize: 'none', spellcheck: 'false', 'data-test': 'new-chat-username' });
  openDialog({
    title: 'New chat',
    body: [h('label', { for: 'new-chat-username' }, 'Username'), input],
    confirm: 'Start chat',
    onConfirm: async () => {
      const client = state.client;
      const userId = await client.resolve(input.value);
      if (userId === client.userId) throw new ClientError('badRequest', 'That is you. Pick someone else.');
      try {
        await client.serial(() => client.currentDevices(userId));
      } catch (error) {
        if (!(error instanceof ClientError && error.code === 'identityChanged')) throw error;
      }
      await markConversation(userId);
      await refreshConversations();
      await selectConversation(directConversation(userId));
    },
  });
}

function createRoom() {
  const name = h('input', { id: 'room-name', required: true, maxlength: 100, 'data-test': 'room-name' });
  const password = h('input', { id: 'room-password', type: 'password', autocomplete: 'new-password', maxlength: 72, 'data-test': 'room-password' });
  const autoAdmit = h('input', { id: 'room-auto-admit', type: 'checkbox', checked: true, 'data-test': 'room-auto-admit' });
  openDialog({
    title: 'New room',
    body: [
      h('label', { for: 'room-name' }, 'Name'), name,
      h('label', { for: 'room-password' }, 'Password (optional)'), password,
      h('p', { class: 'hint' }, 'Anyone with the room code (and the password, if set) can join.'),
      h('label', { class: 'check' }, autoAdmit, 'Admit everyone who joins with the code (otherwise you admit each new member)'),
    ],
    confirm: 'Create room',
    onConfirm: async () => {
      const room = await state.client.createRoom({ name: name.value.trim(), password: password.value || undefined, autoAdmit: autoAdmit.checked });
      await refreshConversations();
      await selectConversation(roomConversation(room.code));
      toast(`Room created. Share its code: ${room.code}`);
    },
  });
}

function joinRoom() {
  const code = h('input', { id: 'join-code', required: true, autocapitalize: 'none', spellcheck: 'false', 'data-test': 'join-code' });
  const password = h('input', { id: 'join-password', type: 'password', autocomplete: 'off', 'data-test': 'join-password' });
  openDialog({
    title: 'Join a room',
    body: [h('label', { for: 'join-code' }, 'Room code'), code, h('label', { for: 'join-password' }, 'Password (if the room has one)'), password],
    confirm: 'Join',
    onConfirm: async () => {
      const room = await state.client.joinRoom(code.value, password.value || undefined);
      await refreshConversations();
      await selectConversation(roomConversation(room.code));
    },
  });
}

function showStartFailure(error) {
  replaceChildren(app, h('main', { class: 'notice' }, h('h1', {}, 'SecureChat could not start'), h('p', {}, describeError(error)),
    h('p', { class: 'muted' }, 'Private windows of some browsers offer no storage; SecureChat needs it to keep this device\'s keys.')));
}

boot().catch(showStartFailure);
