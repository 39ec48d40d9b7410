// Every numeric bound of the protocol (PROTOCOL.md §10); a peer that respects them is never
// refused by one. The values are those of SecureChatProtocol's ProtocolLimits.
export const ProtocolLimits = Object.freeze({
  maxSkip: 1000,
  maxStoredSkippedKeys: 2000,
  senderKeyMaxForward: 25000,
  senderKeyMaxStoredKeys: 2000,
  senderKeyMaxPreviousChains: 4,
  maxMessagePlaintext: 262144,
  minAttachmentChunkSize: 1024,
  maxAttachmentChunkSize: 1048576,
  defaultAttachmentChunkSize: 65536,
  maxAttachmentChunks: 0xffffffff,
  fingerprintIterations: 5200,
  /** N and sender-key iterations never take this value (§6.5, §7.1). */
  counterSentinel: 0xffffffff,
});
