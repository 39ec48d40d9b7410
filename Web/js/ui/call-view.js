// The call screen: who is on the other end and whether their safety number was verified, the
// videos, a timer, and the controls (accept, decline, mute, camera, screen, hang up). A room's call
// shows one tile per participant, each with its own verification mark and traffic.
import { h, replaceChildren, trapFocus } from './dom.js';
import { CallSettings, hasPendingChange } from '../client/index.js';
import { avatar } from './avatar.js';
import { describeError, toast } from './app.js';

function clock(milliseconds) {
  const seconds = Math.floor(milliseconds / 1000);
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, '0')}`;
}

function trustBadge(client, userId) {
  const contact = client.contacts.get(userId);
  if (contact && hasPendingChange(contact)) return h('span', { class: 'badge warning', 'data-test': 'call-unverified' }, 'Security key changed: not verified');
  if (contact?.verified) return h('span', { class: 'badge verified', 'data-test': 'call-verified' }, '✓ Safety number verified');
  return h('span', { class: 'badge warning', 'data-test': 'call-unverified' }, 'Safety number not verified');
}

/** What flows, from the connection's own statistics: reassurance for people, evidence for tests. */
async function showTraffic(element, source, video) {
  const traffic = await source.traffic();
  const kib = (bytes) => `${Math.round(bytes / 1024)} KiB`;
  for (const kind of ['audio', 'video']) {
    element.dataset[`${kind}Sent`] = String(traffic[kind].sent);
    element.dataset[`${kind}Received`] = String(traffic[kind].received);
  }
  element.dataset.route = traffic.route ?? '';
  const route = { relay: ' · relayed by the TURN server', direct: ' · direct' }[traffic.route] ?? '';
  element.textContent = `Audio ↑ ${kib(traffic.audio.sent)} ↓ ${kib(traffic.audio.received)}`
    + (video ? ` · Video ↑ ${kib(traffic.video.sent)} ↓ ${kib(traffic.video.received)}` : '') + route + ' · end-to-end encrypted (DTLS-SRTP)';
}

/** The tiles of a room's call, one per link, kept in step with the call's 'legs' events. */
function participantTiles(client, call, grid) {
  const tiles = new Map();
  const sync = () => {
    const links = new Set(call.links());
    for (const [link, tile] of tiles) {
      if (links.has(link)) continue;
      tile.element.remove();
      tiles.delete(link);
    }
    for (const link of links) {
      let tile = tiles.get(link);
      if (!tile) {
        const name = client.displayName(link.peer.userId);
        // The sound plays from the audio element; the video element stays silent (no echo of it).
        const video = h('video', { autoplay: true, playsinline: true, muted: true, 'aria-label': `${name}'s video` });
        video.muted = true;
        const audio = h('audio', { autoplay: true });
        const stats = h('p', { class: 'call-stats', 'data-test': 'call-stats' });
        const state = h('span', { class: 'muted' });
        tile = { element: h('figure', { class: 'call-tile', 'data-test': 'call-tile', 'data-peer': name },
          video, audio, h('figcaption', {}, h('strong', {}, name), ' ', trustBadge(client, link.peer.userId), ' ', state), stats), video, audio, stats, state };
        tiles.set(link, tile);
        grid.append(tile.element);
      }
      if (tile.video.srcObject !== link.remoteStream) {
        tile.video.srcObject = link.remoteStream;
        tile.audio.srcObject = link.remoteStream;
      }
      tile.state.textContent = link.connected ? '' : 'connecting…';
    }
  };
  const refreshStats = () => {
    for (const [link, tile] of tiles) if (link.connected) showTraffic(tile.stats, link, call.video).catch(() => {});
  };
  return { sync, refreshStats, count: () => tiles.size };
}

/** Shows a call; `roomName` names a room call's room. */
export function showCall(client, call, { roomName = 'the room' } = {}) {
  const group = call.room !== undefined;
  const name = group ? roomName : client.displayName(call.peer);
  const caller = group ? client.displayName(call.inviter?.userId ?? client.userId) : name;
  // State changes are announced; the running clock beside them is not (it would speak every second).
  const status = h('p', { class: 'call-status', role: 'status' });
  const clockLine = h('p', { class: 'call-clock' });
  const localVideo = h('video', { class: 'local-video', autoplay: true, playsinline: true, muted: true, 'aria-label': 'Your camera' });
  localVideo.muted = true;
  const controls = h('div', { class: 'call-controls' });
  let media;
  let heading;
  let refreshStats;
  let tiles = null;
  if (group) {
    const grid = h('div', { class: 'call-grid' });
    tiles = participantTiles(client, call, grid);
    media = h('div', { class: 'call-media group' }, grid, call.video ? localVideo : null);
    heading = h('div', { class: 'call-peer' }, h('h2', {}, `Call in ${roomName}`),
      h('span', { class: 'muted' }, `Up to ${CallSettings.groupLimit} people, each link end-to-end encrypted`));
    refreshStats = tiles.refreshStats;
    call.addEventListener('legs', () => tiles.sync());
  } else {
    const remoteVideo = h('video', { class: 'remote-video', autoplay: true, playsinline: true, muted: true, 'aria-label': `${name}'s video` });
    remoteVideo.muted = true;
    const remoteAudio = h('audio', { autoplay: true });
    const stats = h('p', { class: 'call-stats muted', 'data-test': 'call-stats' });
    media = [h('div', { class: 'call-media' }, remoteVideo, remoteAudio, call.video ? localVideo : null), stats];
    heading = h('div', { class: 'call-peer' }, avatar(client, call.peer, name), h('h2', {}, name), trustBadge(client, call.peer));
    refreshStats = () => showTraffic(stats, call, call.video).catch(() => {});
    call.addEventListener('remoteStream', ({ detail }) => {
      remoteVideo.srcObject = detail.stream;
      remoteAudio.srcObject = detail.stream;
    });
    call.addEventListener('ended', () => {
      remoteVideo.srcObject = null;
    });
  }
  const screen = h('div', { class: ['call-screen', call.video ? 'video' : 'audio'], role: 'dialog', 'aria-modal': 'true', 'aria-label': group ? `Call in ${roomName}` : `Call with ${name}`, 'data-test': 'call-screen' },
    heading, media, h('div', { class: 'call-state', 'data-test': 'call-status' }, status, clockLine), controls);
  document.getElementById('dialogs').append(screen);

  let timer = null;
  const button = (label, test, action, extra = {}) => h('button', { type: 'button', 'data-test': test, ...extra, onclick: async () => {
    try {
      await action();
    } catch (error) {
      toast(describeError(error), 'error');
    }
  } }, label);

  const renderStatus = () => {
    const labels = {
      calling: `Calling ${name}…`, ringing: group ? `${caller} is calling ${roomName}${call.video ? ' (video)' : ''}` : `${name} is calling you${call.video ? ' (video)' : ''}`,
      connecting: 'Connecting…', waiting: 'Waiting for others to join…', connected: 'Connected', ended: 'Call ended',
    };
    const text = labels[call.state] ?? call.state;
    if (status.textContent !== text) status.textContent = text;
    const live = call.state === 'connected' || (group && call.state === 'waiting');
    clockLine.textContent = live && call.connectedAt ? clock(Date.now() - call.connectedAt) : '';
    clockLine.hidden = clockLine.textContent === '';
  };

  // The controls are rebuilt only when they change, so keyboard focus stays where it is.
  const render = () => {
    renderStatus();
    if (call.state === 'ringing') {
      replaceChildren(controls,
        button(group ? 'Join' : 'Accept', 'call-accept', () => call.accept(), { class: 'primary' }),
        button('Decline', 'call-decline', () => call.decline(), { class: 'danger' }));
      return;
    }
    // Toggles change their own label and state in place: focus stays on them.
    const toggle = (labels, test, isOn, flip) => {
      const element = button(labels[0], test, () => {
        flip();
        element.textContent = labels[isOn() ? 1 : 0];
        element.setAttribute('aria-pressed', String(isOn()));
      }, { 'aria-pressed': 'false' });
      return element;
    };
    if (controls.dataset.mode === 'live') return;
    controls.dataset.mode = 'live';
    replaceChildren(controls,
      toggle(['Mute', 'Unmute'], 'call-mute', () => call.muted, () => call.setMuted(!call.muted)),
      call.video ? toggle(['Camera off', 'Camera on'], 'call-camera', () => call.cameraOff, () => call.setCameraOff(!call.cameraOff)) : null,
      call.video && navigator.mediaDevices?.getDisplayMedia ? button('Share screen', 'call-share', () => call.shareScreen()) : null,
      button(group ? 'Leave' : 'Hang up', 'call-hangup', () => call.hangUp(), { class: 'danger' }));
  };

  const attachLocal = () => {
    if (call.localStream && call.video) localVideo.srcObject = call.localStream;
    localVideo.hidden = !localVideo.srcObject;
  };
  call.addEventListener('state', () => {
    attachLocal();
    if (call.state === 'connected' && !timer) {
      timer = setInterval(() => {
        renderStatus();
        refreshStats();
      }, 1000);
    }
    render();
  });
  const restoreFocus = trapFocus(screen);
  call.addEventListener('ended', ({ detail }) => {
    clearInterval(timer);
    status.textContent = `Call ended: ${detail.reason}`;
    clockLine.textContent = '';
    replaceChildren(controls);
    localVideo.srcObject = null;
    localVideo.hidden = true;
    tiles?.sync();
    // A call replaced by the one the peer made at the same moment gives way at once.
    setTimeout(() => {
      // Focus goes back only from this screen: a call screen that replaced it keeps it.
      const focused = screen.contains(document.activeElement);
      screen.remove();
      if (focused) restoreFocus();
    }, detail.replaced ? 0 : 1500);
  });
  attachLocal();
  render();
  // Media may already be there for outgoing calls.
  setTimeout(attachLocal, 0);
  return screen;
}
