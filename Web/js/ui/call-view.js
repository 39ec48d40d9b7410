// The call screen: who is on the other end and whether their safety number was verified, the
// videos, a timer, and the controls (accept, decline, mute, camera, screen, hang up).
import { h, replaceChildren, trapFocus } from './dom.js';
import { hasPendingChange } from '../client/index.js';
import { avatar } from './avatar.js';
import { describeError, toast } from './app.js';

function clock(milliseconds) {
  const seconds = Math.floor(milliseconds / 1000);
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, '0')}`;
}

export function showCall(client, call) {
  const contact = client.contacts.get(call.peer);
  const name = client.displayName(call.peer);
  // State changes are announced; the running clock beside them is not (it would speak every second).
  const status = h('p', { class: 'call-status', role: 'status' });
  const clockLine = h('p', { class: 'call-clock', 'data-test': 'call-status' });
  const remoteVideo = h('video', { class: 'remote-video', autoplay: true, playsinline: true, 'aria-label': `${name}'s video` });
  const remoteAudio = h('audio', { autoplay: true });
  const localVideo = h('video', { class: 'local-video', autoplay: true, playsinline: true, muted: true, 'aria-label': 'Your camera' });
  localVideo.muted = true;
  const controls = h('div', { class: 'call-controls' });
  // What flows, from the connection's own statistics: reassurance for people, evidence for tests.
  const stats = h('p', { class: 'call-stats muted', 'data-test': 'call-stats' });
  const showStats = async () => {
    const traffic = await call.traffic();
    const kib = (bytes) => `${Math.round(bytes / 1024)} KiB`;
    for (const kind of ['audio', 'video']) {
      stats.dataset[`${kind}Sent`] = String(traffic[kind].sent);
      stats.dataset[`${kind}Received`] = String(traffic[kind].received);
    }
    stats.dataset.route = traffic.route ?? '';
    const route = { relay: ' · relayed by the TURN server', direct: ' · direct' }[traffic.route] ?? '';
    stats.textContent = `Audio ↑ ${kib(traffic.audio.sent)} ↓ ${kib(traffic.audio.received)}`
      + (call.video ? ` · Video ↑ ${kib(traffic.video.sent)} ↓ ${kib(traffic.video.received)}` : '') + route + ' · end-to-end encrypted (DTLS-SRTP)';
  };
  const trust = contact && hasPendingChange(contact)
    ? h('span', { class: 'badge warning', 'data-test': 'call-unverified' }, 'Security key changed: not verified')
    : contact?.verified
      ? h('span', { class: 'badge verified', 'data-test': 'call-verified' }, '✓ Safety number verified')
      : h('span', { class: 'badge warning', 'data-test': 'call-unverified' }, 'Safety number not verified');
  const screen = h('div', { class: ['call-screen', call.video ? 'video' : 'audio'], role: 'dialog', 'aria-modal': 'true', 'aria-label': `Call with ${name}`, 'data-test': 'call-screen' },
    h('div', { class: 'call-peer' }, avatar(client, call.peer, name), h('h2', {}, name), trust),
    h('div', { class: 'call-media' }, remoteVideo, remoteAudio, call.video ? localVideo : null),
    status, clockLine, stats, controls);
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
      calling: `Calling ${name}…`, ringing: `${name} is calling you${call.video ? ' (video)' : ''}`, connecting: 'Connecting…',
      connected: 'Connected', ended: 'Call ended',
    };
    const text = labels[call.state] ?? call.state;
    if (status.textContent !== text) status.textContent = text;
    clockLine.textContent = call.state === 'connected' && call.connectedAt ? clock(Date.now() - call.connectedAt) : text;
  };

  // The controls are rebuilt only when they change, so keyboard focus stays where it is.
  const render = () => {
    renderStatus();
    if (call.state === 'ringing') {
      replaceChildren(controls,
        button('Accept', 'call-accept', () => call.accept(), { class: 'primary' }),
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
      button('Hang up', 'call-hangup', () => call.hangUp(), { class: 'danger' }));
  };

  const attachLocal = () => {
    if (call.localStream && call.video) localVideo.srcObject = call.localStream;
  };
  call.addEventListener('state', () => {
    attachLocal();
    if (call.state === 'connected' && !timer) {
      timer = setInterval(() => {
        renderStatus();
        showStats().catch(() => {});
      }, 1000);
    }
    render();
  });
  call.addEventListener('remoteStream', ({ detail }) => {
    remoteVideo.srcObject = detail.stream;
    remoteAudio.srcObject = detail.stream;
  });
  const restoreFocus = trapFocus(screen);
  call.addEventListener('ended', ({ detail }) => {
    clearInterval(timer);
    status.textContent = `Call ended: ${detail.reason}`;
    clockLine.textContent = '';
    replaceChildren(controls);
    remoteVideo.srcObject = null;
    localVideo.srcObject = null;
    setTimeout(() => {
      screen.remove();
      restoreFocus();
    }, 1500);
  });
  attachLocal();
  render();
  // Media may already be there for outgoing calls.
  setTimeout(attachLocal, 0);
  return screen;
}
