/// Every numeric bound of the protocol, with the reason for its value.
///
/// Bounds protect receivers from work and memory an attacker (or a broken peer) could make them
/// spend. They are documented in docs/PROTOCOL.md, "Limits"; a peer that respects them is never
/// refused by one.
public enum ProtocolLimits {
    /// Most message keys a receiver derives and stores ahead of a message in one ratchet chain.
    /// Signal's Double Ratchet specification calls this MAX_SKIP: large enough for messages lost or
    /// delayed in transit, small enough that one forged header costs at most this many HMACs.
    public static let maxSkip = 1000

    /// Most skipped message keys a session stores over all its chains. When full, the oldest key is
    /// evicted first: a message that late is treated as lost.
    public static let maxStoredSkippedKeys = 2000

    /// Most iterations a sender-key receiver steps forward for one message. Rooms are busier than
    /// pairwise sessions and a member may be offline for a long time; 25,000 HMAC pairs cost a few
    /// milliseconds.
    public static let senderKeyMaxForward = 25_000

    /// Most skipped sender-key message keys stored per sender chain, oldest evicted first.
    public static let senderKeyMaxStoredKeys = 2000

    /// Previous chains of a sender kept after it rotates, so messages sent just before the rotation
    /// still decrypt.
    public static let senderKeyMaxPreviousChains = 4

    /// Largest plaintext one ratchet or sender-key message may carry (attachments go out of band).
    public static let maxMessagePlaintext = 256 * 1024

    /// Attachment chunk sizes a decryptor accepts: from 1 KiB to 1 MiB, 64 KiB by default.
    public static let attachmentChunkSizeRange: ClosedRange<Int> = 1024...(1024 * 1024)
    public static let defaultAttachmentChunkSize = 64 * 1024

    /// Most chunks an attachment may have: the chunk counter is 32 bits in the nonce.
    public static let maxAttachmentChunks = UInt64(UInt32.max)

    /// SHA-512 iterations of the safety-number fingerprint (Signal's value).
    public static let fingerprintIterations = 5200
}
