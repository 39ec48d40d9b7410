// Pictures of people: initials until the picture (an encrypted attachment whose key came in a
// profile message) has been fetched and decrypted once for this page.
import { h } from './dom.js';

const decrypted = new Map();

export function initials(name) {
  return (name ?? '?').slice(0, 2).toUpperCase();
}

/** Pictures are small; a pointer to anything larger is not fetched. */
const maximumPictureBytes = 1024 * 1024;

function pictureURL(client, pointer) {
  // Keyed by the whole pointer: someone naming another person's picture id with a key of their
  // own must not be shown that person's (already decrypted) face.
  const name = `${pointer.attachmentId}:${pointer.key}:${pointer.digest}`;
  if (!decrypted.has(name)) {
    // A failure is remembered too: a missing picture is not fetched again on every render.
    decrypted.set(name, client.downloadAttachment(pointer).then((blob) => URL.createObjectURL(blob)));
  }
  return decrypted.get(name);
}

/** A round avatar for `userId`: its picture when known, else its initials. */
export function avatar(client, userId, name, { small = false } = {}) {
  const element = h('span', { class: ['avatar', small ? 'small' : null], 'aria-hidden': 'true', 'data-user': userId }, initials(name));
  const pointer = client.avatars?.get(userId);
  if (pointer && pointer.contentType.startsWith('image/') && pointer.size <= maximumPictureBytes) {
    pictureURL(client, pointer).then((url) => {
      element.replaceChildren(h('img', { src: url, alt: '' }));
      element.classList.add('picture');
    }).catch(() => {});
  }
  return element;
}
