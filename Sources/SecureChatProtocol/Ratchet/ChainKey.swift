/// A symmetric-ratchet chain key (CKs or CKr): each step yields one message key and the next chain key.
struct ChainKey: Sendable, Equatable {
    let key: SecretBytes

    /// KDF_CK: message key = HMAC-SHA256(ck, 0x01), next chain key = HMAC-SHA256(ck, 0x02).
    func advanced() -> (messageKey: MessageKey, next: ChainKey) {
        let mac = HMACSHA256(key: key)
        return (
            MessageKey(key: mac.authenticate(byte: KDFLabels.messageKeySeed)),
            ChainKey(key: mac.authenticate(byte: KDFLabels.chainKeySeed))
        )
    }
}

/// The root key: each DH ratchet step mixes a fresh DH output into it.
struct RootKey: Sendable, Equatable {
    let key: SecretBytes

    /// KDF_RK: HKDF-SHA256(salt = rk, ikm = dh, info = ``KDFLabels/rootKey``, 64) → new rk ‖ chain key.
    func ratcheted(with dhOutput: SecretBytes) -> (root: RootKey, chain: ChainKey) {
        let output = HKDFSHA256.deriveKey(
            inputKeyMaterial: dhOutput, salt: key, info: KDFLabels.rootKey, outputByteCount: 64)
        return (RootKey(key: output.slice(0..<32)), ChainKey(key: output.slice(32..<64)))
    }
}
