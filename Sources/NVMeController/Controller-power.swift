import BlockIO
import NVMeSpec

import Glibc

/// A sudden power loss (the `power` file; docs/WRITE-CACHE.md).
extension NVMeController {
    /// The power-fail atomicity of `ns` (NVMe 1.4 §6.4): NAWUPF with its
    /// boundaries when the namespace fields are in use, AWUPF otherwise.
    func powerFailAtomicity(_ ns: Namespace) -> PowerFailAtomicity {
        let p = parameters
        if p.namespaceAtomicity {
            return PowerFailAtomicity(unitBlocks: UInt64(p.nawupf) + 1,
                                      boundaryBlocks: p.nabspf == 0 ? 0 : UInt64(p.nabspf) + 1,
                                      boundaryOffset: UInt64(p.nabo), lbads: ns.lbads)
        }
        return PowerFailAtomicity(unitBlocks: UInt64(p.awupf) + 1, lbads: ns.lbads)
    }

    /// Cuts the power: every write still in a write cache is lost, or with
    /// a seed a seeded subset survives (whole writes; with `torn` a write
    /// larger than the power-fail atomic unit may keep only some of its
    /// units). The controller then comes back as after power-on: a reset
    /// (queues gone, registers at their reset values, CSTS.RDY 0 and
    /// NSSRO 0), SMART Power Cycles and Unsafe Shutdowns counted. Write-backs
    /// already in their system call land; the reset cancels the others.
    /// Returns once the survivors are on the image.
    @discardableResult
    public func powerCut(seed: UInt64?, torn: Bool) -> PowerCutReport {
        var survivors: [(Namespace, UInt64, [CacheExtent])] = []
        let report: PowerCutReport = locked {
            powerGeneration &+= 1
            var generator = seed.map { SeededGenerator(seed: $0) }
            var report = PowerCutReport(seed: seed, torn: torn)
            report.time = time(nil)
            for ns in allocated.values.sorted(by: { $0.nsid < $1.nsid }) {
                guard let cache = ns.writeCache else { continue }
                let dirty = cache.dropDirty()
                guard !dirty.isEmpty else { continue }
                let s = PowerCutSelection.select(dirty, generator: &generator, torn: torn, atomicity: powerFailAtomicity(ns))
                report.add(s)
                if !s.kept.isEmpty { survivors.append((ns, cache.startBatch(of: s.kept), s.kept)) }
            }
            traceEvent(.powerCut, [("seed", seed.map { "\($0)" } ?? "none"), ("torn", torn ? "1" : "0"),
                                   ("dropped", "\(report.bytesDropped)"), ("kept", "\(report.bytesKept)")])
            powerCycles += 1
            unsafeShutdowns += 1
            firmwareReset(.subsystemReset)
            controllerReset()
            // NVMe 1.4 §3.1.6: NSSRO is 0 after a reset caused by power-on.
            csts.nssro = false
            lastPowerCut = report
            return report
        }
        // The survivors are a batch in flight meanwhile: reads see them and
        // writes to their ranges wait.
        for (ns, id, extents) in survivors {
            let err = writeSynchronously(ns.backend, extents)
            if err != 0 { logger.error("namespace \(ns.nsid): writing what survived a power cut failed: errno \(err)") }
            locked {
                ns.writeCache?.endBatch(id, success: true)
                if !deferredCommands.isEmpty && !resetInProgress { rangesUnlocked() }
            }
        }
        return report
    }

    /// The last power cut, nil before the first.
    public var lastPowerCutReport: PowerCutReport? { lock.withLock { lastPowerCut } }

    /// SMART Power Cycles and Unsafe Shutdowns as of now.
    public var powerCounters: (powerCycles: UInt64, unsafeShutdowns: UInt64) {
        lock.withLock { (powerCycles, unsafeShutdowns) }
    }
}

/// What a power cut did (the `power` file).
public struct PowerCutReport: Sendable, Equatable {
    public var seed: UInt64?
    public var torn: Bool
    /// Seconds since the epoch.
    public var time: Int = 0
    public var writesDropped = 0
    public var writesKept = 0
    public var writesTorn = 0
    public var bytesDropped: UInt64 = 0
    public var bytesKept: UInt64 = 0

    public init(seed: UInt64?, torn: Bool) {
        self.seed = seed
        self.torn = torn
    }

    mutating func add(_ s: PowerCutSelection) {
        writesDropped += s.writesDropped
        writesKept += s.writesKept
        writesTorn += s.writesTorn
        bytesDropped += s.bytesDropped
        bytesKept += s.bytesKept
    }
}
