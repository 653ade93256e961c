/// A list that keeps its first element inline: the per-command lists of the
/// hot path (pinned regions, accounting entries) almost always hold one
/// element, and an `Array` would allocate and free storage for it on every
/// command. Further elements go to an array.
public struct SmallList<Element>: Sequence {
    @usableFromInline var first: Element?
    @usableFromInline var rest: [Element] = []

    @inlinable public init() {}

    @inlinable public var isEmpty: Bool { first == nil }
    @inlinable public var count: Int { first == nil ? 0 : 1 + rest.count }
    /// The element appended last.
    @inlinable public var last: Element? { rest.last ?? first }

    @inlinable public mutating func append(_ element: Element) {
        if first == nil { first = element } else { rest.append(element) }
    }

    /// Empties the list, keeping the overflow array's capacity.
    @inlinable public mutating func removeAll() {
        guard first != nil else { return }
        first = nil
        if !rest.isEmpty { rest.removeAll(keepingCapacity: true) }
    }

    /// Empties the list, calling `body` on each element in order; the first
    /// is moved out rather than copied (no retain of what it holds).
    @inlinable public mutating func removeAll(each body: (Element) -> Void) {
        guard let element = first.take() else { return }
        body(element)
        if !rest.isEmpty {
            for e in rest { body(e) }
            rest.removeAll(keepingCapacity: true)
        }
    }

    public struct Iterator: IteratorProtocol {
        @usableFromInline var list: SmallList
        @usableFromInline var position = 0
        @inlinable init(_ list: SmallList) { self.list = list }
        @inlinable public mutating func next() -> Element? {
            defer { position += 1 }
            if position == 0 { return list.first }
            let i = position - 1
            return i < list.rest.count ? list.rest[i] : nil
        }
    }

    @inlinable public func makeIterator() -> Iterator { Iterator(self) }

    /// Calls `body` on each element in order without copying the list (a
    /// `for` loop's iterator holds a copy, retaining what the list holds).
    @inlinable public func forEachElement(_ body: (Element) throws -> Void) rethrows {
        guard let first else { return }
        try body(first)
        if !rest.isEmpty { for e in rest { try body(e) } }
    }
}

extension SmallList: Sendable where Element: Sendable {}
