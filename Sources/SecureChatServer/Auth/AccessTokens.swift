import Crypto
import Foundation
import JWTKit

/// The claims of an access token. Short-lived; the session id lets logout and password changes
/// end it before it expires.
struct AccessTokenClaims: JWTPayload {
    var sub: SubjectClaim
    /// The refresh-token family (session) this token belongs to.
    var sid: String
    var iat: IssuedAtClaim
    var exp: ExpirationClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// Why an access token was refused. All of them answer 401; only expiry gets its own code so
/// that clients know to refresh rather than to log in again.
enum AccessTokenError: Error, Equatable {
    case malformed
    case wrongAlgorithm
    case unknownKey
    case badSignature
    case expired
}

/// Issues and checks access tokens: HS256 JWTs with a `kid` naming the signing key.
///
/// The algorithm is pinned before JWTKit sees the token: the header must be exactly HS256 with a
/// known `kid`. `alg: none`, other algorithms and unknown keys are refused up front, so that no
/// library default (JWTKit falls back to its default key for an unknown `kid`) can widen what we accept.
struct AccessTokens: Sendable {
    static let algorithm = "HS256"

    private let collection: JWTKeyCollection
    private let keyIds: Set<String>
    private let currentKeyId: String
    let lifetime: TimeInterval

    init(keys: KeyRing, lifetime: TimeInterval) async {
        let collection = JWTKeyCollection()
        for (id, key) in keys.keys {
            await collection.add(hmac: HMACKey(key: key), digestAlgorithm: .sha256, kid: JWKIdentifier(string: id))
        }
        self.collection = collection
        self.keyIds = Set(keys.keys.keys)
        self.currentKeyId = keys.currentId
        self.lifetime = lifetime
    }

    func issue(userId: String, sessionId: String, now: Date) async throws -> (token: String, expiresAt: Date) {
        // Whole seconds: JWT dates are NumericDate seconds.
        let issuedAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let expiresAt = issuedAt.addingTimeInterval(lifetime)
        let claims = AccessTokenClaims(
            sub: SubjectClaim(value: userId), sid: sessionId, iat: IssuedAtClaim(value: issuedAt),
            exp: ExpirationClaim(value: expiresAt))
        var header = JWTHeader()
        header.alg = Self.algorithm
        header.typ = "JWT"
        let token = try await collection.sign(claims, kid: JWKIdentifier(string: currentKeyId), header: header)
        return (token, expiresAt)
    }

    func verify(_ token: String, now: Date) async throws(AccessTokenError) -> AccessTokenClaims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count <= 4096, let headerBytes = Self.base64URLDecode(parts[0]),
            let header = try? JSONDecoder().decode(PinnedHeader.self, from: headerBytes)
        else { throw .malformed }
        guard header.alg == Self.algorithm, header.typ == nil || header.typ == "JWT", header.crit == nil else {
            throw .wrongAlgorithm
        }
        guard let kid = header.kid, keyIds.contains(kid) else { throw .unknownKey }
        let claims: AccessTokenClaims
        do {
            claims = try await collection.verify(token, as: AccessTokenClaims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw .expired
        } catch {
            throw .badSignature
        }
        // JWTKit checks expiry against its own clock; check against ours too (tests move time).
        guard claims.exp.value > now else { throw .expired }
        return claims
    }

    private struct PinnedHeader: Decodable {
        var alg: String?
        var typ: String?
        var kid: String?
        var crit: [String]?
    }

    private static func base64URLDecode(_ text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64.append("=") }
        return Data(base64Encoded: base64)
    }
}
