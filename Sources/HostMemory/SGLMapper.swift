import BlockIO
import NVMeSpec

/// Turns an SGL data pointer into a scatter-gather list of daemon memory
/// (NVMe 1.4 §4.4), with the choices of QEMU hw/nvme `nvme_map_sgl` (2020-21).
///
/// Supported: Data Block (sub type Address), Bit Bucket (controller → host
/// only), Segment and Last Segment. Identify Controller SGLS bit 18 is clear,
/// so an SGL that describes more data than the command transfers is Data SGL
/// Length Invalid, as one that describes less (§4.4, QEMU).
public enum SGLMapper {
    /// Upper bound on the descriptors read for one command, so that a hostile
    /// segment chain ends with an error instead of spinning.
    public static let maxDescriptors = 1 << 16
    /// Descriptors read from host memory at a time (one 4 KiB chunk, as QEMU).
    static let chunk = 256

    /// Maps SGL1 (the 16 bytes at SQE offset 24: the prp1 and prp2 fields) of
    /// `length` bytes.
    /// - Returns: the vectors (physically adjacent pieces merged; bit bucket
    ///   pieces point into a discard buffer of the address space; empty for
    ///   length 0), or the status to complete the command with.
    public static func map(sgl1Low: UInt64, sgl1High: UInt64, length: Int, direction: DataDirection,
                           in space: HostAddressSpace) -> Result<[IOVector], NVMeStatus> {
        var iov: [IOVector] = []
        let status = map(sgl1: SGLDescriptor(low: sgl1Low, high: sgl1High), length: length, direction: direction,
                         into: &iov, in: space)
        return status.isSuccess ? .success(iov) : .failure(status)
    }

    /// As `map`, from a decoded descriptor, appending to `iov`. On failure
    /// `iov` holds an unspecified prefix and must be discarded.
    public static func map(sgl1: SGLDescriptor, length: Int, direction: DataDirection,
                           into iov: inout [IOVector], in space: HostAddressSpace) -> NVMeStatus {
        var noPin: DMAPin?
        return map(sgl1: sgl1, length: length, direction: direction, into: &iov, pinning: &noPin, in: space)
    }

    /// As `map`, and when `pin` is non-nil, pins the regions the data lies in
    /// (see `PRPMapper.map(prp1:prp2:length:pageSize:into:pinning:in:)`).
    public static func map(sgl1: SGLDescriptor, length: Int, direction: DataDirection,
                           into iov: inout [IOVector], pinning pin: inout DMAPin?, in space: HostAddressSpace) -> NVMeStatus {
        precondition(length >= 0)
        if length == 0 { return .success }
        let (status, pinned) = space.withLookup { lookup -> (NVMeStatus, DMAPin?) in
            var walker = Walker(lookup: lookup, direction: direction, remaining: UInt64(length), pin: pin)
            let status = walker.run(sgl1, &iov)
            return (status, walker.pin)
        }
        pin = pinned
        if !status.isSuccess { pin?.release() }
        return status
    }

    private struct Walker {
        let lookup: RegionLookup
        let direction: DataDirection
        /// Bytes still to map.
        var remaining: UInt64
        var descriptorsRead = 0
        /// Whether the data mapped so far is in the CMB (nil before the first piece).
        var inCMB: Bool?
        /// Regions pinned for the command's AIOs (nil: no pinning asked).
        var pin: DMAPin?

        init(lookup: RegionLookup, direction: DataDirection, remaining: UInt64, pin: DMAPin?) {
            self.lookup = lookup; self.direction = direction; self.remaining = remaining; self.pin = pin
        }

        mutating func run(_ sgl1: SGLDescriptor, _ iov: inout [IOVector]) -> NVMeStatus {
            switch sgl1.type {
            case .dataBlock, .bitBucket:
                // The whole transfer described by one descriptor.
                if let status = mapData(CollectionOfOne(sgl1), &iov) { return status }
                return finish()
            case .segment, .lastSegment:
                return walkSegments(from: sgl1, &iov)
            default:
                return NVMeStatus.sglDescriptorTypeInvalid.withDNR
            }
        }

        /// After the walk: data shorter than the command is an error.
        func finish() -> NVMeStatus {
            remaining == 0 ? .success : NVMeStatus.dataSGLLengthInvalid.withDNR
        }

        /// Maps data descriptors (Data Block, Bit Bucket); a Segment or Last
        /// Segment here is misplaced. Returns the status that ends the
        /// command, or nil when every descriptor was mapped.
        mutating func mapData<C: Collection<SGLDescriptor>>(_ descriptors: C, _ iov: inout [IOVector]) -> NVMeStatus? {
            for d in descriptors {
                switch d.type {
                case .dataBlock:
                    // Sub type Offset is for fabrics (SGLS bit 20 clear).
                    guard d.subtype == .address else { return NVMeStatus.sglDescriptorTypeInvalid.withDNR }
                case .bitBucket:
                    // §4.4: a bit bucket only discards data the controller sends.
                    guard direction == .controllerToHost else { return NVMeStatus.sglDescriptorTypeInvalid.withDNR }
                case .segment, .lastSegment:
                    // A segment pointer must be the last descriptor of its segment.
                    return NVMeStatus.invalidNumberOfSGLDescriptors.withDNR
                default:
                    return NVMeStatus.sglDescriptorTypeInvalid.withDNR
                }
                let dlen = UInt64(d.length)
                if dlen == 0 { continue }
                // All data is mapped and the SGL describes more (SGLS bit 18 clear).
                if remaining == 0 { return NVMeStatus.dataSGLLengthInvalid.withDNR }
                let n = min(remaining, dlen)
                if d.type == .bitBucket {
                    var left = n
                    while left > 0 {
                        let piece = min(left, UInt64(HostAddressSpace.discardSize))
                        appendMerging(lookup.discard, Int(piece), to: &iov)
                        left -= piece
                    }
                } else {
                    guard UInt64.max - d.address >= dlen else { return NVMeStatus.dataSGLLengthInvalid.withDNR }
                    let status = lookup.appendData(d.address, n, to: &iov, inCMB: &inCMB, pin: &pin)
                    guard status.isSuccess else { return status }
                }
                remaining -= n
            }
            return nil
        }

        /// Reads `count` descriptors at `address` into `buffer`.
        mutating func read(_ address: UInt64, _ count: Int,
                           _ buffer: UnsafeMutableRawBufferPointer) -> Result<[SGLDescriptor], NVMeStatus> {
            descriptorsRead += count
            guard descriptorsRead <= SGLMapper.maxDescriptors else {
                return .failure(NVMeStatus.invalidNumberOfSGLDescriptors.withDNR)
            }
            let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< count * SGLDescriptor.size])
            // An unreadable SGL segment: Data Transfer Error, DNR set (as QEMU).
            guard lookup.read(address, into: bytes) else { return .failure(NVMeStatus.dataTransferError.withDNR) }
            var out: [SGLDescriptor] = []
            out.reserveCapacity(count)
            for k in 0 ..< count {
                out.append(SGLDescriptor(bytes: UnsafeRawBufferPointer(
                    rebasing: bytes[k * SGLDescriptor.size ..< (k + 1) * SGLDescriptor.size]))!)
            }
            return .success(out)
        }

        mutating func walkSegments(from first: SGLDescriptor, _ iov: inout [IOVector]) -> NVMeStatus {
            withUnsafeTemporaryAllocation(byteCount: SGLMapper.chunk * SGLDescriptor.size, alignment: 8) { buffer in
                var segment = first
                while true {
                    let before = remaining
                    guard segment.subtype == .address else { return NVMeStatus.sglDescriptorTypeInvalid.withDNR }
                    // §4.4: a (Last) Segment's length is a non-zero multiple of 16.
                    let segLen = UInt64(segment.length)
                    guard segLen != 0, segLen % UInt64(SGLDescriptor.size) == 0 else {
                        return NVMeStatus.invalidSGLSegmentDescriptor.withDNR
                    }
                    guard UInt64.max - segment.address >= segLen else { return NVMeStatus.dataSGLLengthInvalid.withDNR }
                    var address = segment.address
                    var count = Int(segLen) / SGLDescriptor.size

                    // Leading full chunks hold data descriptors only.
                    while count > SGLMapper.chunk {
                        let descriptors: [SGLDescriptor]
                        switch read(address, SGLMapper.chunk, buffer) {
                        case .failure(let status): return status
                        case .success(let d): descriptors = d
                        }
                        if let status = mapData(descriptors, &iov) { return status }
                        count -= SGLMapper.chunk
                        address += UInt64(SGLMapper.chunk * SGLDescriptor.size)
                    }

                    let descriptors: [SGLDescriptor]
                    switch read(address, count, buffer) {
                    case .failure(let status): return status
                    case .success(let d): descriptors = d
                    }
                    let last = descriptors[count - 1]
                    switch last.type {
                    case .segment, .lastSegment:
                        // §4.4: a Last Segment holds no further segment pointer.
                        if segment.type == .lastSegment { return NVMeStatus.invalidSGLSegmentDescriptor.withDNR }
                        if let status = mapData(descriptors.dropLast(), &iov) { return status }
                        // A segment that maps nothing and chains on would let a
                        // host loop forever (QEMU rejects it the same way).
                        if remaining == before { return NVMeStatus.invalidSGLSegmentDescriptor.withDNR }
                        segment = last
                    default:
                        // The segment ends with data: the SGL ends here.
                        if let status = mapData(descriptors, &iov) { return status }
                        return finish()
                    }
                }
            }
        }
    }
}
