public import SecureChatAPI

/// Why a client operation failed. Each case carries what a person needs to act on it, never a
/// secret (no keys, no passphrases, no tokens).
public enum ClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server refused the request: its HTTP status, its error code and its message.
    case server(status: Int, code: APIErrorCode?, message: String)
    /// The server could not be reached, or the connection broke mid-request.
    case unreachable(String)
    /// The passphrase does not open this local store.
    case wrongPassphrase
    /// The local store is damaged or was written by an incompatible version.
    case corruptLocalState(String)
    /// A local store already exists where a new account was to be created.
    case localStateExists(String)
    /// There is no local store (no account on this device yet).
    case noLocalState(String)
    /// Another process has this local store open (one process at a time may use it).
    case storeInUse(String)
    /// No user has that name.
    case unknownUser(String)
    /// The user has no devices to encrypt for.
    case noDevices(String)
    /// A contact's devices changed since they were last accepted: sending to them is held until the
    /// change is accepted (``SecureChatClient/acceptIdentityChange(of:)``) or verified.
    case identityChanged(userId: String)
    /// Encryption or decryption failed; the message names the step.
    case cryptography(String)
    /// The operation did not complete in time.
    case timedOut(String)
    /// A local file could not be read or written.
    case file(String)
    /// Only a room's owner or admins may do that.
    case notAdmin(room: String)
    /// The client was closed.
    case closed

    public var description: String {
        switch self {
        case .server(let status, let code, let message):
            "the server refused (\(status)\(code.map { " \($0.rawValue)" } ?? "")): \(message)"
        case .unreachable(let detail): "the server cannot be reached: \(detail)"
        case .wrongPassphrase: "wrong passphrase for the local store"
        case .corruptLocalState(let detail): "the local store is damaged: \(detail)"
        case .localStateExists(let path): "an account already exists in \(path)"
        case .noLocalState(let path): "no account in \(path): register or log in first"
        case .storeInUse(let path): "the local store in \(path) is in use by another securechat process"
        case .unknownUser(let name): "no user named \(name)"
        case .noDevices(let name): "\(name) has no devices yet"
        case .identityChanged(let userId):
            "the devices of \(userId) changed: accept the change or verify the safety number before sending"
        case .cryptography(let detail): "encryption failed: \(detail)"
        case .timedOut(let what): "timed out: \(what)"
        case .file(let detail): detail
        case .notAdmin(let room): "only the owner or an admin of room \(room) may do that"
        case .closed: "the client is closed"
        }
    }
}
