import Testing

@testable import SecureChatProtocol

@Suite("Message padding")
struct PaddingTests {
    @Test("lengths round up to whole 160-byte blocks and come back exactly")
    func roundTrip() throws {
        for length in [0, 1, 158, 159, 160, 161, 319, 320, 1000] {
            let plaintext = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }
            let padded = MessagePadding.pad(plaintext)
            #expect(padded.count % 160 == 0 && padded.count > length && padded.count <= length + 160, "\(length)")
            #expect(try MessagePadding.unpad(padded) == plaintext)
        }
        // Trailing zeros of the message itself survive: the marker separates them from the padding.
        #expect(try MessagePadding.unpad(MessagePadding.pad([1, 0, 0])) == [1, 0, 0])
    }

    @Test("without the marker the plaintext is refused")
    func missingMarker() {
        #expect(throws: MessagePadding.Error.missingMarker) { try MessagePadding.unpad([]) }
        #expect(throws: MessagePadding.Error.missingMarker) { try MessagePadding.unpad([0, 0, 0]) }
        #expect(throws: MessagePadding.Error.missingMarker) { try MessagePadding.unpad([0x80, 0x01, 0x00]) }
    }
}
