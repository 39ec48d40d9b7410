// Files (PROTOCOL.md §9): encrypted in the browser in 64 KiB chunks with a fresh key, uploaded as
// a stream, and announced by an attachment message that carries key, digest and size. Downloads
// are decrypted chunk by chunk and accepted only when the digest and size match.
import { SecureChatClient, ClientError } from './client.js';
import { segment } from './api.js';
import { fromBase64, toBase64 } from '../protocol/byte-coding.js';
import { AttachmentDecryptor, AttachmentEncryptor } from '../protocol/attachments.js';
import { randomBytes } from '../protocol/secret-bytes.js';

const readBlock = 256 * 1024;

Object.assign(SecureChatClient.prototype, {
  /**
   * Encrypts and uploads a File or Blob; `onProgress(sentBytes, totalBytes)`. Returns the pointer
   * that goes inside the message. The stream is built block by block; the request body is a Blob
   * of the encrypted parts, which the browser may keep on disk rather than in memory.
   */
  async uploadAttachment(file, { conversation = null, recipients = [], onProgress = () => {} }) {
    const key = randomBytes(32);
    const encryptor = new AttachmentEncryptor(key);
    const parts = [];
    for (let offset = 0; offset < file.size; offset += readBlock) {
      const block = new Uint8Array(await file.slice(offset, offset + readBlock).arrayBuffer());
      parts.push(await encryptor.update(block));
      onProgress(Math.min(offset + readBlock, file.size) / 2, file.size);
    }
    const last = await encryptor.finalize();
    parts.push(last.ciphertext);
    const body = new Blob(parts, { type: 'application/octet-stream' });
    let query;
    if (conversation?.startsWith('room:')) query = `room=${segment(conversation.slice(5))}`;
    else if (conversation) query = `recipients=${segment(conversation.slice(7))}`;
    else query = recipients.length > 0 ? `recipients=${recipients.map(segment).join(',')}` : '';
    const token = await this.validToken();
    const response = await new Promise((resolve, reject) => {
      // XMLHttpRequest, because fetch reports no upload progress.
      const request = new XMLHttpRequest();
      request.open('POST', `${this.baseURL}/v1/attachments?${query}`);
      request.setRequestHeader('Authorization', `Bearer ${token}`);
      request.setRequestHeader('Content-Type', 'application/octet-stream');
      request.upload.onprogress = (event) => onProgress(file.size / 2 + (event.loaded / body.size) * (file.size / 2), file.size);
      request.onload = () => resolve(request);
      request.onerror = () => reject(new ClientError('network', 'the upload failed'));
      request.onabort = () => reject(new ClientError('network', 'the upload was cancelled'));
      request.ontimeout = () => reject(new ClientError('network', 'the upload timed out'));
      request.send(body);
    });
    if (response.status !== 201) {
      let message = `the upload was refused (${response.status})`;
      try {
        message = JSON.parse(response.responseText).error.message;
      } catch {
        // Keep the status message.
      }
      throw new ClientError('uploadFailed', message);
    }
    const { attachmentId } = JSON.parse(response.responseText);
    onProgress(file.size, file.size);
    return {
      attachmentId, key: toBase64(key), digest: toBase64(last.digest), size: file.size,
      name: file.name || 'file', contentType: file.type || 'application/octet-stream',
    };
  },

  /** Sends a file to a conversation: upload, then the attachment message. */
  async sendFile(conversation, file, { caption, onProgress } = {}) {
    const attachment = await this.uploadAttachment(file, { conversation, onProgress });
    const content = { type: 'attachment', attachment, caption: caption || undefined };
    if (conversation.startsWith('room:')) return this.sendRoom(conversation.slice(5), content);
    return this.sendDirect(conversation.slice(7), content);
  },

  /** Downloads and decrypts an attachment into a Blob; `onProgress(receivedBytes, totalBytes)`. */
  async downloadAttachment(pointer, { onProgress = () => {} } = {}) {
    const key = fromBase64(pointer.key);
    if (key.length !== 32) throw new ClientError('badAttachment', 'the attachment key is not 32 bytes');
    const response = await this.api.get(`/v1/attachments/${segment(pointer.attachmentId)}`);
    const decryptor = new AttachmentDecryptor(key, { expectedDigest: fromBase64(pointer.digest), expectedSize: pointer.size });
    const total = Number(response.headers.get('Content-Length')) || pointer.size;
    const reader = response.body.getReader();
    const parts = [];
    let received = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
      parts.push(await decryptor.update(value));
      onProgress(received, total);
    }
    parts.push(await decryptor.finalize());
    return new Blob(parts, { type: safeContentType(pointer.contentType) });
  },
});

/** Content types a browser may render inline are limited to images; everything else downloads. */
export function safeContentType(type) {
  return /^image\/(png|jpeg|gif|webp)$/.test(type) ? type : 'application/octet-stream';
}
