/// Limits the server enforces and clients can check before sending. Each has its reason.
///
/// Runtime settings (members per room, attachment sizes) may be lowered by operators; these
/// values are the ceilings, documented in docs/API.md.
public enum APILimits {
    /// Usernames: 3 to 32 characters of `a-z`, `0-9`, `_`, `.`, `-`, starting with a letter or digit.
    /// Lower case only so that `Alice` and `alice` cannot be two people.
    public static let usernameLength = 3...32
    /// Passwords: at least 10 characters (NIST SP 800-63B asks for 8 at least; we ask a little more)
    /// and at most 72 bytes of UTF-8, because bcrypt ignores everything after byte 72.
    public static let passwordMinimumCharacters = 10
    public static let passwordMaximumBytes = 72
    /// Room passwords follow the same bcrypt bound but may be short: they are shared secrets, not logins.
    public static let roomPasswordBytes = 1...72
    /// A JSON request body. Prekey uploads are the largest: 100 keys of 38 bytes in base64.
    public static let jsonBodyBytes = 64 * 1024
    /// One message ciphertext (after base64 decoding): the protocol's largest plaintext
    /// (262,144 bytes, docs/PROTOCOL.md) plus room for its headers, padding and signature.
    public static let ciphertextBytes = 262_144 + 4096
    /// One WebSocket frame: the largest ciphertext in base64 plus its envelope. A pairwise send
    /// to many devices must fit in it too; larger content goes as an attachment over HTTP.
    public static let frameBytes = 512 * 1024
    /// Recipient devices in one pairwise send.
    public static let recipientsPerSend = 100
    /// A client message id: any printable ASCII, unique per sending device.
    public static let clientMessageIdLength = 1...64
    /// One-time prekeys in one upload, and kept per device.
    public static let oneTimePreKeysPerUpload = 100
    public static let oneTimePreKeysPerDevice = 200
    /// Below this many one-time prekeys the device is told to upload more.
    public static let oneTimePreKeysLowWatermark = 10
    /// Devices per account.
    public static let devicesPerUser = 10
    /// Members per room: sender-key messages fan out to every member device.
    public static let membersPerRoom = 1000
    /// Room names and profile texts.
    public static let roomNameLength = 1...100
    public static let displayNameLength = 0...64
    public static let statusTextLength = 0...140
    /// History page size.
    public static let historyPageSize = 1...200
    /// Undelivered messages sent to a device in one burst before waiting for its acknowledgement.
    public static let deliveryWindow = 500
}
