import BlockIO
import NVMeSpec

/// Which way data moves; decides whether an SGL bit bucket is allowed.
public enum DataDirection: Sendable, Hashable {
    /// Writes and other commands that read host memory.
    case hostToController
    /// Reads and other commands that write host memory.
    case controllerToHost
}

/// Turns a PRP data pointer into a scatter-gather list of daemon memory
/// (NVMe 1.4 §4.3), with the choices of QEMU hw/nvme `nvme_map_prp`.
public enum PRPMapper {
    /// Maps a PRP1/PRP2 data pointer of `length` bytes with memory page size
    /// `pageSize` (a power of two, CC.MPS).
    /// - Returns: the vectors (physically adjacent pieces merged; empty for
    ///   length 0), or the status to complete the command with.
    public static func map(prp1: UInt64, prp2: UInt64, length: Int, pageSize: Int,
                           in space: HostAddressSpace) -> Result<[IOVector], NVMeStatus> {
        var iov: [IOVector] = []
        let status = map(prp1: prp1, prp2: prp2, length: length, pageSize: pageSize, into: &iov, in: space)
        return status.isSuccess ? .success(iov) : .failure(status)
    }

    /// As `map`, appending to `iov` (so a caller can reuse its capacity).
    /// On failure `iov` holds an unspecified prefix and must be discarded.
    public static func map(prp1: UInt64, prp2: UInt64, length: Int, pageSize: Int,
                           into iov: inout [IOVector], in space: HostAddressSpace) -> NVMeStatus {
        var noPin: DMAPin?
        return map(prp1: prp1, prp2: prp2, length: length, pageSize: pageSize, into: &iov, pinning: &noPin, in: space)
    }

    /// As `map`, and when `pin` is non-nil, pins the regions the data lies in
    /// for the AIOs that will use it, in the same critical section that found
    /// them. On failure nothing stays pinned.
    public static func map(prp1: UInt64, prp2: UInt64, length: Int, pageSize: Int,
                           into iov: inout [IOVector], pinning pin: inout DMAPin?, in space: HostAddressSpace) -> NVMeStatus {
        precondition(pageSize >= 16 && pageSize & (pageSize - 1) == 0, "page size must be a power of two")
        precondition(length >= 0)
        if length == 0 { return .success }
        // PRP1 0 is an address like any other (host memory starts at 0), as in QEMU.
        let status = space.withLookup { lookup in
            walk(prp1: prp1, prp2: prp2, length: UInt64(length), page: UInt64(pageSize), lookup, &iov, &pin)
        }
        if !status.isSuccess { pin?.release() }
        return status
    }

    private static func walk(prp1: UInt64, prp2: UInt64, length: UInt64, page: UInt64,
                             _ lookup: RegionLookup, _ iov: inout [IOVector], _ pin: inout DMAPin?) -> NVMeStatus {
        let mask = page - 1
        // §4.3: PRP1 may carry an offset; its piece runs to the end of that page.
        let first = min(length, page - (prp1 & mask))
        var inCMB: Bool?
        let status = lookup.appendData(prp1, first, to: &iov, inCMB: &inCMB, pin: &pin)
        guard status.isSuccess else { return status }
        var remaining = length - first
        if remaining == 0 { return .success }

        if remaining <= page {
            // PRP2 is the second (and last) data page: no offset allowed.
            guard prp2 & mask == 0 else { return NVMeStatus.prpOffsetInvalid.withDNR }
            return lookup.appendData(prp2, remaining, to: &iov, inCMB: &inCMB, pin: &pin)
        }

        // PRP2 is a PRP List pointer. §4.3 lets it carry a page offset (the
        // list starts there); its bits 1:0 must be clear.
        guard prp2 & 3 == 0 else { return NVMeStatus.prpOffsetInvalid.withDNR }
        let pageEntries = page >> 3
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: Int(pageEntries)) { entries in
            var listAddress = prp2
            // Entries left in the current list page, from the list pointer's offset.
            var pageSlots = (page - (prp2 & mask)) >> 3
            var count = 0, i = 0
            // Reads the entries this list page still contributes (QEMU reads
            // the page remainder on the first page; only the entries needed
            // are read here, which differs only when a list page is partly unbacked).
            func load() -> Bool {
                let needed = (remaining + mask) / page
                count = Int(min(pageSlots, needed))
                i = 0
                let bytes = UnsafeMutableRawBufferPointer(start: entries.baseAddress, count: count * 8)
                return lookup.read(listAddress, into: bytes)
            }
            // An unreadable PRP list: Data Transfer Error, DNR set (as QEMU).
            guard load() else { return NVMeStatus.dataTransferError.withDNR }
            // Every pass consumes one entry and at most one list page is
            // entered without mapping data, so a hostile list (a loop, a
            // self-pointer) ends after about length/page entries.
            while remaining > 0 {
                var entry = UInt64(littleEndian: entries[i])
                if i == count - 1 && remaining > page {
                    // The last slot of a full list page points to the next list page.
                    guard entry & mask == 0 else { return NVMeStatus.prpOffsetInvalid.withDNR }
                    listAddress = entry
                    pageSlots = pageEntries
                    guard load() else { return NVMeStatus.dataTransferError.withDNR }
                    entry = UInt64(littleEndian: entries[i])
                }
                // Every data entry after PRP1 starts on a page boundary.
                guard entry & mask == 0 else { return NVMeStatus.prpOffsetInvalid.withDNR }
                let n = min(remaining, page)
                let status = lookup.appendData(entry, n, to: &iov, inCMB: &inCMB, pin: &pin)
                guard status.isSuccess else { return status }
                remaining -= n
                i += 1
            }
            return .success
        }
    }
}

