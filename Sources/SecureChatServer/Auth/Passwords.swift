import HummingbirdBcrypt
import NIOPosix
import SecureChatAPI

/// bcrypt hashing for account and room passwords, off the event loops (a cost-12 hash takes a
/// quarter of a second of CPU: on an event loop it would stall every connection on it).
struct Passwords: Sendable {
    let cost: UInt8

    /// A hash of a random password, verified against when a username does not exist so that a
    /// failed login takes as long for an unknown user as for a wrong password.
    private let decoyHash: String

    init(cost: UInt8) {
        self.cost = cost
        self.decoyHash = Bcrypt.hash(Identifiers.make(), cost: cost)
    }

    func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    func verify(_ password: String, hash: String?) async throws -> Bool {
        let decoy = decoyHash
        return try await NIOThreadPool.singleton.runIfActive {
            guard let hash else {
                _ = Bcrypt.verify(password, hash: decoy)
                return false
            }
            return Bcrypt.verify(password, hash: hash)
        }
    }

    /// Account passwords: long enough, not longer than bcrypt reads, no control characters
    /// (bcrypt implementations stop at a NUL byte).
    static func checkAccountPassword(_ password: String) throws(APIFailure) {
        guard password.count >= APILimits.passwordMinimumCharacters else {
            throw APIFailure(
                .unprocessableContent, .weakPassword,
                "a password needs at least \(APILimits.passwordMinimumCharacters) characters")
        }
        try checkBcryptInput(password, what: "a password")
    }

    static func checkRoomPassword(_ password: String) throws(APIFailure) {
        guard !password.isEmpty else { throw APIFailure(.unprocessableContent, .weakPassword, "a room password cannot be empty") }
        try checkBcryptInput(password, what: "a room password")
    }

    private static func checkBcryptInput(_ password: String, what: String) throws(APIFailure) {
        guard password.utf8.count <= APILimits.passwordMaximumBytes else {
            throw APIFailure(
                .unprocessableContent, .weakPassword,
                "\(what) can be at most \(APILimits.passwordMaximumBytes) bytes long (bcrypt ignores the rest)")
        }
        guard !password.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIFailure(.unprocessableContent, .weakPassword, "\(what) cannot contain control characters")
        }
    }
}
