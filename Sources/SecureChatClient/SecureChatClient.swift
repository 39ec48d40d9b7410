import AsyncHTTPClient
public import Foundation
public import Logging
public import SecureChatAPI
import SecureChatKeys
public import SecureChatProtocol

/// One device of one account: its keys, sessions and archive in an encrypted local store, its
/// connection to the server, and the events that arrive on it.
///
/// Everything leaves the device encrypted: a message is padded, encrypted for each recipient
/// device and only then handed to the server. There is no API that sends plaintext.
public actor SecureChatClient {
    /// Everything that happens: messages, acceptances, identity changes, connection state. One consumer.
    public nonisolated let events: AsyncStream<ClientEvent>
    private let eventSink: AsyncStream<ClientEvent>.Continuation

    let store: LocalStore
    let identity: IdentityKeyPair
    var account: AccountRecord
    let api: APIClient
    var keys: DeviceKeys
    var sessions: [DeviceAddress: Session] = [:]
    var contacts: [String: Contact] = [:]
    /// The highest delivery seq processed and committed: a reconnect resumes after it.
    var cursor: Int64 = 0
    var connection = ConnectionSlot()
    /// Sends committed locally and not yet accepted by the server, oldest first (as in the store).
    var outbox: [OutboxEntry] = []
    /// Sends the server refused for good, with its reason.
    var failedSends: [String: String] = [:]
    /// The token refresh in progress, which every other caller waits for.
    var refreshing: Task<Void, any Error>?
    /// This device's sending key per room, and what it knows about handing it out.
    var senderKeys: [String: SenderKeyState] = [:]
    var roomKeyStates: [String: RoomKeyState] = [:]
    /// The other members' keys per room.
    var senderKeyStores: [String: SenderKeyStore] = [:]
    var memberLists: [String: (members: [MemberResponse], fetchedAt: Date)] = [:]
    /// Each contact's accepted devices as last fetched, used for `deviceListLifetime` seconds.
    var deviceLists: [String: (devices: [PublicDevice], fetchedAt: Date)] = [:]
    var deviceListLifetime = SecureChatClient.defaultDeviceListLifetime
    /// Whether a direct message gets a `delivered` receipt back once it is stored here.
    var sendsDeliveryReceipts = true
    /// Delivered receipts gathered while the stored backlog arrives, sent together once caught up.
    var pendingReceipts: [String: [String]] = [:]
    /// Joins seen in room events, reported (or admitted) once the event is committed.
    var joinsToReport: [ServerFrame.RoomEvent] = []
    var senderKeyRotation = SenderKeyRotationPolicy(maxMessages: 5000, maxAge: 7 * 86_400)
    var isClosed = false
    let logger: Logger

    /// How many one-time prekeys the device keeps on the server.
    static let oneTimePreKeyTarget = 100
    /// A signed prekey is replaced after a week; the replaced one is kept two more weeks for
    /// initiations still in flight.
    static let signedPreKeyLifetime: TimeInterval = 7 * 86_400
    static let signedPreKeyGrace: TimeInterval = 14 * 86_400

    init(store: LocalStore, identity: IdentityKeyPair, account: AccountRecord, keys: DeviceKeys, logger: Logger) {
        (events, eventSink) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
        self.store = store
        self.identity = identity
        self.account = account
        self.api = APIClient(baseURL: account.server)
        self.keys = keys
        self.logger = logger
    }

    // MARK: Creating and opening

    /// Registers a new account on `server` and makes this device its first device.
    public static func register(
        server: URL, username: String, password: String, deviceName: String, directory: URL, passphrase: String,
        logger: Logger = Logger(label: "securechat-client")
    ) async throws(ClientError) -> SecureChatClient {
        try await create(server: server, directory: directory, passphrase: passphrase, cost: .standard, logger: logger, deviceName: deviceName) {
            api throws(ClientError) in
            let _: AccountResponse = try await api.send(.POST, "/v1/accounts", json: RegisterRequest(username: username, password: password))
            return try await api.send(.POST, "/v1/sessions", json: LoginRequest(username: username, password: password))
        }
    }

    /// Logs in to an existing account and adds this device to it (a new device starts with no
    /// history: past direct messages were encrypted for the account's other devices only).
    public static func login(
        server: URL, username: String, password: String, deviceName: String, directory: URL, passphrase: String,
        logger: Logger = Logger(label: "securechat-client")
    ) async throws(ClientError) -> SecureChatClient {
        try await create(server: server, directory: directory, passphrase: passphrase, cost: .standard, logger: logger, deviceName: deviceName) {
            api throws(ClientError) in
            try await api.send(.POST, "/v1/sessions", json: LoginRequest(username: username, password: password))
        }
    }

    /// Tests only: the same as ``register(server:username:password:deviceName:directory:passphrase:logger:)``
    /// with a cheap passphrase derivation.
    static func registerForTesting(
        server: URL, username: String, password: String, directory: URL, passphrase: String = "test passphrase"
    ) async throws(ClientError) -> SecureChatClient {
        try await create(server: server, directory: directory, passphrase: passphrase, cost: .testing, logger: Logger(label: "test"), deviceName: "test") {
            api throws(ClientError) in
            let _: AccountResponse = try await api.send(.POST, "/v1/accounts", json: RegisterRequest(username: username, password: password))
            return try await api.send(.POST, "/v1/sessions", json: LoginRequest(username: username, password: password))
        }
    }

    /// Tests only: ``login(server:username:password:deviceName:directory:passphrase:logger:)`` with a cheap derivation.
    static func loginForTesting(
        server: URL, username: String, password: String, directory: URL, passphrase: String = "test passphrase"
    ) async throws(ClientError) -> SecureChatClient {
        try await create(server: server, directory: directory, passphrase: passphrase, cost: .testing, logger: Logger(label: "test"), deviceName: "test") {
            api throws(ClientError) in
            try await api.send(.POST, "/v1/sessions", json: LoginRequest(username: username, password: password))
        }
    }

    private static func create(
        server: URL, directory: URL, passphrase: String, cost: StoreKeys.Cost, logger: Logger, deviceName: String,
        authenticate: (APIClient) async throws(ClientError) -> TokenResponse
    ) async throws(ClientError) -> SecureChatClient {
        let store = try LocalStore.create(in: directory, passphrase: passphrase, cost: cost)
        do {
            let api = APIClient(baseURL: server)
            let tokens = try await authenticate(api)
            let identity = IdentityKeyPair()
            var keys = DeviceKeys()
            let now = UInt64(Date().timeIntervalSince1970)
            let signed = identity.makeSignedPreKey(id: 1, createdAt: now)
            keys.add(signed, createdAt: now)
            let oneTime = (1...UInt32(oneTimePreKeyTarget)).map { OneTimePreKeyPair(id: $0) }
            for pair in oneTime { keys.add(pair) }
            // The private keys are stored before their public parts leave the device.
            var changes = LocalStore.Changes()
            changes.put(.identity, "identity", Data(identity.seed.bytes))
            keys.drainChanges(into: &changes)
            try store.commit(changes)
            let device: DeviceResponse = try await api.send(
                .POST, "/v1/devices", token: tokens.accessToken,
                json: DeviceRegistration(
                    name: deviceName, identityKey: Data(identity.publicKey.rawRepresentation),
                    signedPreKey: Data(signed.publicPart.serialized), oneTimePreKeys: oneTime.map { Data($0.publicPart.serialized) }))
            let account = AccountRecord(
                server: server, userId: tokens.userId, username: tokens.username, deviceId: device.deviceId,
                accessToken: tokens.accessToken, accessTokenExpiresAt: tokens.accessTokenExpiresAt,
                refreshToken: tokens.refreshToken, refreshTokenExpiresAt: tokens.refreshTokenExpiresAt,
                nextOneTimePreKeyId: UInt32(oneTimePreKeyTarget) + 1, nextSignedPreKeyId: 2, currentSignedPreKeyId: 1)
            var accountChanges = LocalStore.Changes()
            accountChanges.put(.account, "account", try encode(account))
            try store.commit(accountChanges)
            return SecureChatClient(store: store, identity: identity, account: account, keys: keys, logger: logger)
        } catch {
            // Nothing usable was made: leave no half-made store behind, so the next attempt can run.
            store.close()
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(LocalStore.fileName))
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(LocalStore.fileName + "-wal"))
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(LocalStore.fileName + "-shm"))
            throw error
        }
    }

    /// Opens the account already on this device.
    public static func open(
        directory: URL, passphrase: String, logger: Logger = Logger(label: "securechat-client")
    ) async throws(ClientError) -> SecureChatClient {
        let store = try LocalStore.open(in: directory, passphrase: passphrase)
        guard let accountData = try store.record(.account, "account") else {
            throw .noLocalState(directory.path)
        }
        let account: AccountRecord = try decode(accountData)
        guard let seed = try store.record(.identity, "identity"),
              let identity = try? IdentityKeyPair(seed: SecretBytes(seed))
        else { throw .corruptLocalState("identity key") }
        let keys = try DeviceKeys(store: store, identity: identity.publicKey)
        let client = SecureChatClient(store: store, identity: identity, account: account, keys: keys, logger: logger)
        try await client.load()
        return client
    }

    private func load() throws(ClientError) {
        for (name, payload) in try store.records(.session) {
            guard let address = Self.address(name), let session = try? Session(serialized: SecretBytes(payload)) else {
                throw .corruptLocalState("session \(name)")
            }
            sessions[address] = session
        }
        for (_, payload) in try store.records(.contact) {
            let contact: Contact = try Self.decode(payload)
            contacts[contact.userId] = contact
        }
        try loadRooms()
        for (row, frame) in try store.outbox() {
            guard case .send(let send) = try? APIJSON.makeDecoder().decode(ClientFrame.self, from: frame) else {
                throw .corruptLocalState("a queued message")
            }
            outbox.append(OutboxEntry(row: row, id: send.id, text: String(decoding: frame, as: UTF8.self)))
        }
        if let data = try store.record(.cursor, "inbox"), data.count == 8 {
            cursor = data.reduce(0) { $0 << 8 | Int64($1) }
        }
    }

    // MARK: Who this is

    public var userId: String { account.userId }
    public var username: String { account.username }
    public var deviceId: UInt32 { account.deviceId }
    public var address: DeviceAddress { DeviceAddress(userId: account.userId, deviceId: account.deviceId) }
    public var identityKey: Data { Data(identity.publicKey.rawRepresentation) }
    public var server: URL { account.server }

    /// A user's name as this device knows it (their user id if it has never learnt it).
    public func displayName(of userId: String) -> String {
        if userId == account.userId { return account.username }
        if let name = contacts[userId]?.username { return name }
        for (members, _) in memberLists.values {
            if let member = members.first(where: { $0.userId == userId }) { return member.username }
        }
        return userId
    }

    public func contact(_ userId: String) -> Contact? { contacts[userId] }

    /// The conversation's archived messages, oldest first (at most `limit`, the newest ones).
    public func history(_ conversation: Conversation, limit: Int = 100) throws(ClientError) -> [ChatMessage] {
        var messages: [ChatMessage] = []
        for entry in try store.archive(conversation: conversation.archiveName, limit: limit) {
            messages.append(try Self.decode(entry))
        }
        return messages
    }

    /// The 60-digit safety number between this device and each device of `userId` that this
    /// device has accepted (PROTOCOL.md §8).
    public func safetyNumbers(with userId: String) throws(ClientError) -> [UInt32: SafetyNumber] {
        guard let contact = contacts[userId] else { throw .unknownUser(userId) }
        var numbers: [UInt32: SafetyNumber] = [:]
        for (deviceId, key) in contact.devices {
            guard let remote = try? IdentityKey(rawRepresentation: key) else { continue }
            numbers[deviceId] = SafetyNumber(local: identity.publicKey, localUserId: account.userId, remote: remote, remoteUserId: userId)
        }
        return numbers
    }

    // MARK: Closing

    /// Disconnects and closes the local store. The client cannot be used afterwards.
    public func close() async {
        guard !isClosed else { return }
        isClosed = true
        await disconnect()
        failFlushWaiters()
        eventSink.finish()
        store.close()
    }

    /// Ends this device's session on the server, then closes. The local store stays (its keys
    /// still decrypt the archive); log in again to use the account.
    public func logout() async throws(ClientError) {
        let token: String
        do {
            token = try await validToken()
        } catch .server(401, _, _) {
            // The refresh token is spent or revoked: the session has ended already.
            await close()
            return
        }
        await close()
        do {
            try await api.send(.DELETE, "/v1/sessions/current", token: token)
        } catch .server(401, .unauthorized, _) {
            // Already ended.
        }
    }

    // MARK: Helpers

    func emit(_ event: ClientEvent) {
        eventSink.yield(event)
    }

    static func encode(_ value: some Encodable) throws(ClientError) -> Data {
        do {
            return try APIJSON.makeEncoder().encode(value)
        } catch {
            throw .corruptLocalState("could not encode \(type(of: value)): \(error)")
        }
    }

    static func decode<Value: Decodable>(_ data: Data) throws(ClientError) -> Value {
        do {
            return try APIJSON.makeDecoder().decode(Value.self, from: data)
        } catch {
            throw .corruptLocalState("could not decode \(Value.self)")
        }
    }

    static func sessionName(_ address: DeviceAddress) -> String { "\(address.userId).\(address.deviceId)" }

    static func address(_ name: String) -> DeviceAddress? {
        guard let dot = name.lastIndex(of: "."), let deviceId = UInt32(name[name.index(after: dot)...]) else { return nil }
        return DeviceAddress(userId: String(name[..<dot]), deviceId: deviceId)
    }

    static func cursorPayload(_ seq: Int64) -> Data {
        Data((0..<8).reversed().map { UInt8(truncatingIfNeeded: seq >> ($0 * 8)) })
    }
}
