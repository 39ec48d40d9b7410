// The call signalling rules of PROTOCOL.md §14.7 under node: who may make this device ring, which
// link offers it answers, what a second call or a crossing call does. The media (WebRTC) is not
// here — the browser tests drive it — so a device never gets as far as opening a camera: the
// steps that would are observed at the client's own seams (sendDirect, the GroupCall methods).
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { SecureChatClient } from '../../Web/js/client/index.js';
import { Call, CallSettings } from '../../Web/js/client/calls.js';
import { GroupCall } from '../../Web/js/client/group-calls.js';

// A 1:1 Call keeps a MediaStream for the peer's tracks; node has none, and none is played here.
globalThis.MediaStream ??= class {
  getTracks() {
    return [];
  }
};

const room = 'k4mzq7t2wbx5hn3ryvpe';
// Call, link and join ids: 22 base64url characters (16 bytes); they sort as text.
const id = (letter) => letter.repeat(22);
const callOne = id('c');
const me = { userId: 'me', deviceId: 1 };
const alice = { userId: 'alice', deviceId: 3 };
const bob = { userId: 'bob', deviceId: 5 };

/** A device whose commits and direct sends are recorded instead of stored and sent. */
function device() {
  const committed = [];
  const client = new SecureChatClient({ commit: async (change) => committed.push(change) }, 'http://127.0.0.1:9');
  client.account = me;
  client.contacts = new Map();
  client.calls = new Map();
  client.clockOffset = 0;
  const sent = [];
  client.sendDirect = async (userId, content) => sent.push({ userId, content });
  client.sendRoom = async () => {};
  const events = [];
  for (const type of ['incomingCall', 'missedCall', 'roomCall']) client.addEventListener(type, ({ detail }) => events.push({ type, detail }));
  return { client, committed, sent, events };
}

const announcement = (sender, kind, { callId = callOne, ago = 0, video = true, joinId = id('j') } = {}) => ({
  sender, sentAt: Date.now() - ago,
  envelope: { id: `${kind}-${sender.userId}`, type: 'call', call: { callId, kind, video, joinId, createdAt: Date.now() - ago } },
});

const leg = (sender, kind, fields) => ({
  sender, sentAt: Date.now(),
  envelope: { id: `${kind}-${sender.userId}`, type: 'call', call: { callId: callOne, kind, room, ...fields } },
});

test('an invite rings; the call is listed with who is in it; when everyone left, the ring stops as a missed call', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { client, committed, events } = device();
  client.handleRoomCallSignal(announcement(alice, 'invite'), room);
  const ringing = events.find((event) => event.type === 'incomingCall')?.detail.call;
  assert.ok(ringing instanceof GroupCall);
  assert.equal(ringing.state, 'ringing');
  assert.equal(ringing.room, room);
  assert.deepEqual(ringing.inviter, alice);
  client.handleRoomCallSignal(announcement(bob, 'join'), room);
  assert.deepEqual(client.roomCallsIn(room), [{ callId: callOne, video: true, participants: [alice, bob] }]);
  assert.deepEqual(client.roomCallsIn('another-room'), []);
  client.handleRoomCallSignal(announcement(alice, 'leave'), room);
  assert.equal(ringing.state, 'ringing', 'bob is still in the call');
  client.handleRoomCallSignal(announcement(bob, 'leave'), room);
  assert.equal(ringing.state, 'ended');
  assert.deepEqual(client.roomCallsIn(room), []);
  await client.queue;
  assert.deepEqual(committed.map((change) => change.archive[0].envelope.outcome), ['missed']);
  assert.equal(committed[0].archive[0].conversation, `room:${room}`);
  assert.equal(client.calls.size, 0);
});

test('an invite older than the ringing time rings nobody but is listed; one older than the presence timeout is ignored', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { client, events } = device();
  client.handleRoomCallSignal(announcement(alice, 'invite', { ago: CallSettings.ringTimeout + 1000 }), room);
  assert.equal(events.filter((event) => event.type === 'incomingCall').length, 0);
  assert.equal(client.roomCallsIn(room).length, 1);
  client.handleRoomCallSignal(announcement(bob, 'invite', { callId: id('d'), ago: CallSettings.presenceTimeout + 1000 }), room);
  assert.deepEqual(client.roomCallsIn(room).map((call) => call.callId), [callOne]);
  // Time passes without a re-announcement: alice's page is gone.
  client.clockOffset = CallSettings.presenceTimeout;
  assert.deepEqual(client.roomCallsIn(room), []);
});

test('an invite while in another call is a missed call, not a second ring; another device of ours joining stops ours ringing', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const busy = device();
  busy.client.calls.set(id('o'), new Call(busy.client, { callId: id('o'), peer: 'carol', video: false, direction: 'outgoing' }));
  busy.client.handleRoomCallSignal(announcement(alice, 'invite'), room);
  assert.deepEqual(busy.events.filter((event) => event.type !== 'roomCall').map((event) => [event.type, event.detail.busy]), [['missedCall', true]]);

  const { client, committed, events } = device();
  client.handleRoomCallSignal(announcement(alice, 'invite'), room);
  const ringing = events.find((event) => event.type === 'incomingCall').detail.call;
  client.handleRoomCallSignal(announcement({ userId: 'me', deviceId: 2 }, 'join'), room);
  assert.equal(ringing.state, 'ended');
  await client.queue;
  assert.equal(committed.length, 0, 'taken on another device: nothing to record here');
});

test('link offers are answered only for a call this device is in, addressed to it, from a device announced in that call', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { client } = device();
  client.handleRoomCallSignal(announcement(alice, 'invite'), room);
  const call = client.calls.get(callOne);
  const answered = [];
  call.answerTo = async (peer, sdp) => answered.push([peer, sdp]);
  // Membership in the call is fresh or nothing: a participant silent too long is not one.
  const offer = (sender, fields = {}) => client.handleCallSignal(leg(sender, 'offer', { to: 1, sdp: 'v=0', linkId: id('l'), ...fields }));
  offer(alice);
  assert.deepEqual(answered, [], 'ringing, not in the call yet');
  call.joined = true;
  offer(alice, { to: 2 });
  offer(alice, { room: 'another-room' });
  offer(bob);
  offer({ userId: 'me', deviceId: 2 });
  offer(alice, { sdp: 42 });
  offer(alice, { linkId: 'short' });
  offer(alice, { callId: 'not-an-id' });
  assert.deepEqual(answered, [], 'wrong device, wrong room, unannounced device, own account, no description, malformed ids');
  offer(alice);
  assert.deepEqual(answered, [[alice, 'v=0']]);
  // A participant who left is no longer one.
  client.handleRoomCallSignal(announcement(alice, 'leave'), room);
  offer(alice);
  assert.equal(answered.length, 1);
});

test('a device already in the call offers a link to each device that joins; a full call has no room for more', () => {
  const { client } = device();
  const call = new GroupCall(client, { callId: callOne, room, video: true, direction: 'outgoing', inviter: null });
  call.joined = true;
  client.calls.set(callOne, call);
  const offered = [];
  call.connectTo = async (peer) => offered.push(peer);
  client.handleRoomCallSignal(announcement(alice, 'join'), room);
  client.handleRoomCallSignal(announcement(bob, 'join'), room);
  assert.deepEqual(offered, [alice, bob]);
  // The connectTo refusals themselves: already linked, full.
  delete call.connectTo;
  call.legs.set('alice/3', { peer: alice, link: null, ours: true });
  call.legs.set('bob/5', { peer: bob, link: null, ours: true });
  call.legs.set('carol/7', { peer: { userId: 'carol', deviceId: 7 }, link: null, ours: true });
  assert.equal(call.hasRoom(), false, `${CallSettings.groupLimit} people at most`);
});

test('crossing offers: the smaller call id goes on on both sides', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const offer = (callId) => ({ sender: alice, sentAt: Date.now(), envelope: { id: callId, type: 'call', call: { callId, kind: 'offer', sdp: 'v=0', video: false, createdAt: Date.now() } } });

  // Ours sorts first: theirs is ignored, ours keeps calling (their side will answer it).
  const first = device();
  const ours = new Call(first.client, { callId: id('B'), peer: 'alice', video: false, direction: 'outgoing' });
  first.client.calls.set(id('B'), ours);
  first.client.handleCallSignal(offer(id('C')));
  assert.equal(ours.state, 'calling');
  assert.equal(first.events.filter((event) => event.type === 'incomingCall').length, 0);
  assert.deepEqual(first.sent, []);

  // Theirs sorts first: ours gives way (quietly replaced) and theirs is taken without a ring.
  const second = device();
  const mine = new Call(second.client, { callId: id('B'), peer: 'alice', video: false, direction: 'outgoing' });
  mine.offered = true;
  second.client.calls.set(id('B'), mine);
  const ended = [];
  mine.addEventListener('ended', ({ detail }) => ended.push(detail));
  let accepted = 0;
  mock.method(Call.prototype, 'accept', async () => {
    accepted += 1;
  });
  second.client.handleCallSignal(offer(id('A')));
  assert.equal(mine.state, 'ended');
  assert.equal(ended[0].replaced, true);
  assert.deepEqual(second.sent.map((entry) => entry.content.call), [{ callId: id('B'), kind: 'hangup' }]);
  const incoming = second.events.find((event) => event.type === 'incomingCall').detail.call;
  assert.equal(incoming.callId, id('A'));
  assert.equal(accepted, 1);
  mock.restoreAll();
});

test('an offer during another call is answered "busy" and recorded as missed', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { client, sent, events, committed } = device();
  client.calls.set(id('o'), new Call(client, { callId: id('o'), peer: 'carol', video: false, direction: 'incoming' }));
  client.handleCallSignal({ sender: alice, sentAt: Date.now(), envelope: { id: 'x', type: 'call', call: { callId: id('n'), kind: 'offer', sdp: 'v=0', video: true, createdAt: Date.now() } } });
  assert.deepEqual(sent, [{ userId: 'alice', content: { type: 'call', call: { callId: id('n'), kind: 'reject', reason: 'busy' } } }]);
  assert.deepEqual(events.filter((event) => event.type === 'missedCall').map((event) => event.detail.busy), [true]);
  assert.equal(client.calls.size, 1);
  await client.queue;
  assert.equal(committed[0].archive[0].envelope.outcome, 'missed');

  // The caller's side: a busy refusal ends the call as "busy".
  const caller = device();
  const call = new Call(caller.client, { callId: id('n'), peer: 'alice', video: true, direction: 'outgoing' });
  call.offered = true;
  caller.client.calls.set(id('n'), call);
  caller.client.handleCallSignal({ sender: alice, sentAt: Date.now(), envelope: { id: 'y', type: 'call', call: { callId: id('n'), kind: 'reject', reason: 'busy' } } });
  assert.equal(call.state, 'ended');
  await caller.client.queue;
  assert.equal(caller.committed[0].archive[0].envelope.outcome, 'busy');
});

test('a voice call never becomes a video call by crossing, and malformed call ids ring nobody', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { client, events } = device();
  const mine = new Call(client, { callId: id('B'), peer: 'alice', video: false, direction: 'outgoing' });
  client.calls.set(id('B'), mine);
  mock.method(Call.prototype, 'accept', async () => {});
  client.handleCallSignal({ sender: alice, sentAt: Date.now(), envelope: { id: 'v', type: 'call', call: { callId: id('A'), kind: 'offer', sdp: 'v=0', video: true, createdAt: Date.now() } } });
  const incoming = events.find((event) => event.type === 'incomingCall').detail.call;
  assert.equal(incoming.video, false, 'this side asked for a voice call: its camera stays off');
  mock.restoreAll();

  const other = device();
  for (const callId of ['', 'short', id('A') + 'x', 42]) {
    other.client.handleCallSignal({ sender: alice, sentAt: Date.now(), envelope: { id: 'w', type: 'call', call: { callId, kind: 'offer', sdp: 'v=0', createdAt: Date.now() } } });
    other.client.handleRoomCallSignal({ sender: alice, sentAt: Date.now(), envelope: { id: 'w', type: 'call', call: { callId, kind: 'invite', createdAt: Date.now() } } }, room);
  }
  assert.deepEqual(other.events, []);
  assert.deepEqual(other.client.roomCallsIn(room), []);
});

test('a busy device replies once a minute to a caller, however many offers come', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { client, sent } = device();
  client.calls.set(id('o'), new Call(client, { callId: id('o'), peer: 'carol', video: false, direction: 'incoming' }));
  for (const letter of ['p', 'q', 'r']) {
    client.handleCallSignal({ sender: alice, sentAt: Date.now(), envelope: { id: letter, type: 'call', call: { callId: id(letter), kind: 'offer', sdp: 'v=0', createdAt: Date.now() } } });
  }
  assert.equal(sent.length, 1);
});

test('a member who leaves the room leaves its call: entry gone, links dropped, offers refused; our own leaving ends our call', () => {
  const { client } = device();
  const call = new GroupCall(client, { callId: callOne, room, video: true, direction: 'outgoing', inviter: null });
  call.joined = true;
  client.calls.set(callOne, call);
  call.connectTo = async () => {};
  client.handleRoomCallSignal(announcement(alice, 'join'), room);
  client.handleRoomCallSignal(announcement(bob, 'join'), room);
  const closed = [];
  call.legs.set('alice/3', { peer: alice, link: { close: () => closed.push('alice'), connected: true }, ours: true });
  client.leftRoomCalls(room, 'alice');
  assert.deepEqual(closed, ['alice']);
  assert.deepEqual(client.roomCallsIn(room)[0].participants, [bob]);
  const answered = [];
  call.answerTo = async (peer) => answered.push(peer);
  client.handleCallSignal(leg(alice, 'offer', { to: 1, sdp: 'v=0', linkId: id('l') }));
  assert.deepEqual(answered, []);
  client.leftRoomCalls(room, null);
  assert.equal(call.state, 'ended');
  assert.deepEqual(client.roomCallsIn(room), []);
});

test('the same device joining again (a new join id) gets a new link; its presence repeats do not touch the link', () => {
  const { client } = device();
  const call = new GroupCall(client, { callId: callOne, room, video: true, direction: 'outgoing', inviter: null });
  call.joined = true;
  client.calls.set(callOne, call);
  const dropped = [];
  const offered = [];
  call.dropLeg = (key) => dropped.push(key);
  call.connectTo = async (peer) => offered.push(peer.userId);
  client.handleRoomCallSignal(announcement(alice, 'join', { joinId: id('j') }), room);
  client.handleRoomCallSignal(announcement(alice, 'join', { joinId: id('j') }), room);
  assert.deepEqual(dropped, []);
  client.handleRoomCallSignal(announcement(alice, 'join', { joinId: id('k') }), room);
  assert.deepEqual(dropped, ['alice/3']);
  assert.deepEqual(offered, ['alice', 'alice', 'alice']);
});

test('a joiner refused by a full call, with no other link, leaves it', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  const { client } = device();
  client.handleRoomCallSignal(announcement(alice, 'invite'), room);
  const call = client.calls.get(callOne);
  call.joined = true;
  call.state = 'waiting';
  client.handleCallSignal(leg(alice, 'reject', { to: 1, reason: 'full' }));
  assert.equal(call.state, 'ended');
});
