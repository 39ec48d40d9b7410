// Dialogs and side panels: confirmations, the blocking identity-change warning, safety numbers
// (digits and QR code), room members with their admin actions, and the profile.
import { hasPendingChange } from '../client/index.js';
import { SafetyNumber } from '../protocol/safety-number.js';
import { h, replaceChildren, trapFocus } from './dom.js';
import { encodeQR, renderQR } from './qr.js';
import { avatar } from './avatar.js';
import { describeError, toast, refreshConversations } from './app.js';

const dialogs = () => document.getElementById('dialogs');

/**
 * A modal dialog. `onConfirm` may be async; its error is shown in the dialog and keeps it open.
 * `blocking` dialogs have no cancel and ignore Escape. Returns a function that closes it.
 */
export function openDialog({ title, body, confirm = 'OK', cancel = 'Cancel', onConfirm = async () => {}, onClose = () => {}, blocking = false, extraButtons = [], wide = false, test = null }) {
  const error = h('p', { class: 'form-error', role: 'alert' });
  const confirmButton = confirm ? h('button', { type: 'submit', class: 'primary', 'data-test': 'dialog-confirm' }, confirm) : null;
  let restoreFocus = () => {};
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    backdrop.remove();
    restoreFocus();
    onClose();
  };
  const form = h('form', { class: 'dialog-body', onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = '';
    if (confirmButton) confirmButton.disabled = true;
    try {
      if ((await onConfirm()) !== false) close();
    } catch (failure) {
      error.textContent = describeError(failure);
    } finally {
      if (confirmButton) confirmButton.disabled = false;
    }
  } }, body, error,
  h('div', { class: 'dialog-buttons' },
    extraButtons,
    blocking || !cancel ? null : h('button', { type: 'button', onclick: close, 'data-test': 'dialog-cancel' }, cancel),
    confirmButton));
  const titleId = `dialog-title-${Math.random().toString(36).slice(2)}`;
  const dialog = h('div', { class: ['dialog', wide ? 'wide' : null], role: blocking ? 'alertdialog' : 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId, 'data-test': test },
    h('h2', { id: titleId }, title), form);
  const backdrop = h('div', { class: 'backdrop', onkeydown: (event) => {
    if (event.key === 'Escape' && !blocking) close();
  } }, dialog);
  dialogs().append(backdrop);
  restoreFocus = trapFocus(dialog);
  return close;
}

export function confirmDialog({ title, text, confirm }) {
  return new Promise((resolve) => {
    // Closing any other way (Cancel, Escape) answers no; a promise settles once.
    openDialog({ title, body: [h('p', {}, text)], confirm, onConfirm: async () => resolve(true), onClose: () => resolve(false) });
  });
}

/**
 * The warning when a contact's identity key changed (a new device or a new key). Sending to that
 * contact stays paused until the change is accepted; "Not now" keeps it paused and closes this.
 */
export function identityWarning(client, contact, { onDone }) {
  const reviewed = { ...(contact.changedDevices ?? {}) };
  const pendingDevices = Object.keys(reviewed).length;
  return openDialog({
    title: `${contact.username}'s security key changed`,
    test: 'identity-warning',
    body: [
      h('p', {}, `${contact.username} has ${pendingDevices === 1 ? 'a new device or a new key' : `${pendingDevices} new devices or keys`}. This happens when they sign in on another device or reinstall — or when someone, the server included, tries to read your messages.`),
      h('p', {}, 'Messages to them are paused. Compare safety numbers with them in person or over a call before you accept.'),
    ],
    confirm: 'Accept the new key',
    cancel: 'Not now',
    onConfirm: async () => {
      await client.acceptIdentityChange(contact.userId, reviewed);
      toast(`${contact.username}'s new key accepted. Verify it when you can.`);
    },
    onClose: onDone,
    extraButtons: [h('button', { type: 'button', 'data-test': 'identity-review', onclick: () => safetyNumberDialog(client, contact.userId) }, 'Compare safety numbers')],
  });
}

/** Safety numbers with every device of a contact: 12 groups of 5 digits and a QR code of the scannable form. */
export async function safetyNumberDialog(client, userId) {
  const contact = client.contacts.get(userId);
  if (!contact) {
    toast('Exchange a message first: the safety number needs their keys.', 'error');
    return;
  }
  const devices = client.contactKeys(userId);
  const sections = [];
  for (const device of devices) {
    const number = await SafetyNumber.forUsers({ local: client.identity.publicKey, localUserId: client.userId, remote: device.key, remoteUserId: userId });
    const qr = renderQR(encodeQR(number.scannable), document, { scale: 4, label: `QR code of the safety number with ${contact.username}'s device ${device.deviceId}` });
    sections.push(h('section', { class: 'safety-number', 'data-test': 'safety-number' },
      h('h3', {}, `Device ${device.deviceId}${device.pending ? ' (new, not accepted yet)' : ''}`),
      h('div', { class: 'digits', 'data-test': 'safety-digits', 'aria-label': `Safety number ${number.groups.join(' ')}` }, number.groups.map((group) => h('span', {}, group))),
      h('div', { class: 'qr' }, qr)));
  }
  const pending = hasPendingChange(contact);
  const reviewed = { ...(contact.changedDevices ?? {}) };
  openDialog({
    title: `Safety number with ${contact.username}`,
    wide: true,
    test: 'safety-dialog',
    body: [
      h('p', {}, `Compare these numbers with ${contact.username}, in person or over a call you trust. If they match, nobody is in the middle of your conversation.`),
      sections,
      pending ? h('p', { class: 'badge warning' }, 'A new key is waiting: accept it once the numbers match, then mark the contact verified.') : null,
      contact.verified && !pending ? h('p', { class: 'badge verified' }, '✓ You marked this contact as verified.') : null,
    ],
    // Accepting covers exactly the keys shown here; verifying never accepts anything.
    confirm: pending ? 'Accept the new key' : contact.verified ? 'Clear verification' : 'Mark as verified',
    cancel: 'Close',
    onConfirm: async () => {
      if (pending) {
        await client.acceptIdentityChange(userId, reviewed);
        toast(`${contact.username}'s new key accepted`);
        document.querySelector('[data-test="identity-warning"] [data-test="dialog-cancel"]')?.click();
        return;
      }
      await client.markVerified(userId, !contact.verified);
      toast(contact.verified ? 'Verification cleared' : `${contact.username} is verified`);
    },
  });
}

/** The members of a room with roles; owners and admins admit, remove and ban; the owner changes roles. */
export async function membersPanel(client, room, { onLeft }) {
  let members;
  try {
    members = await client.fetchMembers(room.code);
  } catch (error) {
    toast(describeError(error), 'error');
    return;
  }
  // Display names and status lines, visible to co-members (best effort: a profile may be gone).
  const profiles = new Map(await Promise.all(members.map(async (member) => [member.userId, await client.userProfile(member.userId).catch(() => null)])));
  const me = members.find((member) => member.userId === client.userId);
  const rank = { member: 0, admin: 1, owner: 2 };
  const mine = rank[me?.role ?? 'member'];
  const unconfirmed = new Set(client.unconfirmedMembers(room.code));
  let close = () => {};
  const act = (operation, success) => async () => {
    try {
      await operation();
      toast(success);
      close();
      membersPanel(client, room, { onLeft });
    } catch (error) {
      toast(describeError(error), 'error');
    }
  };
  const leaveWith = (operation) => async () => {
    try {
      await operation();
      close();
      onLeft(room.code);
    } catch (error) {
      toast(describeError(error), 'error');
    }
  };
  const rows = members.map((member) => {
    const self = member.userId === client.userId;
    const buttons = [];
    if (!self && unconfirmed.has(member.userId) && mine >= 1) buttons.push(h('button', { 'data-test': 'admit', onclick: act(() => client.admit(room.code, member.userId), `${member.username} admitted`) }, 'Admit'));
    if (!self && unconfirmed.has(member.userId) && mine < 1) buttons.push(h('button', { onclick: act(() => client.trustMember(room.code, member.userId), `${member.username} trusted on this device`) }, 'Trust'));
    if (!self && mine > rank[member.role]) {
      buttons.push(h('button', { onclick: act(() => client.removeMember(room.code, member.userId), `${member.username} removed`) }, 'Remove'));
      buttons.push(h('button', { onclick: act(() => client.banMember(room.code, member.userId), `${member.username} banned`) }, 'Ban'));
    }
    if (!self && mine === 2) {
      if (member.role === 'member') buttons.push(h('button', { onclick: act(() => client.setRole(room.code, member.userId, 'admin'), `${member.username} is an admin`) }, 'Make admin'));
      if (member.role === 'admin') buttons.push(h('button', { onclick: act(() => client.setRole(room.code, member.userId, 'member'), `${member.username} is a member`) }, 'Make member'));
    }
    return h('li', { class: 'member-row', 'data-test': `member-${member.username}` },
      avatar(client, member.userId, member.username, { small: true }),
      h('span', { class: 'name' },
        profiles.get(member.userId)?.displayName ? `${profiles.get(member.userId).displayName} (${member.username})` : member.username, self ? ' — you' : '',
        profiles.get(member.userId)?.statusText ? h('span', { class: 'status-text' }, profiles.get(member.userId).statusText) : null),
      h('span', { class: ['role', member.role] }, member.role),
      unconfirmed.has(member.userId) ? h('span', { class: 'badge warning' }, 'not admitted') : null,
      h('span', { class: 'muted' }, `${member.deviceIds.length} device${member.deviceIds.length === 1 ? '' : 's'}`),
      h('span', { class: 'member-actions' }, buttons));
  });
  const password = h('input', { id: 'room-new-password', type: 'password', autocomplete: 'new-password', maxlength: 72 });
  const adminTools = mine >= 1 ? h('details', { class: 'room-settings' },
    h('summary', {}, 'Room password'),
    h('label', { for: 'room-new-password' }, 'New password (empty removes it)'), password,
    h('button', { type: 'button', onclick: act(() => client.setRoomPassword(room.code, password.value), password.value ? 'Password changed' : 'Password removed') }, 'Save password')) : null;
  close = openDialog({
    title: `${room.name}: members`,
    wide: true,
    test: 'members-panel',
    body: [h('ul', { class: 'member-list' }, rows), adminTools],
    confirm: null,
    cancel: 'Close',
    extraButtons: [
      h('button', { type: 'button', class: 'danger', onclick: leaveWith(() => client.leaveRoom(room.code)) }, 'Leave room'),
      mine === 2 ? h('button', { type: 'button', class: 'danger', onclick: leaveWith(() => client.deleteRoom(room.code)) }, 'Delete room') : null,
    ],
  });
}

/** Display name and status, shown to people who share a room with you. */
export async function profileDialog(client) {
  let profile;
  try {
    profile = await client.profile();
  } catch (error) {
    toast(describeError(error), 'error');
    return;
  }
  const name = h('input', { id: 'profile-name', value: profile.displayName ?? '', maxlength: 64, 'data-test': 'profile-name' });
  const status = h('input', { id: 'profile-status', value: profile.statusText ?? '', maxlength: 140, 'data-test': 'profile-status' });
  const devices = h('ul', { class: 'device-list' });
  const picture = h('span', { class: 'profile-picture' }, avatar(client, client.userId, client.username));
  const pictureInput = h('input', { id: 'profile-picture', type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp', 'data-test': 'profile-picture' });
  const pictureStatus = h('p', { class: 'muted', role: 'status' });
  const pictureAction = async (file) => {
    pictureStatus.textContent = file ? 'Encrypting and sending your picture…' : 'Removing your picture…';
    try {
      if (file && file.size > 1024 * 1024) throw new Error('Pick a picture of at most 1 MiB.');
      const { failed } = await client.setAvatar(file);
      picture.replaceChildren(avatar(client, client.userId, client.username));
      pictureStatus.textContent = failed === 0 ? (file ? 'Picture updated.' : 'Picture removed.') : `Picture updated; ${failed} conversation(s) could not be told yet.`;
    } catch (error) {
      pictureStatus.textContent = describeError(error);
    }
  };
  pictureInput.addEventListener('change', () => pictureInput.files[0] && pictureAction(pictureInput.files[0]));
  client.ownDevices().then(({ devices: list }) => replaceChildren(devices, list.map((device) => h('li', {},
    `${device.name} (device ${device.deviceId})${device.deviceId === client.deviceId ? ' — this browser' : ''}`,
    h('span', { class: 'muted' }, ` · ${device.oneTimePreKeyCount} one-time keys on the server`))))).catch(() => {});
  openDialog({
    title: 'Your profile',
    test: 'profile-dialog',
    body: [
      h('p', { class: 'muted' }, `Signed in as ${client.username}. People who share a room with you see your display name and status.`),
      h('div', { class: 'picture-row' }, picture,
        h('div', {}, h('label', { for: 'profile-picture' }, 'Picture'), pictureInput,
          client.avatars.has(client.userId) ? h('button', { type: 'button', class: 'link', onclick: () => pictureAction(null) }, 'Remove picture') : null)),
      pictureStatus,
      h('p', { class: 'hint' }, 'Your picture is encrypted like any file: the key goes only to your contacts and rooms.'),
      h('label', { for: 'profile-name' }, 'Display name'), name,
      h('label', { for: 'profile-status' }, 'Status'), status,
      h('h3', {}, 'Your devices'), devices,
    ],
    confirm: 'Save',
    onConfirm: async () => {
      await client.updateProfile({ displayName: name.value.trim(), statusText: status.value.trim() });
      toast('Profile saved');
      await refreshConversations();
    },
  });
}

