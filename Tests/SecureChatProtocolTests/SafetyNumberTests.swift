import SecureChatKeys
import SecureChatTestSupport
import Testing
@testable import SecureChatProtocol

@Suite("Safety numbers")
struct SafetyNumberTests {
    // libsignal's published test inputs (rust/protocol/src/fingerprint.rs tests): serialized
    // identity keys with their 0x05 type byte, and phone numbers as stable identifiers.
    static let aliceKey = Hex.decode("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
    static let bobKey = Hex.decode("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
    static let aliceId = Array("+14152222222".utf8)
    static let bobId = Array("+14153333333".utf8)

    @Test("reproduces libsignal's displayable and scannable test values")
    func libsignalValues() throws {
        let alice = SafetyNumber(localKey: Self.aliceKey, localIdentifier: Self.aliceId, remoteKey: Self.bobKey, remoteIdentifier: Self.bobId)
        let bob = SafetyNumber(localKey: Self.bobKey, localIdentifier: Self.bobId, remoteKey: Self.aliceKey, remoteIdentifier: Self.aliceId)
        #expect(alice.displayable == "300354477692869396892869876765458257569162576843440918079131")
        #expect(bob.displayable == alice.displayable)
        #expect(Hex.encode(alice.scannable) == "080112220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df1a220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d")
        #expect(Hex.encode(bob.scannable) == "080112220a20d62cbf73a11592015b6b9f1682ac306fea3aaf3885b84d12bca631e9d4fb3a4d1a220a201e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df")
        #expect(try alice.matches(scanned: bob.scannable))
        #expect(try bob.matches(scanned: alice.scannable))
    }

    @Test("both sides agree for SecureChat identities; a different key changes the number")
    func bothSides() throws {
        let alice = IdentityKeyPair(), bob = IdentityKeyPair(), mallory = IdentityKeyPair()
        let fromAlice = SafetyNumber(local: alice.publicKey, localUserId: "alice", remote: bob.publicKey, remoteUserId: "bob")
        let fromBob = SafetyNumber(local: bob.publicKey, localUserId: "bob", remote: alice.publicKey, remoteUserId: "alice")
        #expect(fromAlice.displayable == fromBob.displayable)
        #expect(fromAlice.displayable.count == 60 && fromAlice.displayable.allSatisfy(\.isNumber))
        #expect(fromAlice.groups.count == 12 && fromAlice.groups.allSatisfy { $0.count == 5 })
        #expect(try fromAlice.matches(scanned: fromBob.scannable))
        let attacked = SafetyNumber(local: bob.publicKey, localUserId: "bob", remote: mallory.publicKey, remoteUserId: "alice")
        #expect(attacked.displayable != fromAlice.displayable)
        #expect(try !fromAlice.matches(scanned: attacked.scannable))
        // Scanning one's own code is not a match.
        #expect(try !fromAlice.matches(scanned: fromAlice.scannable))
    }

    @Test("malformed and other-version scans are typed errors")
    func malformedScans() throws {
        let number = SafetyNumber(localKey: Self.aliceKey, localIdentifier: Self.aliceId, remoteKey: Self.bobKey, remoteIdentifier: Self.bobId)
        #expect(throws: SafetyNumberError.malformed) { try number.matches(scanned: Array(number.scannable.dropLast())) }
        var version = number.scannable
        version[1] = 2
        #expect(throws: SafetyNumberError.versionMismatch(2)) { try number.matches(scanned: version) }
        var structure = number.scannable
        structure[38] = 0
        #expect(throws: SafetyNumberError.malformed) { try number.matches(scanned: structure) }
    }
}
