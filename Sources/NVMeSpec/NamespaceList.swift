/// A namespace list (NVMe 1.4 §4.9, Figure 114): 1024 namespace identifiers of
/// 4 bytes each, 4096 bytes, unused entries zero. Returned by Identify CNS 02h
/// (active namespace list), CNS 10h (allocated namespace list) and by the
/// Changed Namespace List log page (log identifier 04h).
public struct NamespaceList: Hashable, Sendable, NVMeWireFormat {
    public static let size = 4096
    /// Maximum number of identifiers in one list.
    public static let capacity = 1024
    /// Changed Namespace List: the first entry is FFFFFFFFh when more than 1024
    /// namespaces changed (NVMe 1.4 §5.14.1.4).
    public static let overflowMarker: UInt32 = 0xFFFF_FFFF

    /// The identifiers before the first zero entry (at most 1024).
    public var nsids: [UInt32]

    /// Byte offset of entry `index`.
    @inlinable public static func offset(ofEntry index: Int) -> Int { index * 4 }

    /// A list holding `nsids` in the given order (entries past 1024 are dropped on encode).
    public init(_ nsids: [UInt32] = []) { self.nsids = nsids }

    /// An Identify CNS 02h/10h style list: the identifiers of `nsids` greater
    /// than `after`, in increasing order, at most 1024 (NVMe 1.4 §5.15.2.4).
    public init(ascending nsids: some Sequence<UInt32>, after: UInt32) {
        self.nsids = Array(nsids.filter { $0 > after }.sorted().prefix(Self.capacity))
    }

    /// The Changed Namespace List log content for `changed` identifiers: the
    /// list itself, or the overflow marker when more than 1024 changed.
    public static func changedNamespaces(_ changed: [UInt32]) -> NamespaceList {
        changed.count > capacity ? NamespaceList([overflowMarker]) : NamespaceList(changed)
    }

    /// True for a Changed Namespace List that overflowed.
    public var isOverflow: Bool { nsids.first == Self.overflowMarker }

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        var ids: [UInt32] = []
        for i in 0 ..< Self.capacity {
            let id = bytes.le32(Self.offset(ofEntry: i))
            if id == 0 { break }
            ids.append(id)
        }
        nsids = ids
    }

    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.zeroFill(Self.size)
        for (i, id) in nsids.prefix(Self.capacity).enumerated() {
            out.put32(id, at: Self.offset(ofEntry: i))
        }
    }
}
