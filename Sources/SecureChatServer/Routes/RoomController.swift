import Foundation
import Hummingbird
import SecureChatAPI

/// Rooms: joined by an unguessable code and an optional password, with owner, admins and members.
struct RoomController {
    let services: ChatServices

    func addRoutes(to group: RouterGroup<AuthenticatedContext>) {
        group.post("rooms", use: create)
        group.json(.get, "rooms", use: list)
        group.get("rooms/{code}", use: info)
        group.delete("rooms/{code}", use: delete)
        group.json(.post, "rooms/{code}/join", use: join)
        group.post("rooms/{code}/leave", use: leave)
        group.json(.get, "rooms/{code}/members", use: members)
        group.delete("rooms/{code}/members/{userId}", use: kick)
        group.put("rooms/{code}/members/{userId}/role", use: setRole)
        group.json(.get, "rooms/{code}/bans", use: bans)
        group.post("rooms/{code}/bans", use: ban)
        group.delete("rooms/{code}/bans/{userId}", use: unban)
        group.put("rooms/{code}/password", use: setPassword)
        group.json(.get, "rooms/{code}/messages", use: history)
    }

    @Sendable func create(_ request: Request, context: AuthenticatedContext) async throws -> JSONBody<RoomResponse> {
        let body = try await APIRequestDecoding.decode(CreateRoomRequest.self, from: request)
        let name = try Self.checkedName(body.name)
        try services.limits.take(
            services.limits.roomsCreatedPerAccount, context.user.userId, limit: "rooms_created_per_account", now: services.now,
            message: "too many rooms created; try again later")
        let serverRetention = Int64(services.configuration.messageRetention)
        let retention = body.retentionSeconds ?? serverRetention
        guard (60...serverRetention).contains(retention) else {
            throw APIFailure.badRequest("retentionSeconds must be between 60 and the server's \(serverRetention)")
        }
        var passwordHash: String?
        if let password = body.password {
            try Passwords.checkRoomPassword(password)
            try services.chargePasswordCheck(from: context.remoteAddress)
            passwordHash = try await services.passwords.hash(password)
        }
        let now = services.nowMilliseconds
        let room = try await services.store.createRoom(
            RoomRecord(id: 0, code: Identifiers.roomCode(), name: name, passwordHash: passwordHash, retentionSeconds: retention, createdAt: now),
            ownerId: context.user.userId, now: now)
        return JSONBody(Self.response(room, role: .owner, memberCount: 1), status: .created)
    }

    @Sendable func list(_ request: Request, context: AuthenticatedContext) async throws -> RoomListResponse {
        RoomListResponse(
            rooms: try await services.store.rooms(userId: context.user.userId).map { Self.response($0.room, role: $0.role, memberCount: $0.memberCount) })
    }

    /// Members see the room; others who know the code see a preview to decide whether to join.
    @Sendable func info(_ request: Request, context: AuthenticatedContext) async throws -> Response {
        let room = try await room(context)
        if let membership = try await services.store.membership(roomId: room.id, userId: context.user.userId) {
            let count = try await services.store.memberCount(roomId: room.id)
            return try JSONBody(Self.response(room, role: membership.role, memberCount: count)).response(from: request, context: context)
        }
        return try JSONBody(RoomPreview(code: room.code, name: room.name, passwordRequired: room.passwordHash != nil))
            .response(from: request, context: context)
    }

    @Sendable func join(_ request: Request, context: AuthenticatedContext) async throws -> RoomResponse {
        let room = try await room(context)
        let body = try await APIRequestDecoding.decodeIfPresent(JoinRoomRequest.self, from: request) ?? JoinRoomRequest()
        if try await services.store.membership(roomId: room.id, userId: context.user.userId) != nil {
            throw APIFailure(.conflict, .alreadyMember, "you are already a member of this room")
        }
        if let passwordHash = room.passwordHash {
            // Per room and client address: guessing one room's password is slow, and one
            // attacker cannot lock everyone else out of it.
            let key = "\(room.id)|\(ClientAddress.limitKey(context.remoteAddress))"
            try services.limits.check(
                services.limits.wrongRoomPasswords, key, limit: "wrong_room_passwords", now: services.now,
                message: "too many wrong passwords for this room; try again later")
            if body.password != nil { try services.chargePasswordCheck(from: context.remoteAddress) }
            guard let password = body.password, password.utf8.count <= APILimits.passwordMaximumBytes,
                try await services.passwords.verify(password, hash: passwordHash)
            else {
                // Asking without a password is how a client learns that one is needed: no penalty.
                if body.password != nil {
                    services.limits.wrongRoomPasswords.recordFailure(key, now: services.now)
                    await services.audit(.wrongRoomPassword, user: context.user.userId, room: room.id, from: context.remoteAddress)
                }
                throw APIFailure(.forbidden, .wrongRoomPassword, body.password == nil ? "this room needs a password" : "wrong room password")
            }
            services.limits.wrongRoomPasswords.recordSuccess(key)
        }
        let deliveries = try await services.store.join(
            roomId: room.id, userId: context.user.userId, maxMembers: services.configuration.maxMembersPerRoom, now: services.nowMilliseconds)
        services.hub.deliver(deliveries)
        let count = try await services.store.memberCount(roomId: room.id)
        return Self.response(room, role: .member, memberCount: count)
    }

    @Sendable func leave(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let room = try await room(context)
        services.hub.deliver(try await services.store.leave(roomId: room.id, userId: context.user.userId, now: services.nowMilliseconds))
        return .noContent
    }

    @Sendable func members(_ request: Request, context: AuthenticatedContext) async throws -> MemberListResponse {
        let room = try await memberRoom(context)
        return MemberListResponse(
            members: try await services.store.members(roomId: room.id).map { member in
                MemberResponse(
                    userId: member.userId, username: member.username, role: member.role, deviceIds: member.deviceIds,
                    joinedAt: Date(milliseconds: member.joinedAt))
            })
    }

    @Sendable func kick(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let room = try await memberRoom(context)
        let target = try context.parameters.require("userId")
        services.hub.deliver(
            try await services.store.kick(roomId: room.id, actorId: context.user.userId, targetId: target, ban: false, now: services.nowMilliseconds))
        context.logger.info("member removed", metadata: ["room": "\(room.id)"])
        await services.audit(.memberKicked, user: target, by: context.user.userId, room: room.id, from: context.remoteAddress)
        return .noContent
    }

    @Sendable func setRole(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let room = try await memberRoom(context)
        let target = try context.parameters.require("userId")
        let body = try await APIRequestDecoding.decode(RoleChangeRequest.self, from: request)
        services.hub.deliver(
            try await services.store.setRole(
                roomId: room.id, actorId: context.user.userId, targetId: target, role: body.role, now: services.nowMilliseconds))
        await services.audit(
            .roleChanged, user: target, by: context.user.userId, room: room.id, from: context.remoteAddress, "role \(body.role.rawValue)")
        return .noContent
    }

    @Sendable func bans(_ request: Request, context: AuthenticatedContext) async throws -> BanListResponse {
        let room = try await memberRoom(context)
        return BanListResponse(userIds: try await services.store.bans(roomId: room.id))
    }

    @Sendable func ban(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let room = try await memberRoom(context)
        let body = try await APIRequestDecoding.decode(BanRequest.self, from: request)
        services.hub.deliver(
            try await services.store.kick(
                roomId: room.id, actorId: context.user.userId, targetId: body.userId, ban: true, now: services.nowMilliseconds))
        context.logger.info("member banned", metadata: ["room": "\(room.id)"])
        await services.audit(.memberBanned, user: body.userId, by: context.user.userId, room: room.id, from: context.remoteAddress)
        return .noContent
    }

    @Sendable func unban(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let room = try await memberRoom(context)
        let target = try context.parameters.require("userId")
        try await services.store.unban(roomId: room.id, actorId: context.user.userId, targetId: target)
        await services.audit(.memberUnbanned, user: target, by: context.user.userId, room: room.id, from: context.remoteAddress)
        return .noContent
    }

    @Sendable func setPassword(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let room = try await memberRoom(context)
        let body = try await APIRequestDecoding.decode(RoomPasswordRequest.self, from: request)
        var hash: String?
        if let password = body.password {
            try Passwords.checkRoomPassword(password)
            try services.chargePasswordCheck(from: context.remoteAddress)
            hash = try await services.passwords.hash(password)
        }
        try await services.store.setRoomPassword(roomId: room.id, actorId: context.user.userId, hash: hash)
        context.logger.info("room password changed", metadata: ["room": "\(room.id)"])
        await services.audit(
            .roomPasswordChanged, user: context.user.userId, room: room.id, from: context.remoteAddress, hash == nil ? "removed" : "set")
        return .noContent
    }

    @Sendable func delete(_ request: Request, context: AuthenticatedContext) async throws -> HTTPResponse.Status {
        let room = try await memberRoom(context)
        let removed = try await services.store.deleteRoom(roomId: room.id, actorId: context.user.userId, now: services.nowMilliseconds)
        services.attachments.delete(removed.attachmentIds)
        services.hub.deliver(removed.deliveries)
        await services.audit(.roomDeleted, user: context.user.userId, room: room.id, from: context.remoteAddress)
        return .noContent
    }

    /// Newest first, from the caller's joining onward.
    @Sendable func history(_ request: Request, context: AuthenticatedContext) async throws -> HistoryPage {
        let room = try await room(context)
        guard let membership = try await services.store.membership(roomId: room.id, userId: context.user.userId) else {
            throw APIFailure.notAMember
        }
        let query = request.uri.queryParameters
        let limit = try query.get("limit").map { text in
            guard let value = Int(text), APILimits.historyPageSize.contains(value) else {
                throw APIFailure.badRequest("limit must be between 1 and \(APILimits.historyPageSize.upperBound)")
            }
            return value
        } ?? 50
        let before = try query.get("before").map { text in
            guard let value = Int64(text), value > 0 else { throw APIFailure.badRequest("before must be a message id") }
            return value
        }
        let records = try await services.store.history(
            roomId: room.id, visibleAfter: membership.historyAfterMessageId, before: before, limit: limit)
        let messages = try records.map { record in
            HistoryMessage(
                messageId: record.messageId, sender: record.sender, clientMessageId: record.clientMessageId,
                ciphertext: try services.cipher.open(
                    record.ciphertext,
                    context: AtRestCipher.messageContext(sender: record.sender, clientMessageId: record.clientMessageId, recipient: nil)),
                sentAt: Date(milliseconds: record.sentAt))
        }
        return HistoryPage(messages: messages, nextBefore: records.count == limit ? records.last?.messageId : nil)
    }

    // MARK: Helpers

    private func room(_ context: AuthenticatedContext) async throws -> RoomRecord {
        let code = try context.parameters.require("code")
        guard code.utf8.count <= 64, let room = try await services.store.room(code: code.lowercased()) else {
            throw APIFailure.notFound("room")
        }
        return room
    }

    private func memberRoom(_ context: AuthenticatedContext) async throws -> RoomRecord {
        let room = try await room(context)
        guard try await services.store.membership(roomId: room.id, userId: context.user.userId) != nil else {
            throw APIFailure.notAMember
        }
        return room
    }

    static func checkedName(_ name: String) throws -> String {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard APILimits.roomNameLength.contains(trimmed.count),
            !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { throw APIFailure.badRequest("a room name is 1 to 100 characters without control characters") }
        return trimmed
    }

    static func response(_ room: RoomRecord, role: RoomRole, memberCount: Int) -> RoomResponse {
        RoomResponse(
            code: room.code, name: room.name, passwordRequired: room.passwordHash != nil, retentionSeconds: room.retentionSeconds,
            memberCount: memberCount, role: role, createdAt: Date(milliseconds: room.createdAt))
    }
}

