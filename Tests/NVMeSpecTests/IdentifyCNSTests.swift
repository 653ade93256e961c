import Testing
import NVMeSpec

@Suite struct IdentifyCNSTests {
    @Test func values() {
        // NVMe 1.4 Figure 245.
        let table: [(IdentifyCNS, UInt8)] = [
            (.namespace, 0x00), (.controller, 0x01), (.activeNamespaceList, 0x02),
            (.namespaceIdentificationDescriptorList, 0x03), (.nvmSetList, 0x04), (.allocatedNamespaceList, 0x10),
            (.identifyNamespaceAllocated, 0x11), (.namespaceAttachedControllerList, 0x12), (.controllerList, 0x13),
            (.primaryControllerCapabilities, 0x14), (.secondaryControllerList, 0x15),
            (.namespaceGranularityList, 0x16), (.uuidList, 0x17),
        ]
        for (c, v) in table {
            #expect(c.rawValue == v && IdentifyCNS(rawValue: v) == c && c.name != "Unknown")
        }
        #expect(Set(table.map(\.0.name)).count == table.count)
        #expect(IdentifyCNS.controller.description == "Identify Controller")
        #expect(IdentifyCNS(0x1C).name == "Unknown")
    }
}
