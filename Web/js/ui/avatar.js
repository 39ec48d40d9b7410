// Pictures of people: initials until the picture (an encrypted attachment whose key came in a
// profile message) has been fetched and decrypted once for this page.
import { h } from './dom.js';

const decrypted = new Map();

export function initials(name) {
  return (name ?? '?').slice(0, 2).toUpperCase();
}

function pictureURL(client, pointer) {
  if (!decrypted.has(pointer.attachmentId)) {
    const url = client.downloadAttachment(pointer).then((blob) => URL.createObjectURL(blob));
    url.catch(() => decrypted.delete(pointer.attachmentId));
    decrypted.set(pointer.attachmentId, url);
  }
  return decrypted.get(pointer.attachmentId);
}

/** A round avatar for `userId`: its picture when known, else its initials. */
export function avatar(client, userId, name, { small = false } = {}) {
  const element = h('span', { class: ['avatar', small ? 'small' : null], 'aria-hidden': 'true', 'data-user': userId }, initials(name));
  const pointer = client.avatars?.get(userId);
  if (pointer && pointer.contentType.startsWith('image/')) {
    pictureURL(client, pointer).then((url) => {
      element.replaceChildren(h('img', { src: url, alt: '' }));
      element.classList.add('picture');
    }).catch(() => {});
  }
  return element;
}
