import ArgumentParser
import Foundation
import SecureChatAPI

/// Drives the release server binary over loopback WebSockets and prints the figures
/// docs/BENCHMARKS.md records. The load generator shares the machine's cores with the server.
@main
struct LoadGenerator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "LoadGenerator", abstract: "Measure securechat-server: throughput, latency, CPU, memory, authentications.")

    @Option(help: "The server binary (build it with swift build -c release).")
    var server = ".build/release/securechat-server"

    @Option(help: "A postgres:// URL to measure PostgreSQL instead of SQLite.")
    var databaseURL: String?

    @Option(help: "Seconds each measurement runs (after a 2-second warm-up).")
    var seconds: Double = 10

    @Option(help: "Sender/receiver pairs for 1:1 traffic.")
    var pairs = 16

    @Option(help: "Unanswered sends each sender keeps in flight.")
    var window = 64

    @Option(help: "Idle authenticated connections for the memory figure.")
    var idleConnections = 10_000

    @Option(help: "An argument for the server, e.g. --server-argument=--websocket-compression --server-argument=off (repeatable).")
    var serverArgument: [String] = []

    @Option(help: "Scenarios to run: oneToOne, latency, room, idle, auth; client and clientRoom measure the SDK end to end; metrics (alone) times the server's counters and histograms; crossInstance (PostgreSQL) sends through one instance to receivers on a second.")
    var scenario: [String] = ["oneToOne", "latency", "room", "auth", "idle"]

    func run() async throws {
        raiseFileLimit()
        if scenario == ["metrics"] {
            MetricsCost.measure()
            return
        }
        let server = try ServerUnderTest(binary: URL(fileURLWithPath: self.server), databaseURL: databaseURL, extraArguments: serverArgument)
        defer { server.stop() }
        let endpoint = Endpoint(port: server.port)
        emit("server pid \(server.process.processIdentifier) on port \(server.port), \(databaseURL == nil ? "SQLite" : "PostgreSQL")")
        emit("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB")

        if scenario.contains("oneToOne") { try await oneToOne(server, endpoint) }
        if scenario.contains("latency") { try await latency(server, endpoint, rate: 2000) }
        if scenario.contains("room") { try await room(server, endpoint, members: 50) }
        if scenario.contains("auth") { try await authentications(server, endpoint) }
        if scenario.contains("idle") { try await idle(server, endpoint) }
        if scenario.contains("client") {
            try await clientOneToOne(server, receipts: false)
            try await clientOneToOne(server, receipts: true)
        }
        if scenario.contains("clientRoom") { try await clientRoom(server, members: 50) }
        if scenario.contains("crossInstance") {
            guard databaseURL != nil else { throw ValidationError("crossInstance needs --database-url: instances meet in PostgreSQL") }
            let second = try ServerUnderTest(
                binary: URL(fileURLWithPath: self.server), databaseURL: databaseURL, sharing: server, extraArguments: serverArgument)
            defer { second.stop() }
            emit("second instance pid \(second.process.processIdentifier) on port \(second.port): senders on the first, receivers on the second")
            try await oneToOne(server, endpoint, receiversAt: Endpoint(port: second.port), also: [second])
            try await latency(server, endpoint, rate: 2000, receiversAt: Endpoint(port: second.port), also: [second])
        }
    }

    /// Runs `tasks` concurrently, measures for `seconds` after a warm-up, then cancels them.
    /// Server CPU is summed over `server` and `others`.
    func measure(
        _ server: ServerUnderTest, also others: [ServerUnderTest] = [], counters: Counters, tasks: [@Sendable () async throws -> Void]
    ) async throws -> (delivered: Int, accepted: Int, latencies: [UInt64], cpu: Double, elapsed: Double) {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in tasks {
                group.addTask {
                    do { try await task() } catch is CancellationError {} catch {
                        if !Task.isCancelled { emit("client failed: \(error)") }
                    }
                }
            }
            try await Task.sleep(for: .seconds(2))
            counters.startMeasuring()
            let servers = [server] + others
            let cpuStart = servers.map(\.cpuSeconds).reduce(0, +)
            let start = monotonicNanoseconds()
            try await Task.sleep(for: .seconds(seconds))
            let snapshot = counters.snapshot
            let elapsed = Double(monotonicNanoseconds() - start) / 1e9
            let cpu = servers.map(\.cpuSeconds).reduce(0, +) - cpuStart
            group.cancelAll()
            return (snapshot.delivered, snapshot.accepted, snapshot.latencies, cpu, elapsed)
        }
    }

    func makeUsers(_ server: ServerUnderTest, prefix: String, count: Int, devices: Int = 1) async throws -> [BenchUser] {
        try await withThrowingTaskGroup(of: BenchUser.self) { group in
            var users: [BenchUser] = []
            var next = 0
            // Eight registrations at a time: bcrypt is the cost, on the server's two cores.
            while next < count || !group.isEmpty {
                while next < count && next - users.count < 8 {
                    let name = "bench-\(prefix)\(next)"
                    group.addTask { try await server.makeUser(name, devices: devices) }
                    next += 1
                }
                if let user = try await group.next() { users.append(user) }
            }
            return users
        }
    }

    /// Receivers connect to `receiversAt` (another instance) when given.
    func oneToOne(_ server: ServerUnderTest, _ endpoint: Endpoint, receiversAt: Endpoint? = nil, also others: [ServerUnderTest] = []) async throws {
        let receiverEndpoint = receiversAt ?? endpoint
        let across = receiversAt == nil ? "" : " across two instances"
        let senders = try await makeUsers(server, prefix: receiversAt == nil ? "s" : "xs", count: pairs)
        let receivers = try await makeUsers(server, prefix: receiversAt == nil ? "r" : "xr", count: pairs)
        let counters = Counters()
        var tasks: [@Sendable () async throws -> Void] = []
        let window = self.window
        for (index, (sender, receiver)) in zip(senders, receivers).enumerated() {
            tasks.append {
                try await runDevice(receiverEndpoint, token: receiver.token, deviceId: receiver.deviceIds[0], role: .receiver, counters: counters)
            }
            tasks.append {
                try await runDevice(
                    endpoint, token: sender.token, deviceId: sender.deviceIds[0],
                    role: .sender(
                        recipientUserId: receiver.userId, recipientDeviceId: receiver.deviceIds[0], window: window, interval: 0,
                        prefix: "p\(index)"),
                    counters: counters)
            }
        }
        let result = try await measure(server, also: others, counters: counters, tasks: tasks)
        emit(
            String(
                format: "1:1 throughput\(across): %.0f delivered/s, %.0f accepted/s, server CPU %.1f µs per message (%d pairs, window %d)",
                Double(result.delivered) / result.elapsed, Double(result.accepted) / result.elapsed,
                result.cpu / Double(max(result.delivered, 1)) * 1e6, pairs, window))
        report(latencies: result.latencies, label: "1:1 latency under full load\(across)")
    }

    func latency(
        _ server: ServerUnderTest, _ endpoint: Endpoint, rate: Int, receiversAt: Endpoint? = nil, also others: [ServerUnderTest] = []
    ) async throws {
        let receiverEndpoint = receiversAt ?? endpoint
        let across = receiversAt == nil ? "" : " across two instances"
        let count = 10
        let senders = try await makeUsers(server, prefix: receiversAt == nil ? "ls" : "xls", count: count)
        let receivers = try await makeUsers(server, prefix: receiversAt == nil ? "lr" : "xlr", count: count)
        let counters = Counters()
        let interval = UInt64(1e9) * UInt64(count) / UInt64(rate)
        var tasks: [@Sendable () async throws -> Void] = []
        for (index, (sender, receiver)) in zip(senders, receivers).enumerated() {
            tasks.append {
                try await runDevice(receiverEndpoint, token: receiver.token, deviceId: receiver.deviceIds[0], role: .receiver, counters: counters)
            }
            tasks.append {
                try await runDevice(
                    endpoint, token: sender.token, deviceId: sender.deviceIds[0],
                    role: .sender(
                        recipientUserId: receiver.userId, recipientDeviceId: receiver.deviceIds[0], window: 1000, interval: interval,
                        prefix: "l\(index)"),
                    counters: counters)
            }
        }
        let result = try await measure(server, also: others, counters: counters, tasks: tasks)
        emit(
            String(
                format: "paced 1:1 at %d/s\(across): %.0f delivered/s, server CPU %.1f µs per message", rate,
                Double(result.delivered) / result.elapsed, result.cpu / Double(max(result.delivered, 1)) * 1e6))
        report(latencies: result.latencies, label: "send-to-delivery latency at \(rate)/s\(across)")
    }

    func room(_ server: ServerUnderTest, _ endpoint: Endpoint, members: Int) async throws {
        let users = try await makeUsers(server, prefix: "m", count: members)
        let room = try await server.call(
            .POST, "/v1/rooms", token: users[0].token, json: CreateRoomRequest(name: "load"), as: RoomResponse.self)
        for user in users.dropFirst() {
            _ = try await server.call(.POST, "/v1/rooms/\(room.code)/join", token: user.token, json: JoinRoomRequest(), as: RoomResponse.self)
        }
        let counters = Counters()
        let senderCount = 4
        let window = self.window
        var tasks: [@Sendable () async throws -> Void] = []
        for (index, user) in users.enumerated() {
            let role: Role = index < senderCount ? .roomSender(room: room.code, window: window, prefix: "room\(index)") : .receiver
            tasks.append {
                try await runDevice(endpoint, token: user.token, deviceId: user.deviceIds[0], role: role, counters: counters)
            }
        }
        let result = try await measure(server, counters: counters, tasks: tasks)
        emit(
            String(
                format: "%d-member room: %.0f messages sent/s, %.0f deliveries/s to the %d listening members, server CPU %.1f µs per delivery",
                members, Double(result.accepted) / result.elapsed, Double(result.delivered) / result.elapsed, members - senderCount,
                result.cpu / Double(max(result.delivered, 1)) * 1e6))
    }

    func authentications(_ server: ServerUnderTest, _ endpoint: Endpoint) async throws {
        // Each loop its own device: a device's new connection replaces its previous one.
        let users = try await makeUsers(server, prefix: "a", count: 8, devices: 4)
        let counters = Counters()
        var tasks: [@Sendable () async throws -> Void] = []
        for user in users {
            for deviceId in user.deviceIds {
                tasks.append {
                    // The handler counts an authentication when it is in, and closes.
                    while !Task.isCancelled {
                        try await runDevice(endpoint, token: user.token, deviceId: deviceId, role: .authenticateOnce, counters: counters)
                    }
                }
            }
        }
        let result = try await measure(server, counters: counters, tasks: tasks)
        emit(
            String(
                format: "WebSocket authentications (connect, hello, welcome, close): %.0f/s, server CPU %.0f µs each",
                Double(result.delivered) / result.elapsed, result.cpu / Double(max(result.delivered, 1)) * 1e6))
    }

    func idle(_ server: ServerUnderTest, _ endpoint: Endpoint) async throws {
        let users = try await makeUsers(server, prefix: "i", count: (idleConnections + 9) / 10, devices: 10)
        let before = server.residentBytes
        let connected = Counters()
        try await withThrowingTaskGroup(of: Void.self) { group in
            var opened = 0
            for user in users {
                for deviceId in user.deviceIds where opened < idleConnections {
                    opened += 1
                    group.addTask {
                        try await runDevice(endpoint, token: user.token, deviceId: deviceId, role: .idle, counters: connected)
                    }
                    if opened % 500 == 0 { try await Task.sleep(for: .milliseconds(200)) }
                }
            }
            while connected.snapshot.delivered < idleConnections { try await Task.sleep(for: .milliseconds(200)) }
            try await Task.sleep(for: .seconds(5))
            let after = server.residentBytes
            emit(
                String(
                    format: "%d idle authenticated connections: server RSS %.1f MiB → %.1f MiB, %.1f KiB per connection", idleConnections,
                    Double(before) / 1_048_576, Double(after) / 1_048_576, Double(after - before) / Double(idleConnections) / 1024))
            group.cancelAll()
        }
    }

    func report(latencies: [UInt64], label: String) {
        guard !latencies.isEmpty else { return }
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double { Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6 }
        emit(
            String(
                format: "%@: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d samples)", label, percentile(0.5), percentile(0.99),
                Double(sorted.last ?? 0) / 1e6, sorted.count))
    }

    func raiseFileLimit() {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// Writes a line at once (unbuffered), so that figures reach a log even if a later scenario fails.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
