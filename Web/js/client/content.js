// What travels inside the encryption (PROTOCOL.md §14.2): one versioned JSON envelope, padded
// before encryption. The same layout as SecureChatClient's Envelope.
import { canonicalJSON } from './api.js';
import { fromBase64, fromUTF8, toBase64URL, utf8 } from '../protocol/byte-coding.js';
import { MessagePadding } from '../protocol/padding.js';
import { randomBytes } from '../protocol/secret-bytes.js';

export const envelopeVersion = 1;

/** 16 random bytes, base64url without padding: an envelope id and the send frame's id. */
export function newMessageId() {
  return toBase64URL(randomBytes(16));
}

/** Types whose messages are kept in the conversation's history. */
export const archivedTypes = new Set(['text', 'edit', 'delete', 'reaction', 'attachment']);

const required = {
  text: { text: 'string' },
  edit: { target: 'string', text: 'string' },
  delete: { target: 'string' },
  reaction: { target: 'string', emoji: 'string' },
  attachment: { attachment: 'object' },
  receipt: { receipt: 'string', ids: 'array' },
  typing: { started: 'boolean' },
  call: { call: 'object' },
  senderKey: { room: 'string', distribution: 'string' },
  admission: { userIds: 'array' },
  profile: {},
};

export class ContentError extends Error {}

/** The padded plaintext of an envelope ({id, type, …fields}; `v` is added). */
export function encodeEnvelope(envelope) {
  const body = { ...envelope, v: envelopeVersion };
  if (body.type === 'reaction' && !body.remove) delete body.remove;
  return MessagePadding.pad(utf8(canonicalJSON(body)));
}

/** Unpads and checks an envelope; unknown keys are kept but ignored. */
export function decodeEnvelope(padded) {
  let envelope;
  try {
    envelope = JSON.parse(fromUTF8(MessagePadding.unpad(padded)));
  } catch {
    throw new ContentError('the content is not a padded JSON envelope');
  }
  if (envelope === null || typeof envelope !== 'object' || Array.isArray(envelope)) throw new ContentError('the content is not an object');
  if (envelope.v !== envelopeVersion) throw new ContentError(`unsupported content version ${envelope.v}`);
  if (typeof envelope.id !== 'string' || envelope.id.length === 0) throw new ContentError('the content has no id');
  if (typeof envelope.type !== 'string' || !Object.hasOwn(required, envelope.type)) {
    throw new ContentError(`unknown content type ${String(envelope.type).slice(0, 20)}`);
  }
  for (const [name, kind] of Object.entries(required[envelope.type])) {
    const value = envelope[name];
    const ok = kind === 'array' ? Array.isArray(value) : typeof value === kind && value !== null;
    if (!ok) throw new ContentError(`the ${envelope.type} content lacks ${name}`);
  }
  for (const name of ['conversation', 'replyTo', 'caption']) {
    if (envelope[name] !== undefined && envelope[name] !== null && typeof envelope[name] !== 'string') throw new ContentError(`${name} is not a string`);
  }
  if (envelope.type === 'reaction') envelope.remove = envelope.remove === true;
  if (envelope.type === 'receipt' && envelope.receipt !== 'delivered' && envelope.receipt !== 'read') throw new ContentError('unknown receipt kind');
  if (envelope.type === 'attachment' && !isAttachmentPointer(envelope.attachment)) throw new ContentError('a malformed attachment pointer');
  if (envelope.type === 'profile' && envelope.avatar !== undefined && envelope.avatar !== null && !isAttachmentPointer(envelope.avatar)) {
    throw new ContentError('a malformed avatar pointer');
  }
  return envelope;
}

function isBase64Of32Bytes(value) {
  try {
    return typeof value === 'string' && fromBase64(value).length === 32;
  } catch {
    return false;
  }
}

/** The fields of PROTOCOL.md §14.2's attachment pointer, with their types. */
export function isAttachmentPointer(pointer) {
  return pointer !== null && typeof pointer === 'object'
    && typeof pointer.attachmentId === 'string' && /^[a-z2-7]{26}$/.test(pointer.attachmentId)
    && typeof pointer.name === 'string' && typeof pointer.contentType === 'string'
    && isBase64Of32Bytes(pointer.key) && isBase64Of32Bytes(pointer.digest)
    && Number.isSafeInteger(pointer.size) && pointer.size >= 0;
}
