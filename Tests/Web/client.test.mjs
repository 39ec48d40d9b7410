// The web client's pure parts under node: the envelope of PROTOCOL.md §14.2 (as the Swift SDK
// writes and refuses it), the canonical JSON of every body and frame, and the server-frame checks
// that keep malformed frames out of the device's state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJSON } from '../../Web/js/client/api.js';
import { decodeEnvelope, encodeEnvelope, newMessageId } from '../../Web/js/client/content.js';
import { isValidServerFrame } from '../../Web/js/client/connection.js';
import { MessagePadding } from '../../Web/js/protocol/padding.js';
import { fromUTF8, toBase64, utf8 } from '../../Web/js/protocol/byte-coding.js';

const padded = (object) => MessagePadding.pad(utf8(JSON.stringify(object)));
const key = toBase64(new Uint8Array(32).fill(7));

test('envelopes are sorted JSON with v = 1, padded to 160 bytes; absent optionals are left out', () => {
  const bytes = encodeEnvelope({ id: 'abc', type: 'text', text: 'hi', replyTo: undefined });
  assert.equal(bytes.length % 160, 0);
  assert.equal(fromUTF8(MessagePadding.unpad(bytes)), '{"id":"abc","text":"hi","type":"text","v":1}');
  const reaction = encodeEnvelope({ id: 'r', type: 'reaction', target: 't', emoji: '👍', remove: false });
  assert.equal(fromUTF8(MessagePadding.unpad(reaction)), '{"emoji":"👍","id":"r","target":"t","type":"reaction","v":1}');
  assert.deepEqual(decodeEnvelope(bytes), { id: 'abc', text: 'hi', type: 'text', v: 1 });
});

test('message ids are 16 random bytes in unpadded base64url', () => {
  const ids = new Set(Array.from({ length: 100 }, newMessageId));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.match(id, /^[A-Za-z0-9_-]{22}$/);
});

test('envelopes the Swift SDK refuses are refused', () => {
  const refused = [
    { v: 2, id: 'a', type: 'text', text: 'x' },
    { v: 1, type: 'text', text: 'x' },
    { v: 1, id: 'a', type: 'constructor' },
    { v: 1, id: 'a', type: '__proto__' },
    { v: 1, id: 'a', type: 'text' },
    { v: 1, id: 'a', type: 'text', text: 'x', replyTo: 5 },
    { v: 1, id: 'a', type: 'receipt', receipt: 'seen', ids: ['b'] },
    { v: 1, id: 'a', type: 'attachment', attachment: { attachmentId: 'x' } },
    { v: 1, id: 'a', type: 'attachment', attachment: { attachmentId: 'a'.repeat(26), key, digest: key, size: -1, name: 'n', contentType: 'text/plain' } },
    { v: 1, id: 'a', type: 'attachment', attachment: { attachmentId: 'a'.repeat(26), key: 'short', digest: key, size: 1, name: 'n', contentType: 'text/plain' } },
    { v: 1, id: 'a', type: 'admission', userIds: 'everyone' },
  ];
  for (const envelope of refused) assert.throws(() => decodeEnvelope(padded(envelope)), undefined, JSON.stringify(envelope));
  assert.throws(() => decodeEnvelope(utf8('{"v":1,"id":"a","type":"text","text":"x"}')), undefined, 'unpadded');
  const pointer = { attachmentId: 'a'.repeat(26), key, digest: key, size: 12, name: 'n.txt', contentType: 'text/plain' };
  assert.equal(decodeEnvelope(padded({ v: 1, id: 'a', type: 'attachment', attachment: pointer, future: true })).attachment.size, 12);
});

test('canonical JSON sorts keys at every level and drops null and undefined', () => {
  assert.equal(canonicalJSON({ b: 1, a: { d: null, c: [3, { z: 1, y: undefined }] } }), '{"a":{"c":[3,{"z":1}]},"b":1}');
});

test('server frames of the wrong shape are ignored before they reach the state', () => {
  const sender = { userId: 'q3x7m2kd4hz5wr6tnpa2yjcebu', deviceId: 1 };
  const message = { type: 'message', seq: 4, sender, ciphertext: 'AQ==', sentAt: 1767225601500, messageId: 9, clientMessageId: 'x' };
  assert.ok(isValidServerFrame(message));
  for (const broken of [
    { ...message, seq: '4' }, { ...message, seq: 1.5 }, { ...message, seq: -1 }, { ...message, sentAt: 1e16 }, { ...message, sentAt: Infinity },
    { ...message, sender: null }, { ...message, sender: { userId: 'x/../y', deviceId: 1 } }, { ...message, room: 'a/b' }, { ...message, ciphertext: 5 },
    { type: 'preKeysLow', count: 'many' }, { type: 'preKeysLow', count: -5 }, { type: 'welcome', lastSeq: null, deviceId: 1 },
    { type: 'roomEvent', seq: 5, room: 'R', userId: 'u', change: 'joined', at: 1 }, { type: 'nonsense' }, null, [], 'text',
  ]) {
    assert.equal(isValidServerFrame(broken), false, JSON.stringify(broken));
  }
  assert.ok(isValidServerFrame({ type: 'preKeysLow', count: 7 }));
  assert.ok(isValidServerFrame({ type: 'roomEvent', seq: 5, room: 'k4mzq7t2wbx5hn3ryvpe', userId: 'u', change: 'joined', at: 1 }));
});

test('a profile envelope (the avatar) is written exactly as the Swift SDK writes it', () => {
  // The same literal as Tests/SecureChatClientTests/SignalsTests.swift.
  const literal = '{"avatar":{"attachmentId":"aaaaaaaaaaaaaaaaaaaaaaaaaa","contentType":"image/png","digest":"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=","key":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=","name":"me.png","size":1234},"id":"p1","type":"profile","v":1}';
  const avatar = { attachmentId: 'a'.repeat(26), contentType: 'image/png', digest: toBase64(new Uint8Array(32).fill(9)), key, name: 'me.png', size: 1234 };
  assert.equal(fromUTF8(MessagePadding.unpad(encodeEnvelope({ id: 'p1', type: 'profile', avatar }))), literal);
  assert.deepEqual(decodeEnvelope(MessagePadding.pad(utf8(literal))).avatar, avatar);
  assert.equal(fromUTF8(MessagePadding.unpad(encodeEnvelope({ id: 'p2', type: 'profile', avatar: undefined }))), '{"id":"p2","type":"profile","v":1}');
  assert.throws(() => decodeEnvelope(padded({ v: 1, id: 'p3', type: 'profile', avatar: { attachmentId: 'x' } })));
});
