public import Foundation

/// `POST /v1/devices`: a device publishes its identity key, a signed prekey and one-time prekeys.
///
/// Keys use the encodings of docs/PROTOCOL.md: `identityKey` the 32-byte Ed25519 key,
/// `signedPreKey` the 110-byte signed prekey, each one-time prekey 38 bytes; base64 in JSON.
/// The server checks every key and the signature before storing anything.
public struct DeviceRegistration: Codable, Sendable {
    public var name: String
    public var identityKey: Data
    public var signedPreKey: Data
    public var oneTimePreKeys: [Data]
    public init(name: String, identityKey: Data, signedPreKey: Data, oneTimePreKeys: [Data]) {
        self.name = name
        self.identityKey = identityKey
        self.signedPreKey = signedPreKey
        self.oneTimePreKeys = oneTimePreKeys
    }
}

/// One of the caller's own devices.
public struct DeviceResponse: Codable, Sendable, Equatable {
    public var deviceId: UInt32
    public var name: String
    public var identityKey: Data
    public var createdAt: Date
    public var oneTimePreKeyCount: Int
    public init(deviceId: UInt32, name: String, identityKey: Data, createdAt: Date, oneTimePreKeyCount: Int) {
        self.deviceId = deviceId
        self.name = name
        self.identityKey = identityKey
        self.createdAt = createdAt
        self.oneTimePreKeyCount = oneTimePreKeyCount
    }
}

public struct DeviceListResponse: Codable, Sendable {
    public var devices: [DeviceResponse]
    public init(devices: [DeviceResponse]) { self.devices = devices }
}

/// `PUT /v1/devices/{deviceId}/signed-prekey`: replaces the signed prekey (same identity key).
public struct SignedPreKeyUpload: Codable, Sendable {
    public var signedPreKey: Data
    public init(signedPreKey: Data) { self.signedPreKey = signedPreKey }
}

/// `POST /v1/devices/{deviceId}/one-time-prekeys`.
public struct OneTimePreKeyUpload: Codable, Sendable {
    public var oneTimePreKeys: [Data]
    public init(oneTimePreKeys: [Data]) { self.oneTimePreKeys = oneTimePreKeys }
}

/// How many one-time prekeys the server holds for a device, and whether to upload more.
public struct PreKeyCountResponse: Codable, Sendable, Equatable {
    public var count: Int
    public var low: Bool
    public init(count: Int, low: Bool) {
        self.count = count
        self.low = low
    }
}

/// One device's bundle as handed to someone starting a session; its one-time prekey (if any was
/// left) is now deleted from the server and will never be handed out again.
public struct DeviceBundle: Codable, Sendable, Equatable {
    public var deviceId: UInt32
    public var identityKey: Data
    public var signedPreKey: Data
    public var oneTimePreKey: Data?
    public init(deviceId: UInt32, identityKey: Data, signedPreKey: Data, oneTimePreKey: Data?) {
        self.deviceId = deviceId
        self.identityKey = identityKey
        self.signedPreKey = signedPreKey
        self.oneTimePreKey = oneTimePreKey
    }
}

/// `POST /v1/users/{userId}/bundles`: claims one bundle per device of that user (POST, because
/// claiming consumes one-time prekeys).
public struct BundleResponse: Codable, Sendable {
    public var userId: String
    public var username: String
    public var devices: [DeviceBundle]
    public init(userId: String, username: String, devices: [DeviceBundle]) {
        self.userId = userId
        self.username = username
        self.devices = devices
    }
}

/// One device of another account, as `GET /v1/users/{userId}/devices` lists it: enough to know
/// whom to encrypt for and to notice a new or changed identity, without consuming prekeys.
public struct PublicDevice: Codable, Sendable, Equatable {
    public var deviceId: UInt32
    public var identityKey: Data
    public init(deviceId: UInt32, identityKey: Data) {
        self.deviceId = deviceId
        self.identityKey = identityKey
    }
}

public struct UserDevicesResponse: Codable, Sendable, Equatable {
    public var userId: String
    public var username: String
    public var devices: [PublicDevice]
    public init(userId: String, username: String, devices: [PublicDevice]) {
        self.userId = userId
        self.username = username
        self.devices = devices
    }
}
