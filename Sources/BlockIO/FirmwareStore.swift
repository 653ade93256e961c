import Glibc
import NVMeSpec

/// What a firmware image asks for to become the running firmware (the
/// byte at offset 16 of an nvmefs image, docs/FIRMWARE.md).
public enum FirmwareActivation: UInt8, Sendable, CaseIterable {
    /// Activated at once by Firmware Commit action 011b, or at any reset.
    case immediate = 0
    /// Needs a Controller Level Reset (CC.EN 1→0, NSSR, power cycle).
    case controllerReset = 1
    /// Needs a conventional reset: only a power cycle (the next mount).
    case conventionalReset = 2
    /// Needs an NVM Subsystem Reset (NSSR) or a power cycle.
    case subsystemReset = 3
    /// The controller refuses to activate it (Firmware Activation Prohibited).
    case prohibited = 4

    /// The name in the state file.
    public var name: String {
        switch self {
        case .immediate: "immediate"
        case .controllerReset: "controller-reset"
        case .conventionalReset: "conventional-reset"
        case .subsystemReset: "subsystem-reset"
        case .prohibited: "prohibited"
        }
    }
}

/// The header of an nvmefs firmware image (docs/FIRMWARE.md): bytes 0-7 the
/// magic `NVMEFSFW`, 8-15 the firmware revision (printable ASCII, space
/// padded, not blank), 16 the activation (`FirmwareActivation`), 17 reserved,
/// 18-19 the activation time in 100 ms units (little endian, compared with
/// MTFA); the rest of the image is the payload, unread.
public struct FirmwareImage: Sendable, Equatable {
    public static let magic = Array("NVMEFSFW".utf8)
    public static let headerSize = 20

    public var revision: String
    public var activation: FirmwareActivation
    /// Activation time in 100 ms units.
    public var activationTime: UInt16

    public init(revision: String, activation: FirmwareActivation = .immediate, activationTime: UInt16 = 0) {
        self.revision = revision; self.activation = activation; self.activationTime = activationTime
    }

    /// The header of `bytes`, or nil when it is not a valid nvmefs image.
    public init?(bytes: [UInt8]) {
        guard bytes.count >= Self.headerSize, Array(bytes[0..<8]) == Self.magic else { return nil }
        let field = bytes[8..<16]
        guard field.allSatisfy({ (0x20...0x7E).contains($0) }), field.contains(where: { $0 != 0x20 }),
              let activation = FirmwareActivation(rawValue: bytes[16]) else { return nil }
        var revision = String(decoding: field, as: UTF8.self)
        while revision.hasSuffix(" ") { revision.removeLast() }
        self.revision = revision
        self.activation = activation
        activationTime = UInt16(bytes[18]) | UInt16(bytes[19]) << 8
    }

    /// A header (`headerSize` bytes) for this image; the revision is cut or
    /// padded to 8 bytes.
    public var header: [UInt8] {
        var out = Self.magic
        let r = Array(revision.utf8.prefix(8))
        out += r + [UInt8](repeating: 0x20, count: 8 - r.count)
        out += [activation.rawValue, 0, UInt8(activationTime & 0xFF), UInt8(activationTime >> 8)]
        return out
    }
}

/// The firmware slots as the controller keeps them: slot 1 holds the
/// built-in (read-only) firmware and is never stored; slots 2-7 hold
/// committed images.
public struct FirmwareSlots: Sendable, Equatable {
    /// Slots 1...7 (FRMW, the Firmware Slot Information log).
    public static let count = FirmwareSlotLog.slotCount
    /// Committed images of slots 2...7, by slot.
    public var images: [Int: FirmwareImage] = [:]
    /// The slot whose firmware runs (1...7).
    public var active = 1
    /// The slot to activate at the next reset of its kind, and that kind
    /// (`.immediate` is not used: immediate activations are never pending).
    public var pending: (slot: Int, kind: FirmwareActivation)?

    public init() {}

    public static func == (a: FirmwareSlots, b: FirmwareSlots) -> Bool {
        a.images == b.images && a.active == b.active && a.pending?.slot == b.pending?.slot && a.pending?.kind == b.pending?.kind
    }
}

/// A firmware state directory (docs/FIRMWARE.md): `slotN.img` holds slot
/// N's committed image (N = 2...7) and `state` the active and pending slots,
/// `nvmefs-firmware 1` / `active N` / `pending N KIND`. Files are replaced
/// by writing a temporary file, syncing it and renaming it.
public final class FirmwareStore: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public func slotPath(_ slot: Int) -> String { directory + "/slot\(slot).img" }
    public var statePath: String { directory + "/state" }

    /// Reads the directory (creating it when missing). A pending activation
    /// takes effect here: mounting is a power cycle, a conventional reset
    /// (NVMe 1.4 §7.3.1), which every kind of pending activation waits for
    /// at most; the state file is then rewritten.
    /// - Throws: a one-line reason (an unreadable or invalid file).
    public func load() throws(FirmwareStoreError) -> FirmwareSlots {
        var st = stat()
        if stat(directory, &st) != 0 {
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
                throw FirmwareStoreError("cannot create the firmware directory \(directory): \(errnoDescription(errno))")
            }
        } else if st.st_mode & S_IFMT != S_IFDIR {
            throw FirmwareStoreError("firmware directory \(directory) is not a directory")
        }
        var slots = FirmwareSlots()
        for slot in 2...FirmwareSlots.count {
            guard let bytes = try readFile(slotPath(slot)) else { continue }
            guard let image = FirmwareImage(bytes: bytes) else {
                throw FirmwareStoreError("\(slotPath(slot)) is not an nvmefs firmware image")
            }
            slots.images[slot] = image
        }
        if let bytes = try readFile(statePath) {
            try parseState(String(decoding: bytes, as: UTF8.self), into: &slots)
        }
        if let p = slots.pending {
            slots.active = p.slot
            slots.pending = nil
            let err = saveState(slots)
            guard err == 0 else {
                throw FirmwareStoreError("cannot record the activated firmware in \(statePath): \(errnoDescription(err))")
            }
        }
        return slots
    }

    private func parseState(_ text: String, into slots: inout FirmwareSlots) throws(FirmwareStoreError) {
        let lines = text.split(separator: "\n")
        guard lines.first == "nvmefs-firmware 1" else { throw FirmwareStoreError("\(statePath): not an nvmefs firmware state file") }
        func slotNumber(_ word: Substring) throws(FirmwareStoreError) -> Int {
            guard let n = Int(word), (1...FirmwareSlots.count).contains(n), n == 1 || slots.images[n] != nil else {
                throw FirmwareStoreError("\(statePath): slot '\(word)' holds no image")
            }
            return n
        }
        for line in lines.dropFirst() {
            let words = line.split(separator: " ")
            switch (words.first, words.count) {
            case ("active", 2): slots.active = try slotNumber(words[1])
            case ("pending", 3):
                guard let kind = FirmwareActivation.allCases.first(where: { $0.name == words[2] }),
                      kind != .immediate, kind != .prohibited else {
                    throw FirmwareStoreError("\(statePath): unknown activation '\(words[2])'")
                }
                slots.pending = (try slotNumber(words[1]), kind)
            default: throw FirmwareStoreError("\(statePath): unexpected line '\(line)'")
            }
        }
    }

    /// The state file's text.
    public static func render(_ slots: FirmwareSlots) -> String {
        var text = "nvmefs-firmware 1\nactive \(slots.active)\n"
        if let p = slots.pending { text += "pending \(p.slot) \(p.kind.name)\n" }
        return text
    }

    /// Records the active and pending slots. Returns 0 or an errno.
    public func saveState(_ slots: FirmwareSlots) -> Int32 {
        replace(statePath, Array(Self.render(slots).utf8))
    }

    /// Stores `image` as slot `slot`'s. Returns 0 or an errno.
    public func saveSlot(_ slot: Int, image: [UInt8]) -> Int32 {
        replace(slotPath(slot), image)
    }

    /// nil when the file does not exist.
    private func readFile(_ path: String) throws(FirmwareStoreError) -> [UInt8]? {
        do { return try SystemCalls.readWholeFile(path) } catch {
            throw FirmwareStoreError("cannot read \(path): \(errnoDescription(error.errno))")
        }
    }

    private func replace(_ path: String, _ bytes: [UInt8]) -> Int32 {
        SystemCalls.replaceFile(path, with: bytes)
    }
}

public struct FirmwareStoreError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
