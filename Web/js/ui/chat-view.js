// One conversation on screen: its timeline (edits, deletions and reactions applied), live
// messages, typing indicators, receipts, replies, files with progress and image previews, and the
// composer.
import { ClientError, hasPendingChange, safeContentType } from '../client/index.js';
import { h, replaceChildren, formatTime } from './dom.js';
import { describeError, toast } from './app.js';
import { avatar } from './avatar.js';
import { showCall } from './call-view.js';

const reactionChoices = ['👍', '❤️', '😂', '😮', '🎉'];
const typingTimeout = 6000;
const typingResend = 3000;

export class ChatView {
  constructor(client, conversation, { onBack, onMembers, onSafetyNumber }) {
    this.client = client;
    this.conversation = conversation;
    this.isRoom = conversation.kind === 'room';
    this.callbacks = { onBack, onMembers, onSafetyNumber };
    this.items = [];
    this.events = [];
    this.typing = new Map();
    this.replyTo = null;
    this.editing = null;
    this.lastTypingSent = 0;
    this.typingStopTimer = null;
    /** Decrypted attachments by id: object URLs, made once per view. */
    this.decrypted = new Map();
    this.build();
  }

  build() {
    this.header = h('header', { class: 'chat-header' });
    this.list = h('ol', { class: 'messages', 'aria-label': 'Messages', 'data-test': 'messages' });
    this.typingLine = h('div', { class: 'typing', 'aria-live': 'polite', 'data-test': 'typing' });
    this.replyBar = h('div', { class: 'reply-bar', hidden: true });
    this.input = h('textarea', {
      id: 'composer', rows: 1, placeholder: 'Write a message', 'aria-label': 'Message', 'data-test': 'composer', maxlength: 20000,
      onkeydown: (event) => {
        // Enter while an input method is composing picks a candidate; it must not send.
        if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
          event.preventDefault();
          this.submit();
        } else if (event.key === 'Escape') {
          this.cancelReplyOrEdit();
        }
      },
      oninput: () => this.onInput(),
    });
    this.fileInput = h('input', { type: 'file', hidden: true, 'data-test': 'file-input', onchange: () => this.sendFiles() });
    this.progress = h('div', { class: 'uploads' });
    this.blockedNotice = h('div', { class: 'blocked', hidden: true, role: 'alert', 'data-test': 'sending-paused' });
    this.callBanner = h('div', { class: 'call-banner', hidden: true, 'data-test': 'room-call' });
    this.composer = h('form', { class: 'composer', onsubmit: (event) => {
      event.preventDefault();
      this.submit();
    } },
    h('button', { type: 'button', class: 'icon', title: 'Send a file', 'aria-label': 'Send a file', 'data-test': 'attach', onclick: () => this.fileInput.click() }, '📎'),
    this.fileInput, this.input,
    h('button', { type: 'submit', class: 'primary', 'data-test': 'send' }, 'Send'));
    this.element = h('div', { class: 'chat-view', 'data-test': 'chat-view', 'data-conversation': this.conversation.id },
      this.header, this.callBanner, this.list, this.typingLine, this.progress, this.blockedNotice, this.replyBar, this.composer);
    this.refreshHeader();
    // Participants whose pages died without a word drop off the banner as time passes.
    if (this.isRoom) this.bannerTimer = setInterval(() => this.refreshCallBanner(), 60_000);
  }

  dispose() {
    clearInterval(this.bannerTimer);
    for (const entry of this.decrypted.values()) entry.then((url) => URL.revokeObjectURL(url)).catch(() => {});
    clearTimeout(this.typingStopTimer);
    this.disposed = true;
  }

  get contactId() {
    return this.isRoom ? null : this.conversation.contact.userId;
  }

  refreshHeader() {
    const client = this.client;
    const title = h('div', { class: 'title' }, h('h2', { 'data-test': 'chat-title' }, this.conversation.title));
    let subtitle = null;
    const buttons = [];
    if (this.isRoom) {
      const code = this.conversation.room.code;
      subtitle = h('button', { class: 'link code', title: 'Copy the room code', 'data-test': 'room-code', onclick: async () => {
        try {
          await navigator.clipboard.writeText(code);
          toast('Room code copied');
        } catch {
          toast(`Room code: ${code}`);
        }
      } }, `Code ${code}`);
      const unconfirmed = client.unconfirmedMembers(code);
      if (unconfirmed.length > 0) subtitle = [subtitle, h('span', { class: 'badge warning' }, `${unconfirmed.length} waiting to be admitted`)];
      buttons.push(
        h('button', { onclick: () => this.call(false), 'data-test': 'call-audio', title: 'Voice call with the room' }, 'Call'),
        h('button', { onclick: () => this.call(true), 'data-test': 'call-video', title: 'Video call with the room' }, 'Video'),
        h('button', { onclick: this.callbacks.onMembers, 'data-test': 'members-button' }, 'Members'));
      this.refreshCallBanner();
    } else {
      const contact = client.contacts.get(this.contactId);
      if (contact && hasPendingChange(contact)) {
        subtitle = h('span', { class: 'badge warning', 'data-test': 'identity-changed' }, 'Security key changed');
      } else if (contact?.verified) {
        subtitle = h('span', { class: 'badge verified', 'data-test': 'verified' }, '✓ Verified');
      } else {
        subtitle = h('span', { class: 'muted' }, 'Not verified');
      }
      buttons.push(
        h('button', { onclick: () => this.call(false), 'data-test': 'call-audio', title: 'Voice call' }, 'Call'),
        h('button', { onclick: () => this.call(true), 'data-test': 'call-video', title: 'Video call' }, 'Video'),
        h('button', { onclick: this.callbacks.onSafetyNumber, 'data-test': 'safety-number-button' }, 'Safety number'));
      this.refreshBlocked(contact);
    }
    title.append(h('div', { class: 'subtitle' }, subtitle));
    replaceChildren(this.header,
      h('button', { class: 'icon back', 'aria-label': 'Back to conversations', onclick: this.callbacks.onBack }, '‹'),
      title, h('div', { class: 'toolbar' }, buttons));
  }

  refreshBlocked(contact) {
    const blocked = contact && hasPendingChange(contact);
    this.blockedNotice.hidden = !blocked;
    if (blocked) {
      replaceChildren(this.blockedNotice, `${contact.username}'s security key changed. Sending is paused until you review it.`,
        h('button', { class: 'link', onclick: this.callbacks.onSafetyNumber }, 'Review'));
    }
  }

  async load() {
    this.items = await this.client.timeline(this.conversation.id);
    this.render();
    this.input.focus();
    this.markVisibleRead();
  }

  render() {
    const shown = this.items.slice(-500);
    // Membership changes seen while this view is open sit between the messages by time.
    const rows = [...shown.map((item) => ({ at: item.sentAt, row: () => this.renderItem(item) })),
      ...this.events.map((event) => ({ at: event.at, row: () => h('li', { class: 'event', 'data-test': 'room-event' }, event.text) }))]
      .sort((a, b) => a.at - b.at);
    // Someone reading older messages stays where they are; at the bottom, the view follows.
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 80;
    const scrollTop = this.list.scrollTop;
    replaceChildren(this.list, rows.length === 0 ? h('li', { class: 'hint' }, this.isRoom ? 'No messages yet. Messages are end-to-end encrypted for the room members.' : 'No messages yet. Messages are end-to-end encrypted.') : rows.map((entry) => entry.row()));
    this.list.scrollTop = atBottom || !this.rendered ? this.list.scrollHeight : scrollTop;
    this.rendered = true;
  }

  renderItem(item) {
    const client = this.client;
    if (item.type === 'callLog') {
      const { video, outcome, duration } = item.call;
      const kind = video ? 'video call' : 'voice call';
      const Kind = `${kind[0].toUpperCase()}${kind.slice(1)}`;
      const text = { missed: `Missed ${kind}`, declined: `Declined ${kind}`, unanswered: `Unanswered ${kind}`, busy: `${Kind}: busy`, ended: `${Kind}, ${Math.round(duration / 1000)} s` }[outcome] ?? kind;
      return h('li', { class: ['event', 'call-log', outcome], 'data-test': 'call-log' }, `${video ? '📹' : '📞'} ${text} · ${formatTime(item.sentAt)}`);
    }
    const sender = client.displayName(item.sender.userId);
    const body = [];
    if (item.replyTo) {
      const quoted = this.items.find((other) => other.id === item.replyTo);
      body.push(h('blockquote', { class: 'quote' }, quoted ? `${client.displayName(quoted.sender.userId)}: ${quoted.deleted ? 'deleted message' : (quoted.text ?? quoted.attachment?.name ?? '')}` : 'an earlier message'));
    }
    if (item.deleted) {
      body.push(h('p', { class: 'deleted' }, 'This message was deleted.'));
    } else {
      if (item.attachment) body.push(this.renderAttachment(item));
      if (item.text) body.push(h('p', { class: 'text', 'data-test': 'message-text' }, item.text));
    }
    const meta = h('div', { class: 'meta' },
      h('time', { datetime: new Date(item.sentAt).toISOString() }, formatTime(item.sentAt)),
      item.edited ? h('span', { class: 'edited' }, 'edited') : null,
      item.sender.userId === client.userId && item.sender.deviceId === client.deviceId ? this.statusMark(item.id) : null,
      item.unconfirmedSender ? h('span', { class: 'badge warning', title: 'This device or member is not confirmed yet' }, 'unconfirmed') : null);
    const reactions = item.reactions.size > 0 ? h('div', { class: 'reactions' }, [...item.reactions].map(([emoji, reactors]) => h('button', {
      class: ['reaction', reactors.has(client.userId) ? 'mine' : null],
      'aria-label': `${emoji} from ${[...reactors].map((id) => client.displayName(id)).join(', ')}`,
      onclick: () => this.react(item, emoji, reactors.has(client.userId)),
    }, `${emoji} ${reactors.size}`))) : null;
    const actions = item.deleted ? null : h('div', { class: 'message-actions' },
      h('button', { class: 'icon', 'aria-label': 'Reply', title: 'Reply', onclick: () => this.startReply(item) }, '↩'),
      reactionChoices.map((emoji) => h('button', { class: 'icon', 'aria-label': `React ${emoji}`, onclick: () => this.react(item, emoji, item.reactions.get(emoji)?.has(client.userId) ?? false) }, emoji)),
      item.sender.userId === client.userId && item.type === 'text' ? h('button', { class: 'icon', 'aria-label': 'Edit', title: 'Edit', onclick: () => this.startEdit(item) }, '✎') : null,
      item.sender.userId === client.userId ? h('button', { class: 'icon', 'aria-label': 'Delete', title: 'Delete', onclick: () => this.remove(item) }, '🗑') : null);
    return h('li', { class: ['message', item.outgoing ? 'outgoing' : 'incoming'], 'data-id': item.id, 'data-test': 'message', tabindex: 0 },
      h('div', { class: 'bubble' },
        !item.outgoing && this.isRoom ? h('div', { class: 'sender' }, avatar(client, item.sender.userId, sender, { small: true }), sender) : null,
        body, meta, reactions),
      actions);
  }

  statusMark(id) {
    const status = this.client.statusOf(id) ?? 'sent';
    const labels = { pending: ['…', 'Sending'], sent: ['✓', 'Sent'], delivered: ['✓✓', 'Delivered'], read: ['✓✓', 'Read'], failed: ['!', 'Not sent'] };
    const [mark, label] = labels[status] ?? labels.sent;
    return h('span', { class: ['status', status], title: label, 'aria-label': label, 'data-test': 'status', 'data-status': status }, mark);
  }

  refreshStatuses() {
    for (const element of this.list.querySelectorAll('li.message.outgoing')) {
      const mark = element.querySelector('.status');
      if (mark) mark.replaceWith(this.statusMark(element.dataset.id));
    }
  }

  /** Downloads and decrypts an attachment once per view; later renders reuse the object URL. */
  decryptedURL(pointer, onProgress) {
    if (!this.decrypted.has(pointer.attachmentId)) {
      const url = this.client.downloadAttachment(pointer, { onProgress }).then((blob) => URL.createObjectURL(blob));
      // A failure is not cached: the user can try again.
      url.catch(() => this.decrypted.delete(pointer.attachmentId));
      this.decrypted.set(pointer.attachmentId, url);
    }
    return this.decrypted.get(pointer.attachmentId);
  }

  renderAttachment(item) {
    const pointer = item.attachment;
    const container = h('div', { class: 'attachment', 'data-test': 'attachment' });
    const progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': `Downloading ${pointer.name}` });
    const isImage = safeContentType(pointer.contentType) !== 'application/octet-stream';
    const open = async (save) => {
      progress.hidden = false;
      try {
        const url = await this.decryptedURL(pointer, (done, total) => (progress.value = total ? done / total : 0));
        if (isImage && !save) {
          replaceChildren(container, h('img', { src: url, alt: pointer.name, class: 'preview', 'data-test': 'image-preview' }), h('a', { href: url, download: pointer.name, class: 'file-name' }, pointer.name));
        } else {
          const link = h('a', { href: url, download: pointer.name, 'data-test': 'download-link' }, `Save ${pointer.name}`);
          container.querySelector('[data-test="download-link"]')?.remove();
          container.append(link);
          if (save) link.click();
        }
      } catch (error) {
        container.querySelector('.form-error')?.remove();
        container.append(h('p', { class: 'form-error', role: 'alert' }, `The file could not be opened: ${describeError(error)}`));
      } finally {
        progress.hidden = true;
      }
    };
    replaceChildren(container,
      h('span', { class: 'file-icon', 'aria-hidden': 'true' }, isImage ? '🖼' : '📄'),
      h('span', { class: 'file-name', 'data-test': 'attachment-name' }, pointer.name),
      h('span', { class: 'muted' }, formatSize(pointer.size)),
      h('button', { class: 'link', 'data-test': 'attachment-open', onclick: () => open(!isImage) }, isImage ? 'Show' : 'Download'),
      progress);
    // Small pictures open by themselves (once: the decrypted copy is kept for this view).
    if (isImage && (pointer.size <= 2 * 1024 * 1024 || this.decrypted.has(pointer.attachmentId))) queueMicrotask(() => open(false));
    return container;
  }

  async onMessage(message) {
    this.items = await this.client.timeline(this.conversation.id);
    this.typing.delete(message.sender.userId);
    this.renderTyping();
    this.render();
    if (!message.outgoing) this.markVisibleRead();
  }

  async onRoomEvent(event) {
    // The member list names whoever the event is about (a newcomer is not a contact yet).
    await this.client.fetchMembers(this.conversation.room.code).catch(() => {});
    const who = this.client.displayName(event.userId);
    const text = { joined: `${who} joined`, left: `${who} left`, kicked: `${who} was removed`, banned: `${who} was banned`, roleChanged: `${who} is now ${event.role}` }[event.change];
    if (text) {
      this.events.push({ at: event.at, text });
      this.render();
    }
    this.refreshHeader();
  }

  /** A room message this device could not decrypt, shown where it came in the conversation. */
  onUnreadable({ at, who }) {
    this.events.push({ at, text: `🔒 A message from ${who} could not be read (no key from their device yet)` });
    this.render();
  }

  call(video) {
    try {
      // The call screen comes up at once, while the browser asks for the camera and microphone.
      const call = this.isRoom ? this.client.startRoomCall(this.conversation.room.code, { video }) : this.client.startCall(this.contactId, { video });
      showCall(this.client, call, { roomName: this.conversation.title });
      call.started.catch((error) => this.reportCallError(error));
    } catch (error) {
      this.reportSendError(error);
    }
  }

  /** A call that ended before it started (hung up, or replaced by the peer's) is not an error. */
  reportCallError(error) {
    if (error?.code !== 'callEnded') this.reportSendError(error);
  }

  /** A room's call going on without this device: who is in it, and a way in. */
  refreshCallBanner() {
    if (!this.isRoom) return;
    const code = this.conversation.room.code;
    const inCall = [...(this.client.calls?.values() ?? [])].some((call) => call.room === code);
    const [current] = inCall ? [] : this.client.roomCallsIn(code);
    this.callBanner.hidden = !current;
    if (!current) return;
    const names = [...new Set(current.participants.map((peer) => this.client.displayName(peer.userId)))];
    const icon = current.video ? '📹' : '📞';
    // One device per person in a call: from here, only a note.
    if (current.participants.some((peer) => peer.userId === this.client.userId)) {
      replaceChildren(this.callBanner, `${icon} You are in this room's call on another device`);
      return;
    }
    replaceChildren(this.callBanner, `${icon} ${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} in a call`,
      h('button', { class: 'primary', 'data-test': 'call-join', onclick: () => {
        try {
          const call = this.client.joinRoomCall(code, current.callId);
          showCall(this.client, call, { roomName: this.conversation.title });
          this.refreshCallBanner();
          call.started.catch((error) => this.reportCallError(error));
        } catch (error) {
          this.reportSendError(error);
        }
      } }, 'Join'));
  }

  // ---- typing

  onTyping({ conversation, sender, started }) {
    if (conversation !== this.conversation.id || sender.userId === this.client.userId) return;
    clearTimeout(this.typing.get(sender.userId));
    if (started) this.typing.set(sender.userId, setTimeout(() => {
      this.typing.delete(sender.userId);
      this.renderTyping();
    }, typingTimeout));
    else this.typing.delete(sender.userId);
    this.renderTyping();
  }

  renderTyping() {
    const names = [...this.typing.keys()].map((id) => this.client.displayName(id));
    this.typingLine.textContent = names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
  }

  onInput() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
    this.input.classList.toggle('scrolls', this.input.scrollHeight > 160);
    const now = Date.now();
    if (this.input.value.length > 0 && now - this.lastTypingSent > typingResend) {
      this.lastTypingSent = now;
      this.client.sendTyping(this.conversation.id, true).catch(() => {});
    }
    clearTimeout(this.typingStopTimer);
    this.typingStopTimer = setTimeout(() => this.stopTyping(), 4000);
  }

  stopTyping() {
    if (this.lastTypingSent === 0) return;
    this.lastTypingSent = 0;
    this.client.sendTyping(this.conversation.id, false).catch(() => {});
  }

  // ---- sending

  send(content) {
    if (this.isRoom) return this.client.sendRoom(this.conversation.room.code, content);
    return this.client.sendDirect(this.contactId, content);
  }

  async submit() {
    const text = this.input.value.trim();
    if (!text) return;
    clearTimeout(this.typingStopTimer);
    this.stopTyping();
    const content = this.editing
      ? { type: 'edit', target: this.editing.id, text }
      : { type: 'text', text, replyTo: this.replyTo?.id };
    this.input.value = '';
    this.input.style.height = 'auto';
    this.cancelReplyOrEdit();
    try {
      await this.send(content);
    } catch (error) {
      this.input.value = text;
      this.reportSendError(error);
    }
  }

  reportSendError(error) {
    if (error instanceof ClientError && error.code === 'identityChanged') {
      toast(`${error.message}`, 'error');
      this.refreshHeader();
      return;
    }
    toast(describeError(error), 'error');
  }

  startReply(item) {
    this.editing = null;
    this.replyTo = item;
    this.replyBar.hidden = false;
    replaceChildren(this.replyBar, `Replying to ${this.client.displayName(item.sender.userId)}: ${(item.text ?? item.attachment?.name ?? '').slice(0, 80)}`,
      h('button', { class: 'link', onclick: () => this.cancelReplyOrEdit() }, 'Cancel'));
    this.input.focus();
  }

  startEdit(item) {
    this.replyTo = null;
    this.editing = item;
    this.input.value = item.text ?? '';
    this.replyBar.hidden = false;
    replaceChildren(this.replyBar, 'Editing your message', h('button', { class: 'link', onclick: () => {
      this.input.value = '';
      this.cancelReplyOrEdit();
    } }, 'Cancel'));
    this.input.focus();
  }

  cancelReplyOrEdit() {
    this.replyTo = null;
    this.editing = null;
    this.replyBar.hidden = true;
  }

  async react(item, emoji, remove) {
    try {
      await this.send({ type: 'reaction', target: item.id, emoji, remove: remove || undefined });
    } catch (error) {
      this.reportSendError(error);
    }
  }

  async remove(item) {
    try {
      await this.send({ type: 'delete', target: item.id });
    } catch (error) {
      this.reportSendError(error);
    }
  }

  async sendFiles() {
    for (const file of this.fileInput.files) {
      const progress = h('progress', { max: 1, value: 0, 'aria-label': `Uploading ${file.name}` });
      const row = h('div', { class: 'upload', 'data-test': 'upload' }, h('span', {}, file.name), progress);
      this.progress.append(row);
      try {
        await this.client.sendFile(this.conversation.id, file, { onProgress: (done, total) => (progress.value = total ? done / total : 1) });
      } catch (error) {
        this.reportSendError(error);
      } finally {
        row.remove();
      }
    }
    this.fileInput.value = '';
  }

  /** Read receipts for incoming direct messages once the page is visible. */
  markVisibleRead() {
    if (this.isRoom || document.visibilityState !== 'visible' || this.disposed) return;
    const key = `readUpTo/${this.conversation.id}`;
    const upTo = Number(localStorage.getItem(key) ?? 0);
    const unread = this.items.filter((item) => !item.outgoing && item.sentAt > upTo);
    if (unread.length === 0 || this.markingRead) return;
    // The marker moves only once the receipts went out: offline or paused, they go next time.
    this.markingRead = true;
    this.client.markRead(unread.map((item) => ({ id: item.id, sender: item.sender, outgoing: false })))
      .then(() => localStorage.setItem(key, String(Math.max(...unread.map((item) => item.sentAt)))))
      .catch(() => {})
      .finally(() => {
        this.markingRead = false;
      });
  }
}

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
