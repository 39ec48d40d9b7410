/// A type that holds secret key material and never shows it: `description`, `debugDescription`,
/// `dump` and mirrors all reveal only what ``redactedDescription`` says.
public protocol RedactedSecret: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// A short, non-secret summary (ids, counters, lengths).
    var redactedDescription: String { get }
}

extension RedactedSecret {
    public var description: String { redactedDescription }
    public var debugDescription: String { redactedDescription }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

extension SecretBytes: RedactedSecret {
    public var redactedDescription: String { "SecretBytes(\(count) bytes, redacted)" }
}

extension MessageKey: RedactedSecret {
    public var redactedDescription: String { "MessageKey(redacted)" }
}

extension IdentityKeyPair: RedactedSecret {
    public var redactedDescription: String { "IdentityKeyPair(public: \(publicKey), private: redacted)" }
}

extension SignedPreKeyPair: RedactedSecret {
    public var redactedDescription: String { "SignedPreKeyPair(id: \(id), private: redacted)" }
}

extension OneTimePreKeyPair: RedactedSecret {
    public var redactedDescription: String { "OneTimePreKeyPair(id: \(id), private: redacted)" }
}

extension X3DHAgreement: RedactedSecret {
    public var redactedDescription: String { "X3DHAgreement(shared secret: redacted)" }
}

extension RatchetState: RedactedSecret {
    public var redactedDescription: String {
        "RatchetState(Ns: \(sendingMessageNumber), Nr: \(receivingMessageNumber), PN: \(previousSendingChainLength), "
            + "skipped keys: \(skippedKeys.count), keys: redacted)"
    }
}

extension Session: RedactedSecret {
    public var redactedDescription: String {
        "Session(remote: \(remoteIdentity), pending initiation: \(pendingInitiation != nil), \(ratchet.redactedDescription))"
    }
}

extension SenderKeyState: RedactedSecret {
    public var redactedDescription: String { "SenderKeyState(chain: \(chainId), iteration: \(iteration), keys: redacted)" }
}

extension SenderKeyDistributionMessage: RedactedSecret {
    public var redactedDescription: String {
        "SenderKeyDistributionMessage(chain: \(chainId), iteration: \(iteration), chain key: redacted)"
    }
}

extension SenderKeyRecord: RedactedSecret {
    public var redactedDescription: String { "SenderKeyRecord(chains: \(chains.map(\.chainId)), keys: redacted)" }
}

extension InMemoryPreKeyStore: RedactedSecret {
    public var redactedDescription: String {
        "InMemoryPreKeyStore(signed: \(signedPreKeys.keys.sorted()), one-time: \(oneTimePreKeys.count), private keys: redacted)"
    }
}
