import BlockIO

/// Copies `source` into the scatter-gather list, in order, until either runs
/// out (`min(source.count, totalLength(iov))` bytes).
public func scatter(_ source: UnsafeRawBufferPointer, into iov: [IOVector]) {
    guard var src = source.baseAddress else { return }
    var remaining = source.count
    for v in iov where remaining > 0 {
        let n = min(v.length, remaining)
        v.base.copyMemory(from: src, byteCount: n)
        src += n
        remaining -= n
    }
}

/// Copies the scatter-gather list, in order, into `destination` until either
/// runs out (`min(destination.count, totalLength(iov))` bytes).
public func gather(_ iov: [IOVector], into destination: UnsafeMutableRawBufferPointer) {
    guard var dst = destination.baseAddress else { return }
    var remaining = destination.count
    for v in iov where remaining > 0 {
        let n = min(v.length, remaining)
        dst.copyMemory(from: v.base, byteCount: n)
        dst += n
        remaining -= n
    }
}

/// Total byte length of a scatter-gather list.
public func totalLength(_ iov: [IOVector]) -> Int {
    iov.reduce(0) { $0 + $1.length }
}
