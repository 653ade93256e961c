import BlockIO
import NVMeSpec

/// Maps the metadata pointer (MPTR) of an NVM command (NVMe 1.4 §4.2, §8.2.2):
/// - PSDT 00b or 01b: MPTR is the address of one contiguous buffer; it
///   must be dword aligned (SGLS bit 17, byte-aligned metadata, is clear).
/// - PSDT 10b: MPTR is the address of an SGL segment holding exactly one
///   SGL descriptor, qword aligned (SGLS bit 19); that descriptor maps the
///   metadata like SGL1 maps data, and a length mismatch is Metadata SGL
///   Length Invalid.
public enum MetadataPointerMapper {
    public static func map(mptr: UInt64, psdt: UInt8, length: Int, direction: DataDirection,
                           into iov: inout [IOVector], pinning pin: inout DMAPin?, in space: HostAddressSpace) -> NVMeStatus {
        if length == 0 { return .success }
        switch psdt {
        case 0, 1:
            guard mptr & 0x3 == 0 else { return NVMeStatus.invalidField.withDNR }
            let status = space.withLookup { lookup -> NVMeStatus in
                var inCMB: Bool?
                return lookup.appendData(mptr, UInt64(length), to: &iov, inCMB: &inCMB, pin: &pin)
            }
            if !status.isSuccess { pin?.release() }
            return status
        case 2:
            guard mptr & 0x7 == 0 else { return NVMeStatus.invalidField.withDNR }
            var raw = [UInt8](repeating: 0, count: SGLDescriptor.size)
            guard raw.withUnsafeMutableBytes({ space.read(mptr, into: $0) }),
                  let descriptor = raw.withUnsafeBytes({ SGLDescriptor(bytes: $0) }) else {
                return NVMeStatus.dataTransferError.withDNR
            }
            let status = SGLMapper.map(sgl1: descriptor, length: length, direction: direction, into: &iov,
                                       pinning: &pin, in: space)
            if status.code == NVMeStatus.dataSGLLengthInvalid.code && status.type == .generic {
                return NVMeStatus.metadataSGLLengthInvalid.withDNR
            }
            return status
        default:
            return NVMeStatus.invalidField.withDNR
        }
    }
}
