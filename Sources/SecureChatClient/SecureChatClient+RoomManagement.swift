import Foundation
public import SecureChatAPI
public import SecureChatProtocol

/// Creating, joining and running rooms, and who this device trusts in them (PROTOCOL.md §14.4).
extension SecureChatClient {
    /// How long a fetched member list is used before the next send fetches it again. Devices a
    /// member adds produce no event (API.md §3.4), so the list must not be kept for long.
    static let memberListLifetime: TimeInterval = 30

    // MARK: Managing rooms

    /// Creates a room; this device's user is its owner and, for now, its only admitted member.
    /// With `autoAdmit`, this device admits everyone who joins (through the room's code and
    /// password) as soon as it sees the join; otherwise each join waits for ``admit(_:to:)``.
    public func createRoom(
        name: String, password: String? = nil, retentionSeconds: Int64? = nil, autoAdmit: Bool = false
    ) async throws(ClientError) -> RoomResponse {
        let token = try await validToken()
        let room: RoomResponse = try await api.send(
            .POST, "/v1/rooms", token: token, json: CreateRoomRequest(name: name, password: password, retentionSeconds: retentionSeconds))
        try updateRoomState(room.code) { state in
            state.admitted = [account.userId]
            state.autoAdmit = autoAdmit
        }
        return room
    }

    /// Joins a room. The members listed at this moment are trusted as they are (as a first
    /// contact is); later joiners need an admin's admission.
    public func joinRoom(_ code: String, password: String? = nil) async throws(ClientError) -> RoomResponse {
        let token = try await validToken()
        let room: RoomResponse = try await api.send(.POST, "/v1/rooms/\(APIClient.segment(code))/join", token: token, json: JoinRoomRequest(password: password))
        let members = try await self.members(of: code)
        try updateRoomState(code) { state in state.admitted = Set(members.map(\.userId)) }
        return room
    }

    /// Admits a member who joined (this device's user must be the room's owner or an admin): a
    /// signed room message tells every member's device to trust them.
    public func admit(_ userId: String, to code: String) async throws(ClientError) {
        let members = try await self.members(of: code)
        guard let me = members.first(where: { $0.userId == account.userId }), me.role >= .admin else { throw .notAdmin(room: code) }
        guard members.contains(where: { $0.userId == userId }) else { throw .unknownUser(userId) }
        try updateRoomState(code) { state in
            state.admitted = (state.admitted ?? Set(members.map(\.userId)).subtracting([userId])).union([userId])
            state.unconfirmed.remove(userId)
        }
        try await send(.admission(userIds: [userId]), toRoom: code)
        emit(.memberAdmitted(room: code, userId: userId, by: account.userId))
    }

    /// Trusts a member on this device only (no admin admitted them): this device's keys go to them.
    public func trustMember(_ userId: String, in code: String) throws(ClientError) {
        try updateRoomState(code) { state in
            state.admitted = (state.admitted ?? []).union([userId])
            state.unconfirmed.remove(userId)
        }
        emit(.memberAdmitted(room: code, userId: userId, by: account.userId))
    }

    /// Members the server lists now whom this device does not trust yet (nobody admitted them).
    public func unconfirmedMembers(of code: String) async throws(ClientError) -> [String] {
        let listed = Set(try await members(of: code).map(\.userId))
        guard let admitted = roomKeyStates[code]?.admitted else { return [] }
        return listed.subtracting(admitted).sorted()
    }

    /// Turns admitting every joiner automatically on or off for this device (an admin's).
    public func setAutoAdmit(_ on: Bool, in code: String) throws(ClientError) {
        try updateRoomState(code) { $0.autoAdmit = on }
    }

    func updateRoomState(_ code: String, _ change: (inout RoomKeyState) -> Void) throws(ClientError) {
        var state = roomKeyStates[code] ?? RoomKeyState()
        change(&state)
        var changes = LocalStore.Changes()
        changes.put(.roomState, code, try Self.encode(state))
        try commit(changes)
        roomKeyStates[code] = state
    }

    public func leaveRoom(_ code: String) async throws(ClientError) {
        let token = try await validToken()
        try await api.send(.POST, "/v1/rooms/\(APIClient.segment(code))/leave", token: token)
        try forgetRoom(code)
    }

    public func rooms() async throws(ClientError) -> [RoomResponse] {
        let token = try await validToken()
        let list: RoomListResponse = try await api.send(.GET, "/v1/rooms", token: token)
        return list.rooms
    }

    /// The room's members, fetched now.
    public func members(of code: String) async throws(ClientError) -> [MemberResponse] {
        let token = try await validToken()
        let list: MemberListResponse = try await api.send(.GET, "/v1/rooms/\(APIClient.segment(code))/members", token: token)
        memberLists[code] = (list.members, Date())
        return list.members
    }

    public func removeMember(_ userId: String, from code: String) async throws(ClientError) {
        let token = try await validToken()
        try await api.send(.DELETE, "/v1/rooms/\(APIClient.segment(code))/members/\(APIClient.segment(userId))", token: token)
        try markForRotation(code, without: userId)
    }

    public func ban(_ userId: String, from code: String) async throws(ClientError) {
        let token = try await validToken()
        try await api.send(.POST, "/v1/rooms/\(APIClient.segment(code))/bans", token: token, json: BanRequest(userId: userId))
        try markForRotation(code, without: userId)
    }

    public func unban(_ userId: String, from code: String) async throws(ClientError) {
        let token = try await validToken()
        try await api.send(.DELETE, "/v1/rooms/\(APIClient.segment(code))/bans/\(APIClient.segment(userId))", token: token)
    }

    /// Sets the room's password, or removes it with `nil`.
    public func setRoomPassword(_ code: String, password: String?) async throws(ClientError) {
        let token = try await validToken()
        try await api.send(.PUT, "/v1/rooms/\(APIClient.segment(code))/password", token: token, json: RoomPasswordRequest(password: password))
    }

    public func setRole(_ role: RoomRole, of userId: String, in code: String) async throws(ClientError) {
        let token = try await validToken()
        try await api.send(
            .PUT, "/v1/rooms/\(APIClient.segment(code))/members/\(APIClient.segment(userId))/role", token: token, json: RoleChangeRequest(role: role))
    }

    /// Sets when this device starts a new sender key in its rooms (PROTOCOL.md §7.5): by
    /// default after 5,000 messages or 7 days. Membership changes always start one.
    public func setSenderKeyRotation(_ policy: SenderKeyRotationPolicy) {
        senderKeyRotation = policy
    }
}
