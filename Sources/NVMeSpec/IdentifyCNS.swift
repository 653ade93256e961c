/// Controller or Namespace Structure values for Identify, CDW10 bits 7:0
/// (NVMe 1.4 §5.15.1, Figure 245). Open enum-like struct.
public struct IdentifyCNS: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(_ rawValue: UInt8) { self.rawValue = rawValue }
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// 00h — Identify Namespace data for NSID (active namespace).
    public static let namespace = IdentifyCNS(0x00)
    /// 01h — Identify Controller data.
    public static let controller = IdentifyCNS(0x01)
    /// 02h — active namespace ID list (NSIDs greater than CDW1.NSID).
    public static let activeNamespaceList = IdentifyCNS(0x02)
    /// 03h — namespace identification descriptor list for NSID.
    public static let namespaceIdentificationDescriptorList = IdentifyCNS(0x03)
    /// 04h — NVM set list.
    public static let nvmSetList = IdentifyCNS(0x04)
    /// 10h — allocated namespace ID list.
    public static let allocatedNamespaceList = IdentifyCNS(0x10)
    /// 11h — Identify Namespace data for an allocated NSID.
    public static let identifyNamespaceAllocated = IdentifyCNS(0x11)
    /// 12h — controllers attached to NSID.
    public static let namespaceAttachedControllerList = IdentifyCNS(0x12)
    /// 13h — controllers in the NVM subsystem.
    public static let controllerList = IdentifyCNS(0x13)
    /// 14h — primary controller capabilities.
    public static let primaryControllerCapabilities = IdentifyCNS(0x14)
    /// 15h — secondary controller list.
    public static let secondaryControllerList = IdentifyCNS(0x15)
    /// 16h — namespace granularity list.
    public static let namespaceGranularityList = IdentifyCNS(0x16)
    /// 17h — UUID list.
    public static let uuidList = IdentifyCNS(0x17)

    static let names: [UInt8: String] = [
        0x00: "Identify Namespace", 0x01: "Identify Controller", 0x02: "Active Namespace ID List",
        0x03: "Namespace Identification Descriptor List", 0x04: "NVM Set List",
        0x10: "Allocated Namespace ID List", 0x11: "Identify Namespace (Allocated)",
        0x12: "Namespace Attached Controller List", 0x13: "Controller List",
        0x14: "Primary Controller Capabilities", 0x15: "Secondary Controller List",
        0x16: "Namespace Granularity List", 0x17: "UUID List",
    ]
    public var name: String { Self.names[rawValue] ?? "Unknown" }
    public var description: String { name }
}
