import BlockIO
import HostMemory
import NVMeSpec

extension NVMeController {
    /// Maps the command's data pointer for `length` bytes (§4.3 PRP, §4.4 SGL),
    /// enforcing MDTS. Admin commands use PRPs only (NVMe over PCIe). With
    /// `pinning`, the host memory regions of the data stay pinned in
    /// `req.pin` until the request is released, so that no region removal
    /// completes while an AIO may still use the memory.
    func mapData(_ req: Request, length: Int, direction: DataDirection, checkMDTS: Bool = true,
                 pinning: Bool = false) -> Result<[IOVector], NVMeStatus> {
        if checkMDTS, let mdts = parameters.maxDataTransfer, length > mdts {
            guestError(.mdts, [("cid", "\(req.cid)"), ("len", "\(length)")])
            return .failure(NVMeStatus.invalidField.withDNR)
        }
        if length == 0 { return .success([]) }
        // The request's list from its previous command: once that command's
        // AIOs have ended it is unshared, and refilling it allocates nothing.
        var iov = req.iovStorage
        req.iovStorage = []
        iov.removeAll(keepingCapacity: true)
        defer { req.iovStorage = iov }
        var pin: DMAPin? = pinning ? DMAPin() : nil
        let status: NVMeStatus
        switch req.cmd.psdt {
        case 0:
            status = PRPMapper.map(prp1: req.cmd.prp1, prp2: req.cmd.prp2, length: length, pageSize: pageSize,
                                   into: &iov, pinning: &pin, in: space)
        case 1, 2:
            // Admin commands never get here with SGLs: `adminCommand` refuses PSDT ≠ 0.
            status = SGLMapper.map(sgl1: SGLDescriptor(low: req.cmd.prp1, high: req.cmd.prp2), length: length,
                                   direction: direction, into: &iov, pinning: &pin, in: space)
        default:
            // PSDT 11b is reserved.
            guestError(.invalidPsdt, [("cid", "\(req.cid)"), ("psdt", "\(req.cmd.psdt)")])
            return .failure(NVMeStatus.invalidField.withDNR)
        }
        guard status.isSuccess else { return .failure(status) }
        if let pin { req.pin = pin }
        return .success(iov)
    }

    /// Copies controller data to the host buffer of the command (Identify, logs, features).
    func transferToHost(_ req: Request, _ bytes: [UInt8]) -> NVMeStatus {
        switch mapData(req, length: bytes.count, direction: .controllerToHost) {
        case .failure(let status): return status
        case .success(let iov):
            bytes.withUnsafeBytes { scatter($0, into: iov) }
            return .success
        }
    }

    /// Copies `length` bytes from the host buffer of the command.
    func transferFromHost(_ req: Request, length: Int) -> Result<[UInt8], NVMeStatus> {
        switch mapData(req, length: length, direction: .hostToController) {
        case .failure(let status): return .failure(status)
        case .success(let iov):
            var out = [UInt8](repeating: 0, count: length)
            out.withUnsafeMutableBytes { gather(iov, into: $0) }
            return .success(out)
        }
    }
}
